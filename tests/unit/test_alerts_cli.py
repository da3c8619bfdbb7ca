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


def test_delivery_outcomes_map_to_documented_exit_codes():
    from pipeline.cli.alerts import delivery_outcome

    assert delivery_outcome(None) == (0, None)
    assert delivery_outcome({"sent": 3, "pending": 0, "failed": 0, "gave_up": 0, "leased": 2}) == (0, None)
    down = {"sent": 0, "pending": 524, "failed": 0, "gave_up": 0,
            "smtp_error": "SMTP at 127.0.0.1:8025 refused the connection"}
    assert delivery_outcome(down) == (
        3, "524 alert(s) pending: SMTP at 127.0.0.1:8025 refused the connection")
    refused = {"pending": 0, "failed": 1, "gave_up": 2, "errors": [{"id": "x", "error": "550 no such box"}]}
    code, line = delivery_outcome(refused)
    assert code == 1 and "1 alert(s) refused by the SMTP server (550 no such box)" in line
    assert "2 alert(s) given up" in line
    assert delivery_outcome(down | {"failed": 1})[0] == 3  # SMTP down is the thing to fix first


@pytest.mark.parametrize("action", ["process", "send-pending", "digest"])
def test_the_exit_codes_are_in_the_commands_help(action, capsys):
    with pytest.raises(SystemExit):
        main(["alerts", action, "--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out
    assert "3  alerts are still pending" in out and "1  the SMTP server refused alerts" in out
