"""``python -m rune_io.settings --markdown``: the README's settings table, generated from
the declaration; ``--write README.md`` replaces the table in that file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rune_io.settings.report import markdown_table, with_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rune_io.settings", description=__doc__)
    parser.add_argument("--markdown", action="store_true", help="print the table")
    parser.add_argument("--write", metavar="FILE", type=Path, help="regenerate FILE's table")
    args = parser.parse_args(argv)
    if args.write:
        text = args.write.read_text(encoding="utf-8")
        try:
            args.write.write_text(with_table(text), encoding="utf-8")
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.markdown or not args.write:
        print(markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
