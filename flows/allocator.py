"""Arrow's allocator, configured before anything loads Arrow.

pyarrow's default memory pool is mimalloc (3.4 in pyarrow 26), which backs its arenas
with transparent huge pages wherever the kernel allows it, and Linux's common default
(``madvise``, for ``enabled`` and for ``defrag``) does. A fault in such an arena then
zeroes 2 MiB at once, and may first compact memory to find them. Measured on the 2-CPU
dev box (BENCHMARKS.md, "End to end"): the emulator's first render of the default cohort
took 6.8-7.0 s of CPU with huge pages, 2.1 s without; the fetch phase of a whole-cohort
refresh without Prefect 2.8-3.7 s of CPU, 2.5-2.8 s without (``perf``: 18% of its samples
in the kernel zeroing huge pages). mimalloc's maintainers name huge pages as the cause
and ``MIMALLOC_ALLOW_THP=0`` as the remedy (microsoft/mimalloc#1323, #1373).

mimalloc reads its options once, when the library loads, so they cannot be set later in
the process. With ``MIMALLOC_ALLOW_THP=0`` it turns huge pages off for the whole process
(``prctl(PR_SET_THP_DISABLE)``: ``THP_enabled: 0`` in ``/proc/PID/status``), a setting
that the process's children inherit across ``exec`` whatever their environment. The
``rune-lake`` script and the warm runner set them first thing, unless they are set, and
every process they start inherits them: the warm runner, the local Prefect server, the
demo's emulator, the runs of a served deployment. A worker started by other means gets
them from ``prefect.yaml``'s job variables. A value you set (e.g.
``MIMALLOC_ALLOW_THP=1``) is kept, and a command runs in the warm runner only if it has
the same values as the runner (:func:`variables`).

This module imports nothing but the standard library (the script imports it before the
warm runner decides where the command runs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: what the script sets, unless set
DEFAULTS = {"MIMALLOC_ALLOW_THP": "0"}
#: Arrow's own allocator variables (beside mimalloc's ``MIMALLOC_*``)
_ARROW = frozenset({"ARROW_DEFAULT_MEMORY_POOL", "JE_ARROW_MALLOC_CONF"})


def prepare() -> None:
    """Set :data:`DEFAULTS` in this process's environment (and so its children's),
    keeping any value already set. Call it before pyarrow is imported."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)


def variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables Arrow's allocators read when Arrow loads, in ``environ``."""
    return {k: v for k, v in sorted(environ.items()) if k.startswith("MIMALLOC_") or k in _ARROW}
