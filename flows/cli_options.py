"""The ``rune-lake`` command line's options: one definition each, shared by the commands.

Every option has a one-line help, a human metavar (``URL``, ``ID``, ``DATE``, ``N``) and
shows its default; ``refresh`` and ``backfill`` take the same selection options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def _many(flag: str, metavar: str, what: str):
    return Annotated[
        list[str] | None,
        typer.Option(
            flag,
            metavar=metavar,
            help=f"{what}; repeat for more",
            show_default="all",
        ),
    ]


Lake = Annotated[
    str, typer.Option("--lake", metavar="URL", help="Lake: a directory or s3://bucket/prefix")
]
Config = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="Project config file with a `rune:` section",
        show_default="./rune-lake.yaml if present",
    ),
]
Verbose = Annotated[
    bool,
    typer.Option("--verbose", "-v", metavar="", help="Show Prefect's own log lines on the console"),
]

# -- the selection (refresh and backfill) ---------------------------------------------
Projects = _many("--project", "ID", "Only the patients of this project")
Cohorts = _many("--cohort", "ID", "Only the patients of this cohort")
Patients = _many("--patient", "ID", "Only this patient")
Categories = _many("--category", "NAME", "Only streams of this category, e.g. vitals")
Measurements = _many("--measurement", "NAME", "Only streams of this measurement, e.g. heart_rate")
DeviceTypes = _many("--device-type", "ID", "Only streams of devices of this type, e.g. apple_watch")
StreamIds = _many("--stream-id", "ID", "Only this stream")
Org = Annotated[
    str | None,
    typer.Option(
        "--org",
        metavar="ID",
        help="Make this org active first",
        show_default="the credentials' active org",
    ),
]
Events = Annotated[
    bool, typer.Option("--events/--no-events", metavar="", help="Also load each patient's events")
]

# -- how a run works ------------------------------------------------------------------
ChunkDays = Annotated[
    int, typer.Option("--chunk-days", metavar="N", help="Partitions (days or months) per task")
]
Runner = Annotated[
    str, typer.Option("--runner", metavar="threads|dask", help="Task runner for the chunks")
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        metavar="N",
        help="Threads, or Dask worker processes",
        show_default="4, or RUNE_LAKE_WORKERS",
    ),
]


def emu_credential(what: str) -> Any:
    """An emulator credential flag (``Annotated[str | None, emu_credential(...)]``): the
    value it accepts instead of the demo's."""
    return typer.Option(
        metavar="VALUE", help=f"Accept this {what}", show_default="the demo credentials"
    )
