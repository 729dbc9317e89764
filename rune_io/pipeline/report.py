"""The outcome of a run: per-table totals, failures, and the watermarks it moves."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rune_io.pipeline.execute import ChunkResult
from rune_io.pipeline.jobs import Job, RunPlan
from rune_io.pipeline.plan import Chunk, Window, advance_watermark
from rune_io.pipeline.sources import Source


@dataclass
class RunReport:
    """The outcome of one run: per-table totals and every failure, by stream name."""

    run_id: str
    kind: str
    streams: int = 0
    checked: int = 0
    chunks: int = 0
    tasks: int = 0
    windows_planned: int = 0
    windows_landed: int = 0
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    storage_retries: int = 0  # object-store attempts retried (S3 throttling, 5xx)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def rows(self) -> int:
        return sum(t["rows"] for t in self.tables.values())

    def table_rows(self) -> list[dict[str, object]]:
        """Rows of the run's table artifact: one per lake table, then one per failure."""
        out: list[dict[str, object]] = [
            {"table": name, **totals, "status": "ok"}
            for name, totals in sorted(self.tables.items())
        ]
        out += [
            {
                "table": f["table"],
                "rows": 0,
                "files": 0,
                "bytes": 0,
                "status": f"FAILED {f['stream']}: {f['error']}",
            }
            for f in self.failures
        ]
        return out

    def text(self) -> str:
        if not self.windows_planned and not self.failures:
            return (
                f"run {self.run_id} ({self.kind}): up to date: {self.checked} streams checked, "
                f"nothing to fetch, {self.seconds:.1f}s"
            )
        lines = [
            f"run {self.run_id} ({self.kind}): {self.windows_landed}/{self.windows_planned} windows "
            f"landed in {self.chunks} chunks ({self.tasks} tasks) over {self.streams} streams, {self.rows:,} rows, "
            f"{self.seconds:.1f}s"
            + (f", storage retries: {self.storage_retries}" if self.storage_retries else "")
        ]
        width = max((len(name) for name in self.tables), default=0)
        for name, t in sorted(self.tables.items()):
            lines.append(
                f"  {name:<{width}} {t['rows']:>12,} rows {t['files']:>6} files {t['bytes']:>14,} B"
            )
        for f in self.failures:
            lines.append(f"  FAILED {f['table']} stream {f['stream']} {f['window']}: {f['error']}")
        return "\n".join(lines)


def summarize(
    run_id: str,
    kind: str,
    chunks: Sequence[Chunk],
    results: Sequence[ChunkResult | BaseException],
) -> RunReport:
    """Fold chunk outcomes (a result, or the exception a chunk died with) into a report."""
    rep = RunReport(run_id, kind, streams=len({c.key for c in chunks}), chunks=len(chunks))
    rep.windows_planned = sum(len(c.windows) for c in chunks)
    for chunk, res in zip(chunks, results, strict=True):
        table = chunk.source.table
        totals = rep.tables.setdefault(table, {"rows": 0, "files": 0, "bytes": 0})
        if isinstance(res, BaseException):
            rep.failures.append(
                {
                    "table": table,
                    "stream": chunk.key,
                    "window": chunk.label,
                    "error": f"{type(res).__name__}: {res}",
                }
            )
            continue
        rep.windows_landed += len(res.landed)
        totals["rows"] += res.rows
        totals["files"] += res.files
        totals["bytes"] += res.bytes
        if not res.ok:
            rep.failures.append(
                {
                    "table": table,
                    "stream": res.key,
                    "window": res.failed_window or "",
                    "error": res.error or "",
                }
            )
    return rep


def new_watermarks(
    current: Mapping[str, datetime],
    results: Iterable[ChunkResult | BaseException],
    *,
    may_start: Callable[[Source, list[Window]], bool] = lambda s, ws: True,
) -> dict[str, datetime]:
    """Watermarks (by source key) moved over the windows that landed (see
    :func:`advance_watermark`)."""
    landed: dict[str, tuple[Source, list[Window]]] = {}
    for res in results:
        if isinstance(res, ChunkResult):
            landed.setdefault(res.key, (res.source, []))[1].extend(res.landed)
    out: dict[str, datetime] = {}
    for key, (source, ws) in landed.items():
        cur = current.get(key)
        if cur is None and not may_start(source, ws):
            continue
        mark = advance_watermark(cur, source, ws)
        if mark is not None and mark != cur:
            out[key] = mark
    return out


def conclude(
    run_id: str,
    job: Job,
    plan: RunPlan,
    results: Sequence[ChunkResult | BaseException],
) -> tuple[RunReport, dict[str, datetime]]:
    """The report of a run of ``job`` that planned ``plan`` and got ``results`` (one per
    chunk, in plan order), and the watermarks it moves."""
    report = summarize(run_id, job.kind, plan.chunks, results)
    report.tasks = len(plan.units)
    report.checked = plan.checked
    return report, new_watermarks(plan.watermarks, results, may_start=job.may_start)
