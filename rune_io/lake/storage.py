"""The lake's storage: an fsspec filesystem plus a root, and atomic writes on it.

Atomicity: every file is first written completely to a local staging file, then
published in one step: ``os.replace`` into place on local disk (the staging directory is
``<lake>/_staging``, on the same filesystem, outside every table), or one
``put_file`` on object stores (s3fs: a single PUT, or a multipart upload that is only
completed, hence visible, after its last part, and aborted on error). Writing straight
into ``fs.open(path, "wb")`` would not do: fsspec's file ``__exit__`` *closes* (commits)
the object even when the ``with`` body raised, publishing a partial file.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from rune_io.lake.errors import LakeError, LakeFullError, LakeVersionError
from rune_io.lake.layout import CATALOG_DIR, LAYOUT_VERSION, STAGING_DIR
from rune_io.lake.retries import StorageStats
from rune_io.lake.retries import watch as watch_retries
from rune_io.lake.version import FORMAT_VERSION
from rune_io.settings.environ import passed_through

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Lake:
    """A lake: an fsspec filesystem and the root path on it (no protocol prefix)."""

    url: str
    fs: fsspec.AbstractFileSystem = field(repr=False, compare=False)
    root: str
    #: the object store's retries so far (S3; always 0 locally), see rune_io.lake.retries
    stats: StorageStats = field(default_factory=StorageStats, repr=False, compare=False)
    #: (table, schema fingerprint) this Lake object has checked and registered already
    schemas_ok: set[tuple[str, str]] = field(default_factory=set, repr=False, compare=False)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, rel: str = "") -> str:
        """Full filesystem path of ``rel`` (a path relative to the lake root)."""
        return f"{self.root}/{rel}" if rel else self.root

    def rel(self, path: str) -> str:
        """Path relative to the lake root of a full filesystem path."""
        path = self.fs._strip_protocol(path)
        prefix = self.root + "/"
        if not path.startswith(prefix):
            raise LakeError(f"path {path!r} is outside the lake root {self.root!r}")
        return path[len(prefix) :]

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self.path(rel))


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def _s3_options_from_env(options: dict[str, Any]) -> dict[str, Any]:
    opts = dict(options)
    endpoint = passed_through("AWS_ENDPOINT_URL_S3") or passed_through("AWS_ENDPOINT_URL")
    if (
        endpoint
        and "endpoint_url" not in opts
        and "endpoint_url" not in opts.get("client_kwargs", {})
    ):
        opts["endpoint_url"] = endpoint
    # Listings must reflect other processes' writes (catalog repair, tests).
    opts.setdefault("use_listings_cache", False)
    return opts


def open_lake(
    url: str | os.PathLike[str],
    storage_options: dict[str, Any] | None = None,
    *,
    create: bool = True,
) -> Lake:
    """Open (and by default create) the lake at ``url``: a local directory or any fsspec
    URL such as ``s3://bucket/prefix``.

    ``storage_options`` go to the filesystem (for s3fs: ``endpoint_url``, ``key``,
    ``secret``, ...); for S3, ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` fill in a missing
    endpoint and botocore reads credentials from the usual ``AWS_*`` variables.
    Writes ``_catalog/_lake.json`` (layout version) on first use; raises
    :class:`LakeVersionError` for a lake of a newer layout, :class:`LakeError` if
    ``create`` is false and no lake exists there.
    """
    url = os.fspath(url)
    protocol = fsspec.core.split_protocol(url)[0] or "file"
    options = dict(storage_options or {})
    if protocol in ("s3", "s3a"):
        options = _s3_options_from_env(options)
    fs, root = fsspec.core.url_to_fs(url, **options)
    root = root.rstrip("/")
    lake = Lake(
        url=url, fs=fs, root=root, stats=watch_retries(fs) if not _is_local(fs) else StorageStats()
    )
    marker = lake.path(f"{CATALOG_DIR}/_lake.json")
    try:
        info = json.loads(fs.cat_file(marker))
    except FileNotFoundError:
        if not create:
            raise LakeError(f"no lake at {url!r} (missing {CATALOG_DIR}/_lake.json)") from None
        info = {
            "format": "rune-lake",
            "layout_version": LAYOUT_VERSION,
            "format_version": FORMAT_VERSION,
            "lake_id": uuid.uuid4().hex,
            "created_at": datetime.now(UTC).isoformat(),
        }
        if lake.is_local:
            fs.makedirs(root, exist_ok=True)
        put_bytes(lake, f"{CATALOG_DIR}/_lake.json", json.dumps(info, indent=1).encode())
    if int(info.get("layout_version", 0)) > LAYOUT_VERSION:
        raise LakeVersionError(
            f"lake {url!r} has layout version {info['layout_version']}, this rune_io reads "
            f"up to {LAYOUT_VERSION}: upgrade rune-lake"
        )
    return lake


#: a quick answer for the pre-flight check: bounded connect timeout, no retry storm
_PROBE_S3_OPTIONS = {
    "config_kwargs": {"connect_timeout": 3, "read_timeout": 10, "retries": {"max_attempts": 2}}
}


def check_writable(url: str, storage_options: dict[str, Any] | None = None) -> None:
    """Open (create) the lake at ``url`` and write and remove a probe object, quickly.

    Raises :class:`LakeError` with one line saying what is wrong and what to set: no
    credentials found, endpoint unreachable, access denied, no such bucket, a path that
    cannot be written. Meant to run before a flow starts (an S3 endpoint that does not
    answer fails in seconds, not after botocore's and s3fs's retries).
    """
    options = dict(storage_options or {})
    remote = (fsspec.core.split_protocol(url)[0] or "file") in ("s3", "s3a")
    if remote:
        for key, value in _PROBE_S3_OPTIONS.items():
            options.setdefault(key, value)
    with storage_errors(url):
        lake = open_lake(url, options)
        if remote:
            lake.fs.retries = 1  # s3fs's own retry loop (5 by default), on this instance only
        put_bytes(lake, f"{CATALOG_DIR}/_write_probe", b"ok")
        lake.fs.rm_file(lake.path(f"{CATALOG_DIR}/_write_probe"))


@contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Turn the storage errors a user causes (credentials, endpoint, permissions, bucket,
    path) into a one-line :class:`LakeError` that says what to set."""
    try:
        yield
    except LakeError:
        raise
    except Exception as exc:
        message = _storage_problem(url, exc)
        if message is None:
            raise
        raise LakeError(message) from None


def _storage_problem(url: str, exc: BaseException) -> str | None:
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    cause = type(exc.__cause__).__name__ if exc.__cause__ else ""
    remote = (fsspec.core.split_protocol(url)[0] or "file") not in ("file", "local")
    endpoint = (
        passed_through("AWS_ENDPOINT_URL_S3") or passed_through("AWS_ENDPOINT_URL") or "AWS S3"
    )
    if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
        return (
            f"no AWS credentials found for the lake {url!r}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and AWS_ENDPOINT_URL for MinIO & co."
        )
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return (
            f"cannot reach the S3 endpoint {endpoint} for the lake {url!r} ({text}): check "
            "AWS_ENDPOINT_URL (MinIO & co.) or the network"
        )
    if isinstance(exc, PermissionError) and remote:
        return (
            f"access denied to the lake {url!r} ({text}): use AWS credentials "
            "(AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) allowed to list, "
            "read, write and delete under it"
        )
    if isinstance(exc, FileNotFoundError) and cause == "NoSuchBucket":
        bucket = url.split("://", 1)[-1].split("/", 1)[0]
        return (
            f"no such bucket {bucket!r} for the lake {url!r} at {endpoint}: create it, or "
            "fix --lake (or RUNE_LAKE_URL)"
        )
    if isinstance(exc, OSError):
        return f"cannot write to the lake at {url!r}: {text or name}"
    return None


@dataclass
class Published:
    """What :func:`atomic_file` published: the file's size and sha256."""

    bytes: int = 0
    checksum: str = ""


def _staging_file(lake: Lake) -> str:
    name = f"{uuid.uuid4().hex}.tmp"
    if lake.is_local:
        staging = lake.path(STAGING_DIR)
        os.makedirs(staging, exist_ok=True)
        return os.path.join(staging, name)
    return os.path.join(tempfile.gettempdir(), f"rune-lake-{name}")


def _settle(path: str, checksum: bool, sync: bool) -> str:
    """The file's sha256 (if ``checksum``) and its data on disk (if ``sync``), in one open."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while checksum and (chunk := f.read(_CHUNK)):
            h.update(chunk)
        if sync:
            os.fsync(f.fileno())
    return "sha256:" + h.hexdigest() if checksum else ""


@contextmanager
def atomic_file(
    lake: Lake, rel: str, *, checksum: bool = True, sync: bool = True
) -> Iterator[tuple[str, Published]]:
    """Yield ``(local staging path, result)``; write the file there. On normal exit the
    file is published at ``rel`` in one step and ``result`` holds its size and checksum
    (with ``checksum=False``: no checksum, ""); on an exception nothing is published and
    the staging file is removed. A local file's data is on disk before it is published
    unless ``sync=False`` (a power loss may then leave it empty or cut short)."""
    tmp = _staging_file(lake)
    result = Published()
    sync = sync and lake.is_local
    try:
        yield tmp, result
        result.bytes = os.path.getsize(tmp)
        final = lake.path(rel)
        if checksum or sync:
            result.checksum = _settle(tmp, checksum, sync=sync)
        if lake.is_local:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)
        else:
            lake.fs.put_file(tmp, final)
    except OSError as exc:
        if not _is_no_space(exc):
            raise
        raise _disk_full(tmp, rel) from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _is_no_space(exc: OSError) -> bool:
    """ENOSPC or EDQUOT, from Python's own I/O or from Arrow's (which puts the errno in
    its message: ``[errno 28] No space left on device``)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "[errno 28]" in text or "No space left on device" in text


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _disk_full(tmp: str, rel: str) -> LakeFullError:
    folder = os.path.dirname(tmp)
    written = os.path.getsize(tmp) if os.path.exists(tmp) else 0
    try:
        st = os.statvfs(folder)
        free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
        where = f"{_size(free)} free of {_size(total)}"
    except OSError:
        where = "free space unknown"
    reached = f"; the file had reached {_size(written)}" if written else ""
    return LakeFullError(
        f"no space left on the disk at {folder!r} ({where}) while writing {rel!r}{reached}: "
        f"free at least {_size(max(2 * written, 1 << 20))} (a whole partition file, plus "
        "room for the catalog) and run again - nothing partial was published"
    )


#: where the per-path publish locks live (outside every table and the catalog)
LOCKS_DIR = "_locks"
_STRIPES = 256


@contextmanager
def path_lock(lake: Lake, rel: str) -> Iterator[None]:
    """Hold the publish lock of ``rel`` (one of 256 lock stripes, ``flock`` on a file
    under ``<lake>/_locks/``) while a file is written, published and its catalog entry
    recorded.

    Two runs replacing the same partition at once (the nightly refresh and a backfill)
    otherwise interleave: A stamps its entry, B stamps, B publishes, then A publishes,
    and the catalog (later stamp wins) keeps B's entry beside A's file - size and
    checksum wrong. In turns per path, the order of the entries is the order of the
    files. Local lakes only (``flock`` is per host); an object store has no such lock
    (docs/RELIABILITY.md, limits)."""
    if not lake.is_local:
        yield
        return
    folder = lake.path(LOCKS_DIR)
    os.makedirs(folder, exist_ok=True)
    stripe = zlib.crc32(rel.encode()) % _STRIPES
    with open(os.path.join(folder, f"{stripe:03d}.lock"), "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def put_bytes(lake: Lake, rel: str, data: bytes, *, sync: bool = True) -> None:
    """Publish a small object atomically (local: temp + rename; remote: one PUT); see
    :func:`atomic_file` for ``sync``."""
    if lake.is_local:
        with atomic_file(lake, rel, checksum=False, sync=sync) as (tmp, _):
            with open(tmp, "wb") as f:
                f.write(data)
    else:
        lake.fs.pipe_file(lake.path(rel), data)


def remove(lake: Lake, rel: str) -> bool:
    """Remove a file if it exists; returns whether it existed."""
    try:
        lake.fs.rm_file(lake.path(rel))
        return True
    except FileNotFoundError:
        return False


def list_files(lake: Lake, rel_dir: str) -> dict[str, int]:
    """``{relative path: size}`` of every file below ``rel_dir`` (empty if missing)."""
    base = lake.path(rel_dir)
    try:
        found = lake.fs.find(base, detail=True)
    except FileNotFoundError:
        return {}
    return {
        lake.rel(p): int(info.get("size") or 0)
        for p, info in found.items()
        if info.get("type", "file") == "file"
    }
