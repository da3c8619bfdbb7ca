"""``newswatch classify`` on hostile text: one output record per input line, in order, with the
right line numbers, whatever the line holds (lone surrogates, U+2028/U+2029/U+0085 raw inside
strings, control characters, NULs, a 5 MB text, random bytes, invalid JSON, missing fields).

Runs the real command as a subprocess, input on stdin and from a file."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

NEWSWATCH = str(Path(sys.executable).with_name("newswatch"))

# SAMPLE DATA written for this test (not news).
TITLE = "Sample: Pyongyang sends workers abroad"
TEXT = ("North Korea has sent thousands of workers to Russia. Moscow pays the regime in hard "
        "currency, officials say.")


def _line(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _cases() -> list[tuple[bytes, str]]:
    """(line bytes without b"\\n", what is expected: ok / repaired / error:<field or kind>)."""
    rng = random.Random(14)
    ok = {"id": "ok", "title": TITLE, "text": TEXT}
    cases = [
        (_line(ok), "ok"),
        # a lone surrogate through a JSON escape (json.dumps writes "\ud800" with ensure_ascii)
        (json.dumps({**ok, "id": "lone", "text": TEXT + " \ud800 end"}).encode(), "repaired:text"),
        (json.dumps({**ok, "id": "lone-title", "title": "\udfff" + TITLE}).encode(), "repaired:title"),
        (json.dumps({**ok, "id": "pair", "text": TEXT + " \U0001F600"}).encode(), "ok"),
        # line and paragraph separators and NEL raw inside strings: one record, not three
        (_line({**ok, "id": "seps", "text": "One.\u2028Two.\u2029Three.\u0085Four. " + TEXT}), "ok"),
        (_line({**ok, "id": "ctrl", "text": "a\x00b\x01c\x1f\x7f " + TEXT}), "ok"),
        (b'{"id": "raw-ctrl", "title": "t\x01", "text": "tab\there\x00nul ' + TEXT.encode() + b'"}', "ok"),
        (b'{"id": "cr", "title": "t", "text": "carriage\rreturn ' + TEXT.encode() + b'"}', "ok"),
        (b'{"id": "vt", "title": "t", "text": "vertical\x0btab\x0cfeed ' + TEXT.encode() + b'"}', "ok"),
        (b'{"id": "bad-utf8", "title": "t", "text": "\xff\xfe broken \xc3 ' + TEXT.encode() + b'"}',
         "repaired:line"),
        (b"{not json", "error"),
        (b"", "error"),
        (b"   ", "error"),
        (b"[1, 2, 3]", "error"),
        (_line({"id": "no-text", "title": "x"}), "error:text"),
        (_line({"id": "no-title", "text": "x"}), "error:title"),
        (_line({"title": "x", "text": "y"}), "error:id"),
        (_line({"id": "lang", "title": "x", "text": "y", "language": 5}), "error:language"),
        (_line({"id": 7, "title": TITLE, "text": TEXT}), "ok"),
    ]
    for _ in range(6):  # random bytes, never b"\n" (that would be two lines by definition)
        noise = bytes(rng.choice([b for b in range(256) if b != 10]) for _b in range(rng.randint(1, 300)))
        cases.append((noise, "any"))
    for i in range(4):  # random code points (surrogates included) in a valid JSON record
        chars = "".join(chr(rng.choice([rng.randint(0, 0x2FFF), rng.randint(0xD800, 0xDFFF),
                                        rng.randint(0x10000, 0x10FFFF)])) for _ in range(200))
        cases.append((json.dumps({"id": f"rand{i}", "title": chars[:20], "text": chars}).encode(), "any"))
    cases.append((_line(ok), "ok"))
    return cases


def _run(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([NEWSWATCH, *args], input=stdin, capture_output=True, timeout=600,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1",
                               "TRANSFORMERS_OFFLINE": "1"})


def _check(out: bytes, cases: list[tuple[bytes, str]]) -> list[dict]:
    records = [json.loads(line) for line in out.split(b"\n")[:-1]]
    assert len(records) == len(cases), (len(records), len(cases))
    for number, (record, (_raw, expect)) in enumerate(zip(records, cases, strict=True), start=1):
        assert record["line"] == number, record
        if expect == "ok":
            assert "error" not in record and "repaired" not in record, record
            assert record["sentences"], record
        elif expect.startswith("repaired:"):
            assert "error" not in record, record
            assert any(r.startswith(expect.split(":")[1] + ":") for r in record["repaired"]), record
            assert "\ud800" not in json.dumps(record)  # nothing unencodable reached the output
        elif expect.startswith("error"):
            assert record["error"].startswith(f"line {number}:"), record
            if ":" in expect:
                assert record["field"] == expect.split(":")[1], record
        else:  # anything goes but an exception: a result or an error naming this line
            assert "error" not in record or record["error"].startswith(f"line {number}:"), record
    return records


def test_fuzzed_lines_from_stdin_one_record_each_in_order():
    cases = _cases()
    proc = _run(["classify", "-", "--no-progress"], b"\n".join(raw for raw, _ in cases) + b"\n")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    records = _check(proc.stdout, cases)
    by_id = {r.get("id"): r for r in records if "error" not in r}
    assert by_id["seps"]["sentences"][0]["text"].startswith("One.")  # the separators stayed inside
    assert by_id["7"]["on_topic"] is not None
    assert "Traceback" not in proc.stderr.decode(errors="replace")


def test_a_5_mb_text_from_a_file_among_other_lines(tmp_path):
    # one long run-on text: 5 MB in one record, and its neighbours keep their line numbers
    big = ("Pyongyang earns hard currency from workers abroad " * 110_000)[:5_000_000]
    cases = [(_line({"id": "before", "title": TITLE, "text": TEXT}), "ok"),
             (_line({"id": "big", "title": TITLE, "text": big}), "ok"),
             (json.dumps({"id": "lone", "title": TITLE, "text": "\ud800" + TEXT}).encode(), "repaired:text"),
             (_line({"id": "after", "title": TITLE, "text": TEXT}), "ok")]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(raw for raw, _ in cases))  # no final newline: still four lines
    out = tmp_path / "out.jsonl"
    proc = _run(["classify", str(src), "--output", str(out), "--no-progress"])
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    records = _check(out.read_bytes(), cases)
    assert [r["id"] for r in records] == ["before", "big", "lone", "after"]
    assert "classified 4 of 4 lines, 0 errors, 1 repaired" in proc.stderr.decode()


@pytest.mark.parametrize("content", [b"{bad\n\xff\n", b"\n"])
def test_only_bad_lines_is_exit_1_with_a_record_for_each(tmp_path, content):
    src = tmp_path / "in.jsonl"
    src.write_bytes(content)
    proc = _run(["classify", str(src), "--no-progress"])
    assert proc.returncode == 1
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["line"] for r in records] == list(range(1, content.count(b"\n") + 1))
    assert all(r["error"].startswith(f"line {r['line']}:") for r in records)
