"""``python -m rune_io.lake catalog --lake URL``: the catalog summary without the CLI."""

from __future__ import annotations

import argparse
import sys

from rune_io.lake.storage import open_lake
from rune_io.lake.summary import render_catalog_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rune_io.lake")
    sub = parser.add_subparsers(dest="command", required=True)
    cat = sub.add_parser("catalog", help="summarise a lake's catalog")
    cat.add_argument("--lake", required=True, help="lake URL: a directory or s3://bucket/prefix")
    args = parser.parse_args(argv)
    sys.stdout.write(render_catalog_summary(open_lake(args.lake, create=False)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
