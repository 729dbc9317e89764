"""A lease lock on the lake, so two runs never consolidate the catalog at once.

``Catalog.commit`` folds pending entries into the consolidated tables and then deletes
them. Two commits interleaving could let the later writer replace the tables with a
state that lacks what the earlier one folded (and deleted). Commits are short, so they
take turns under one lock object, ``_catalog/_commit.lock``, created exclusively:
``O_EXCL`` on local disk, a conditional PUT (``If-None-Match: *``) on S3. The lock holds a
token, its host and pid, and an expiry: a holder that died (SIGKILL mid-commit) blocks
others until its lease runs out, or not at all when it ran on the same host (its pid is
gone). Release removes the lock only if it still holds our token.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from rune_io.lake.errors import LakeError
from rune_io.lake.layout import CATALOG_DIR
from rune_io.lake.storage import Lake, remove

LOCK = f"{CATALOG_DIR}/_commit.lock"


def create_exclusive(lake: Lake, rel: str, data: bytes) -> bool:
    """Create ``rel`` holding ``data`` only if it does not exist; False if it does."""
    path = lake.path(rel)
    if lake.is_local:
        # Whole or not at all: the body goes to a temporary file first, then a hard link
        # creates ``rel`` (link fails if it exists). Created empty with O_EXCL and written
        # afterwards, a waiter could read the lock half-written, take it for a dead
        # holder's, break it and commit beside its live holder (found by
        # tests/lake/test_commit_lock.py under load: a concurrent commit's files vanished).
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            os.remove(tmp)
        return True
    try:
        lake.fs.pipe_file(path, data, mode="create")
    except FileExistsError:
        return False
    except TypeError:  # a filesystem without exclusive create: best effort
        if lake.fs.exists(path):
            return False
        lake.fs.pipe_file(path, data)
    return True


def _read(lake: Lake) -> dict | None:
    try:
        return json.loads(lake.read_bytes(LOCK))
    except FileNotFoundError:
        return None
    except ValueError:  # half-written by a holder killed mid-create: treat as expired
        return {"token": "", "expires_at": "1970-01-01T00:00:00+00:00"}


def _dead_here(held: dict) -> bool:
    """The holder ran on this host and its process is gone (killed mid-commit)."""
    pid = held.get("pid")
    if held.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


@contextmanager
def commit_lock(
    lake: Lake,
    *,
    lease: timedelta = timedelta(minutes=5),
    timeout: float = 300.0,
    poll: float = 0.2,
) -> Iterator[None]:
    """Hold the lake's commit lock for the ``with`` body."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + timeout
    while True:
        expires = datetime.now(UTC) + lease
        body = json.dumps(
            {
                "token": token,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "expires_at": expires.isoformat(),
            }
        )
        if create_exclusive(lake, LOCK, body.encode()):
            break
        held = _read(lake)
        if held is None:
            continue
        if datetime.fromisoformat(held["expires_at"]) < datetime.now(UTC) or _dead_here(held):
            remove(lake, LOCK)  # the holder died; its lease is over
            continue
        if time.monotonic() > deadline:
            raise LakeError(
                f"the catalog of {lake.url!r} has been locked for commit since before "
                f"{timeout:.0f}s ago (lock held until {held['expires_at']}); if no run is "
                f"committing, delete {lake.path(LOCK)}"
            )
        time.sleep(poll * (0.5 + random.random()))
    try:
        yield
    finally:
        held = _read(lake)
        if held is not None and held.get("token") == token:
            remove(lake, LOCK)
