"""The layering of `pipeline`: it never imports `airflow`, no module imports from a higher layer
(imports inside functions count too: a lazy import still ties two modules together), and no
module is over 400 lines. Import cycles are checked by test_import_cycles.py."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pipeline

PIPELINE_DIR = Path(pipeline.__file__).parent
MAX_LINES = 400

# Lowest first. A module may import from its own layer and the layers below it. Each entry is a
# top-level module or package of `pipeline` (a package covers all its modules).
LAYERS: list[tuple[str, set[str]]] = [
    # the root package only re-exports errors and settings
    ("foundation", {"pipeline", "pipeline.errors", "pipeline.timefmt", "pipeline.settings",
                    "pipeline.procinfo"}),
    # data and clients every stage reads: the Elasticsearch client and schema, the motive taxonomy,
    # language identification, and the team's sample articles (sample data the gate trains on and
    # the model build verifies with; it renders feeds but starts nothing)
    ("data and clients", {"pipeline.es", "pipeline.taxonomy", "pipeline.language",
                          "pipeline.language_identifier", "pipeline.demo"}),
    ("ingest and classify", {"pipeline.ingest", "pipeline.classify"}),
    ("claims", {"pipeline.claims"}),
    # below alerts: an alert email carries the feedback links
    ("feedback", {"pipeline.feedback"}),
    ("alerts and the analyst's views", {"pipeline.alerts", "pipeline.search", "pipeline.kibana",
                                        "pipeline.kibana_api"}),
    ("local stack", {"pipeline.stack"}),
    ("command line", {"pipeline.cli"}),
]

# Upward imports still present, as (importing module, imported unit) -> why; remove an entry when
# its import is gone, so the list can only shrink. None are left.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


def _unit(module: str) -> str:
    """The top-level module or package of `pipeline` that ``module`` belongs to."""
    return ".".join(module.split(".")[:2])


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for path in PIPELINE_DIR.rglob("*.py"):
        parts = path.relative_to(PIPELINE_DIR.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports() -> list[tuple[str, int, str]]:
    """(importing module, line, imported `pipeline` module) for every import, lazy ones included."""
    modules = _modules()
    found = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pipeline import kibana` imports the module pipeline.kibana, not the root
                subs = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [t for t in subs if t in modules] or [node.module]
            found.extend((name, node.lineno, t) for t in targets if t in modules)
    return found


def _layer_of() -> dict[str, int]:
    return {unit: rank for rank, (_, units) in enumerate(LAYERS) for unit in units}


def upward_imports(imports: list[tuple[str, int, str]], layer_of: dict[str, int]) -> list[str]:
    """Imports whose target is in a higher layer than the importing module, as readable lines."""
    names = [title for title, _ in LAYERS]
    out = []
    for module, line, target in imports:
        src, dst = layer_of[_unit(module)], layer_of[_unit(target)]
        if dst > src and (module, _unit(target)) not in KNOWN_UPWARD:
            out.append(f"{module}:{line} ({names[src]}) imports {target} ({names[dst]})")
    return sorted(out)


def test_every_pipeline_module_has_a_layer():
    layer_of = _layer_of()
    assert sorted({_unit(m) for m in _modules()} - set(layer_of)) == []
    # and no layer names a module that is gone
    assert sorted(set(layer_of) - {_unit(m) for m in _modules()}) == []


def test_the_layer_check_finds_an_upward_import():
    layer_of = _layer_of()
    imports = [("pipeline.es.client", 3, "pipeline.alerts.ledger"),
               ("pipeline.alerts.ledger", 5, "pipeline.es.client"),
               ("pipeline.alerts.ledger", 6, "pipeline.alerts.novelty")]
    assert upward_imports(imports, layer_of) == [
        "pipeline.es.client:3 (data and clients) imports pipeline.alerts.ledger "
        "(alerts and the analyst's views)"]


def test_no_module_imports_from_a_higher_layer():
    imports = _imports()
    assert len(imports) > 100  # the walk saw the package's imports
    assert upward_imports(imports, _layer_of()) == []


def test_known_upward_imports_are_still_there():
    """An entry whose import is gone must be removed, so the list only shrinks."""
    present = {(module, _unit(target)) for module, _, target in _imports()}
    assert sorted(set(KNOWN_UPWARD) - present) == []


def test_no_pipeline_module_is_over_400_lines():
    long = {str(path.relative_to(PIPELINE_DIR.parent)): n for path in PIPELINE_DIR.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


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
