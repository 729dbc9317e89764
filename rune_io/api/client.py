"""The facade: one HTTP session shared by ``.graph``, ``.streams`` and ``.v1``."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from rune_io.api.graph import GraphClient
from rune_io.api.http import HttpClient
from rune_io.api.retry import RetryPolicy
from rune_io.api.streams import StreamReader
from rune_io.api.v1 import V1Client
from rune_io.config import Settings, load_settings


class RuneClient:
    """Everything that talks to Rune, over one pooled session.

    Args:
        settings: from :func:`rune_io.config.load_settings` (default: loaded now).
        policy: a retry policy overriding the one the settings describe.
        sleep: the wait between retries (tests inject a fake).
        session: a ``requests.Session`` to use.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.http = HttpClient(self.settings, policy=policy, sleep=sleep, session=session)
        self.graph = GraphClient(self.http)
        self.streams = StreamReader(self.http)
        self.v1 = V1Client(self.http)

    def close(self) -> None:
        """Close the shared session."""
        self.http.close()

    def __enter__(self) -> RuneClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"RuneClient(auth={s.auth_method}, stream_url={s.stream_url}, graph_url={s.graph_url})"
        )
