"""``newswatch classify`` honours its JSON-lines contract; ``newswatch eval`` prints both splits."""

from __future__ import annotations

import json

import pytest

from pipeline.classify import get_classifier
from pipeline.classify.e5_runtime import get_multilingual_embedder
from pipeline.cli import main

# SAMPLE DATA written for this test (not news).
SAMPLE_ON = ("Sample: Pyongyang deploys soldiers to Russia",
             "North Korea has sent thousands of soldiers to Russia to fight near Kursk. "
             "Moscow pays the regime about two thousand dollars a month per soldier, officials say. "
             "Russia may also help North Korea build nuclear-powered submarines in return.")
SAMPLE_OFF = ("Sample: a cruise missile test",
              "North Korea test-fired two cruise missiles over the sea on Sunday. "
              "The launch was overseen by Kim Jong Un, state media said.")


@pytest.fixture(scope="module", autouse=True)
def _model():
    get_classifier()


def test_classify_writes_one_line_per_input_in_order(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([
        json.dumps({"id": "on", "title": SAMPLE_ON[0], "text": SAMPLE_ON[1]}),
        "{not json",
        json.dumps({"id": "no-text", "title": "x"}),
        json.dumps({"id": "off", "title": SAMPLE_OFF[0], "text": SAMPLE_OFF[1], "language": "en"}),
        json.dumps({"id": "de", "title": "Beispiel", "text": "Nordkorea schickt Soldaten nach "
                    "Russland. Die Truppen kämpfen in der Region Kursk an der Seite Moskaus."}),
    ]) + "\n", encoding="utf-8")
    assert main(["classify", str(src), "--no-progress"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line.get("id") for line in lines] == ["on", None, "no-text", "off", "de"]
    assert "error" in lines[1] and "line 2" in lines[1]["error"]
    assert "text" in lines[2]["error"]
    on, off, de = lines[0], lines[3], lines[4]
    for result in (on, off, de):
        assert set(result) >= {"id", "on_topic", "topic_score", "motives", "motive_scores", "sentences"}
        for sentence in result["sentences"]:
            assert set(sentence) >= {"text", "motives", "scores"}
    assert on["on_topic"] is True and "hard_currency" in on["motives"]
    assert "military_technology.naval" in on["motives"] and "military_technology" in on["motives"]
    assert len(on["sentences"]) == 3 and on["sentences"][1]["motives"] == ["hard_currency"]
    assert off["on_topic"] is False and off["motives"] == []
    # German is read by multilingual-e5 when its build exists; without it, the keyword gate only
    multilingual = get_multilingual_embedder() is not None
    assert de["on_topic"] is True and de["language_supported"] is multilingual
    assert multilingual or de["motives"] == []
    assert "classified 3 of 5 lines, 2 errors" in captured.err


def test_classify_to_output_file_and_missing_input(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": 7, "title": SAMPLE_OFF[0], "text": SAMPLE_OFF[1]}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["classify", str(src), "--output", str(out)]) == 0
    assert json.loads(out.read_text())["id"] == "7"
    assert capsys.readouterr().out == ""
    assert main(["classify", str(tmp_path / "missing.jsonl")]) == 2
    assert "not found" in capsys.readouterr().err


def test_eval_prints_both_splits(shared_dir, capsys):
    assert main(["eval"]) == 0
    out = capsys.readouterr().out
    assert "=== split: heldout" in out and "=== split: tune" in out
    assert "on-topic accuracy" in out and "micro (top-level ids)" in out
    assert "STALE" not in out
