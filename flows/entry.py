"""The ``rune-lake`` script: a ``refresh``, ``backfill`` or ``demo`` goes to the warm
runner (:mod:`rune_lake.flows.warm`) before anything else is imported; everything else,
and those when no runner applies, to :func:`rune_lake.flows.cli.main`. First of all, it
sets Arrow's allocator options (:mod:`rune_lake.flows.allocator`)."""

from __future__ import annotations

import sys


def main() -> None:
    from rune_lake.flows import allocator

    allocator.prepare()  # before anything loads Arrow
    from rune_lake.flows.warm import try_run

    code = try_run(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from rune_lake.flows.cli import main as cli_main

    cli_main(warm=False)
