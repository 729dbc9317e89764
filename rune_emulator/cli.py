"""Serve the emulator until interrupted: ``rune-lake emulator`` / ``python -m rune_emulator``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import uvicorn

from .config import (
    DEMO_ACCESS_TOKEN_ID,
    DEMO_ACCESS_TOKEN_SECRET,
    DEMO_CLIENT_ACCESS_KEY,
    DEMO_CLIENT_KEY_ID,
    DEMO_JWT,
    ChaosConfig,
    EmulatorConfig,
)
from .server import Emulator, tcp_listener


def parse_time(text: str | None) -> datetime:
    """ISO 8601 (naive = UTC) or unix seconds; None = now, floored to the minute.

    Raises ``ValueError`` with a one-line message on anything else.
    """
    if not text:
        now = datetime.now(UTC)
        return now.replace(second=0, microsecond=0)
    try:
        return datetime.fromtimestamp(float(text), tz=UTC)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--now: not an ISO time or unix seconds: {text!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def build_config(
    *,
    seed: int = 0,
    patients: int = 3,
    days: int = 3,
    now: str | datetime | None = None,
    chaos: float = 0.0,
    page_size: int = 100_000,
    access_token_id: str | None = None,
    access_token_secret: str | None = None,
    client_key_id: str | None = None,
    client_access_key: str | None = None,
    jwt: str | None = None,
    late_data_hours: float = 0.0,
    latency_ms: float = 0.0,
) -> EmulatorConfig:
    """An :class:`EmulatorConfig` from CLI-style options (None = documented demo value).

    Without ``now`` the clock starts at the current minute and advances with wall time
    (a refresh minutes later finds the new data); ``now`` pins it.
    """
    return EmulatorConfig(
        seed=seed,
        patients=patients,
        days=days,
        now=now if isinstance(now, datetime) else parse_time(now),
        clock_advances=now is None,
        latency_ms=latency_ms,
        page_size=page_size,
        chaos=ChaosConfig.uniform(chaos, seed=seed) if chaos > 0 else None,
        access_token_id=access_token_id or DEMO_ACCESS_TOKEN_ID,
        access_token_secret=access_token_secret or DEMO_ACCESS_TOKEN_SECRET,
        client_key_id=client_key_id or DEMO_CLIENT_KEY_ID,
        client_access_key=client_access_key or DEMO_CLIENT_ACCESS_KEY,
        jwt=jwt or DEMO_JWT,
        late_data_hours=late_data_hours,
    )


def banner(emu: Emulator, url: str) -> str:
    c = emu.config
    return "\n".join(
        [
            f"Rune API emulator at {url}  (use it as both stream_url and graph_url)",
            f"  clock {'starts' if c.clock_advances else 'pinned'} at {c.now.isoformat()}"
            f"{' and advances with wall time' if c.clock_advances else ''}; "
            f"data from {emu.cohort.data_start.isoformat()}",
            f"  {c.patients} patients, {len(emu.cohort.specs)} streams, seed={c.seed}, "
            f"page_size={c.page_size}, chaos={'on' if c.chaos else 'off'}, "
            f"latency={c.latency_ms:g} ms",
            "  accepted credentials:",
            f"    access token : id={c.access_token_id}  secret={c.access_token_secret}",
            f"    client key   : id={c.client_key_id}  key={c.client_access_key}"
            f"  (patient {emu.cohort.client_key_patient_id})",
            f"    JWT          : {c.jwt}",
            "Ctrl-C to stop.",
        ]
    )


def serve_forever(host: str = "127.0.0.1", port: int = 8765, **options: object) -> None:
    """Serve in the foreground until interrupted. ``options``: see :func:`build_config`."""
    emu = Emulator(build_config(**options))  # type: ignore[arg-type]
    sock = tcp_listener(host, port)
    url = f"http://{host}:{sock.getsockname()[1]}"
    print(banner(emu, url), flush=True)
    server = uvicorn.Server(
        uvicorn.Config(emu.app, log_level="warning", access_log=False, lifespan="off")
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rune_emulator`` entry point."""
    p = argparse.ArgumentParser(prog="python -m rune_emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patients", type=int, default=3)
    p.add_argument("--days", type=int, default=3)
    p.add_argument(
        "--now",
        default=None,
        help="pin the clock at an ISO time or unix seconds (default: start at the current "
        "minute and advance with wall time)",
    )
    p.add_argument("--chaos", type=float, default=0.0, help="total fault probability")
    p.add_argument("--page-size", type=int, default=100_000)
    p.add_argument("--late-data-hours", type=float, default=0.0)
    p.add_argument(
        "--latency-ms", type=float, default=0.0, help="fixed delay before every response"
    )
    p.add_argument("--access-token-id")
    p.add_argument("--access-token-secret")
    p.add_argument("--client-key-id")
    p.add_argument("--client-access-key")
    p.add_argument("--jwt")
    a = p.parse_args(argv)
    try:
        build_config(now=a.now, patients=a.patients, days=a.days, latency_ms=a.latency_ms)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    serve_forever(
        a.host,
        a.port,
        seed=a.seed,
        patients=a.patients,
        days=a.days,
        now=a.now,
        chaos=a.chaos,
        page_size=a.page_size,
        late_data_hours=a.late_data_hours,
        latency_ms=a.latency_ms,
        access_token_id=a.access_token_id,
        access_token_secret=a.access_token_secret,
        client_key_id=a.client_key_id,
        client_access_key=a.client_access_key,
        jwt=a.jwt,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
