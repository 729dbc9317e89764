"""The lake's maintenance commands: ``rune-lake catalog`` and ``rune-lake repair``
(registered on the app by :mod:`rune_lake.flows.cli`)."""

from __future__ import annotations

from rune_lake.flows import cli_options as opt
from rune_lake.flows.cli_run import out, user_errors


def catalog(lake: opt.Lake) -> None:
    """Summarize the lake: tables, rows, time span, bytes, last run, watermarks."""
    with user_errors():
        from rune_io.lake import open_lake, render_catalog_summary
        from rune_io.lake.storage import storage_errors

        with storage_errors(lake):
            out.print(render_catalog_summary(open_lake(lake, create=False)), highlight=False)


def repair(lake: opt.Lake) -> None:
    """Full check of the catalog against every data file of LAKE (lists the whole lake):
    entries rebuilt for files that lack one, entries dropped whose file is gone. Runs
    recover from crashes by themselves; this is for a lake touched by something else."""
    with user_errors():
        from rune_io.lake import Catalog, check_format, open_lake
        from rune_io.lake.storage import storage_errors

        with storage_errors(lake):
            opened = open_lake(lake, create=False)
            check_format(opened)
            rep = Catalog(opened).repair()
        out.print(
            f"repaired {lake}: {len(rep.added)} entries rebuilt, {len(rep.dropped)} dropped, "
            f"{len(rep.foreign)} foreign .parquet files, {len(rep.temps_removed)} staging "
            "files removed",
            highlight=False,
        )
        for label, paths in (("rebuilt", rep.added), ("dropped", rep.dropped)):
            for path in paths:
                out.print(f"  {label} {path}", highlight=False)
        for path in rep.foreign:
            out.print(f"  foreign {path}", highlight=False)
