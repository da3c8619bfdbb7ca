"""The CLI end to end: `newswatch sources check`, `newswatch ingest --once`, `newswatch sources status`."""

from __future__ import annotations

import json

from pipeline.cli import main
from tests.ingest_support import articles, rss
from tests.support import Response

ITEMS = [
    {
        "title": f"Sample CLI item {i}",
        "link": f"http://127.0.0.1/cli/{i}",
        "guid": f"cli-{i}",
        "description": "Sample data for the CLI test.",
    }
    for i in range(4)
]


def write_sources(tmp_path, http_server):
    http_server.route("/good.xml", rss(ITEMS))
    http_server.route("/bad.xml", Response(b"no", 500))
    path = tmp_path / "sources.yaml"
    path.write_text(f"""
defaults: {{allow_private: true, timeout: 3}}
sources:
  - {{id: good, name: Good sample, url: "{http_server.url("/good.xml")}", source_type: wire}}
  - {{id: bad, name: Broken sample, url: "${{SAMPLE_BASE:-http://127.0.0.1:1}}/bad.xml"}}
""")
    return path


def test_check_then_ingest_then_status(settings, es, http_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", settings.index_prefix)
    monkeypatch.setenv("SAMPLE_BASE", http_server.base_url)
    path = write_sources(tmp_path, http_server)

    assert main(["sources", "check", "--sources-file", str(path)]) == 1  # one source fails
    out = capsys.readouterr().out
    assert "good" in out and "bad" in out and "http_error" in out and "HTTP 500" in out
    assert not es.indices.exists_alias(name=settings.index("articles"))  # check writes nothing

    assert main(["ingest", "--once", "--sources-file", str(path), "--no-pages", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["new_articles"] == 4 and report["sources_failed"] == 1 and "bad" in report["failed"]
    assert len(articles(es, settings)) == 4

    assert main(["sources", "check", "--sources-file", str(path), "--sources", "good"]) == 0
    out = capsys.readouterr().out
    assert "good" in out and " 4 " in out and "bad" not in out  # 4 entries, 0 new

    assert main(["sources", "status"]) == 0
    out = capsys.readouterr().out
    assert "bad" in out and "HTTP 500" in out and "never" in out


def test_invalid_sources_file_names_file_source_and_field(settings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", settings.index_prefix)
    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n  - id: ok\n    url: http://127.0.0.1/x\n  - id: broken\n    url: file:///etc/passwd\n"
    )
    assert main(["ingest", "--once", "--sources-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "'broken'" in err and "'url'" in err and ":4" in err
