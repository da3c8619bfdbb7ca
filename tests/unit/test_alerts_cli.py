"""The claims/alerts commands parse, and ``alerts subscriptions`` validates the configured file."""

from __future__ import annotations

from datetime import date

import pytest

from pipeline.cli import build_parser, main


@pytest.mark.parametrize(("argv", "attr", "value"), [
    (["claims", "extract", "--limit", "5"], "limit", 5),
    (["alerts", "process", "--no-send"], "no_send", True),
    (["alerts", "digest", "--day", "2026-03-02"], "day", date(2026, 3, 2)),
    (["eval-claims", "--sweep"], "sweep", True),
])
def test_commands_parse(argv, attr, value):
    args = build_parser().parse_args(argv)
    assert getattr(args, attr) == value and callable(args.func)


def test_a_bad_day_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["alerts", "digest", "--day", "yesterday"])
    assert "not a date" in capsys.readouterr().err


def test_subscriptions_command_lists_and_reports_errors(tmp_path, monkeypatch, capsys):
    good = tmp_path / "subs.yaml"
    good.write_text("subscriptions:\n  - id: desk\n    recipients: [desk@example.org]\n    mode: digest\n")
    monkeypatch.setenv("NEWSWATCH_SUBSCRIPTIONS_FILE", str(good))
    assert main(["alerts", "subscriptions"]) == 0
    assert "desk" in capsys.readouterr().out
    good.write_text("subscriptions:\n  - id: desk\n    recipients: [nobody]\n")
    assert main(["alerts", "subscriptions"]) == 2
    assert "field 'recipients'" in capsys.readouterr().err
