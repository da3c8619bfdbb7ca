"""The README documents every ``newswatch`` command and every ``NEWSWATCH_*`` variable the code reads.

New commands and variables are easy to add and easy to forget in the docs; these tests make the
README part of the change.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pipeline.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((*prefix, name))
                out.extend(_commands(sub, (*prefix, name)))
    return out


def test_every_command_and_action_is_in_the_readme():
    commands = _commands(build_parser())
    assert ("run",) in commands and ("doctor",) in commands and ("stack", "up") in commands
    missing = [" ".join(c) for c in commands if f"newswatch {' '.join(c)}" not in README]
    assert not missing, f"README does not mention: {', '.join('newswatch ' + m for m in missing)}"


def test_the_two_commands_come_first():
    first_block = README.split("```", 2)[1]
    assert "make run" in first_block and "make test" in first_block
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (REPO / ".ci" / "run").read_text()


def _variables_in_code() -> set[str]:
    names: set[str] = set()
    settings = (REPO / "pipeline" / "settings.py").read_text()
    names |= {f"NEWSWATCH_{n}" for n in re.findall(r"_env(?:_bool)?\(\"([A-Z0-9_]+)\"", settings)}
    for folder in ("pipeline", "dags", "plugins"):
        for path in (REPO / folder).rglob("*.py"):
            names |= set(re.findall(r"NEWSWATCH_[A-Z0-9]+(?:_[A-Z0-9]+)*\b", path.read_text()))
    return names


def test_every_environment_variable_is_in_the_readme():
    names = _variables_in_code()
    assert {"NEWSWATCH_ES_URL", "NEWSWATCH_SMTP_PORT", "NEWSWATCH_FEED_PORT",
            "NEWSWATCH_FEED_INTERVAL"} <= names
    table = README.split("### Environment variables", 1)[1].split("\n## ", 1)[0]
    missing = sorted(n for n in names if f"`{n}`" not in table)
    assert not missing, f"README's variable table lacks {missing}"
