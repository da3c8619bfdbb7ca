"""Airflow for the DAG tests: a private AIRFLOW_HOME (SQLite) set before ``airflow`` is imported.

Airflow reads its configuration once, at import, so the environment is set when pytest loads
this file; the metadata database is migrated only for the tests that run DAGs (``airflow_db``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="newswatch-dag-tests-"))
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
}
if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != str(AIRFLOW_HOME):
    _CONFLICT = "airflow was imported before tests/dags/conftest.py set its AIRFLOW_HOME"
else:
    _CONFLICT = ""
    os.environ.update(AIRFLOW_ENV)
if str(REPO / "plugins") not in sys.path:  # what Airflow does for its plugins folder at import
    sys.path.append(str(REPO / "plugins"))


@pytest.fixture(scope="session", autouse=True)
def _airflow_home() -> Iterator[Path]:
    if _CONFLICT:
        pytest.fail(_CONFLICT)
    yield AIRFLOW_HOME
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db(_airflow_home: Path) -> Path:
    """A migrated metadata database (``dag.test()`` records runs, XComs and asset events in it)."""
    proc = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env={**os.environ},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return _airflow_home / "airflow.db"


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))
