"""`pipeline` is the domain and never imports `airflow`."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pipeline

PIPELINE_DIR = Path(pipeline.__file__).parent


def test_no_pipeline_module_mentions_airflow_in_an_import():
    offenders = []
    for path in PIPELINE_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "airflow" or n.startswith("airflow.") for n in names):
                offenders.append(f"{path.relative_to(PIPELINE_DIR.parent)}:{node.lineno}")
    assert offenders == []


def test_importing_every_pipeline_module_loads_no_airflow():
    modules = [m.name for m in pkgutil.walk_packages([str(PIPELINE_DIR)], "pipeline.")]
    assert len(modules) > 5
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n"
            "    importlib.import_module(m)\n"
            "print(sorted(k for k in sys.modules if k == 'airflow' or k.startswith('airflow.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
