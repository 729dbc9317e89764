"""One way for tests to change the process environment for a block, and put it back."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def patched_environ(values: Mapping[str, str], clear: Iterable[str] = ()) -> Iterator[None]:
    """Unset ``clear``, set ``values``; restore every touched variable afterwards."""
    keys = set(clear) | set(values)
    saved = {k: os.environ.get(k) for k in keys}
    for k in clear:
        os.environ.pop(k, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
