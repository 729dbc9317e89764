"""The command line's help, as a user reads it: every option has a one-line help, a
human metavar and its default; refresh and backfill take the same selection options."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from rune_lake.flows.cli import app

COMMANDS = ["demo", "refresh", "backfill", "catalog", "settings", "emulator"]
HUMAN_METAVARS = {"URL", "ID", "NAME", "DATE", "TIME", "N", "P", "H", "FILE", "ADDRESS", "VALUE"}
SELECTION = {
    "--project",
    "--cohort",
    "--patient",
    "--category",
    "--measurement",
    "--device-type",
    "--stream-id",
    "--org",
    "--events",
}


def options(command: str) -> dict[str, tuple[str, str, bool]]:
    """``{--flag: (metavar, help, is an on/off pair)}`` parsed from ``rune-lake COMMAND --help``."""
    res = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    body = res.output.split("Options:", 1)[1]
    entries: list[str] = []
    for line in body.splitlines():
        if re.match(r"^  -", line):
            entries.append(line.strip())
        elif line.startswith("    ") and entries:
            entries[-1] += " " + line.strip()
    found = {}
    for entry in entries:
        names, help_text = (re.split(r"\s{2,}", entry, maxsplit=1) + [""])[:2]
        words = names.replace(",", " ").split()
        flag = next(w for w in words if w.startswith("--"))
        metavar = " ".join(w for w in words if not w.startswith("-") and w != "/")
        found[flag] = (metavar, help_text, " / " in names)
    return found


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_a_human_metavar_and_its_default(command):
    opts = options(command)
    assert "--help" in opts and len(opts) > 1
    for flag, (metavar, help_text, paired) in opts.items():
        if flag == "--help":
            continue
        text = re.sub(r"\s*\[(default: .*|required)\]$", "", help_text).strip()
        assert text and "\n" not in text, f"{command} {flag}: no help"
        is_flag = metavar == ""
        assert is_flag or metavar in HUMAN_METAVARS or "|" in metavar, (
            f"{command} {flag}: {metavar}"
        )
        assert "<" not in metavar and "TEXT" not in metavar and "INTEGER" not in metavar
        if not is_flag or paired:  # a lone flag (--verbose) is off unless given
            assert "[required]" in help_text or "[default: " in help_text, f"{command} {flag}"


def test_refresh_and_backfill_take_the_same_selection_options():
    refresh, backfill = set(options("refresh")), set(options("backfill"))
    assert SELECTION <= refresh and SELECTION <= backfill
    shared = {"--lake", "--chunk-days", "--runner", "--workers", "--config", "--verbose"}
    assert shared <= refresh & backfill
    assert options("refresh")["--workers"][1].endswith("[default: (4, or RUNE_LAKE_WORKERS)]")
