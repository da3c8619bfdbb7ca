"""eval/baseline.json holds one entry per evaluation; pinning one must never drop the others."""

from __future__ import annotations

import json

from pipeline.classify.evaluate import pin_baseline


def test_pinning_an_entry_replaces_it_and_keeps_every_other_key(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"gate": {"floors": 1}, "novelty": {"bounds": "old"}}), encoding="utf-8")
    assert pin_baseline({"novelty": {"bounds": "new"}, "replay": {"bounds": 2}}, path) == path
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "gate": {"floors": 1}, "novelty": {"bounds": "new"}, "replay": {"bounds": 2}}


def test_a_missing_baseline_file_is_created(tmp_path):
    path = tmp_path / "baseline.json"
    pin_baseline({"gate": {"floors": 1}}, path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"gate": {"floors": 1}}
