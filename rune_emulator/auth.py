"""Authentication: access-token pair, client-key pair (one patient), or JWT."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.datastructures import Headers

from .config import EmulatorConfig
from .errors import ApiError


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``kind`` is ``"user"`` (token or JWT) or ``"client"``."""

    kind: str
    patient_id: str | None = None  # the client key's patient

    @property
    def is_client(self) -> bool:
        return self.kind == "client"


def _eq(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


def authenticate(headers: Headers, cfg: EmulatorConfig, client_patient_id: str) -> Principal:
    """The caller's principal, or :class:`ApiError` 401."""
    tid = headers.get("x-rune-user-access-token-id")
    tsecret = headers.get("x-rune-user-access-token-secret")
    kid = headers.get("x-rune-client-key-id")
    kkey = headers.get("x-rune-client-access-key")
    jwt = headers.get("x-rune-user-access-token")
    if tid is not None or tsecret is not None:
        if _eq(tid, cfg.access_token_id) and _eq(tsecret, cfg.access_token_secret):
            return Principal("user")
        raise ApiError(401, "invalid access token")
    if kid is not None or kkey is not None:
        if _eq(kid, cfg.client_key_id) and _eq(kkey, cfg.client_access_key):
            return Principal("client", client_patient_id)
        raise ApiError(401, "invalid client key")
    if jwt is not None:
        if _eq(jwt, cfg.jwt):
            return Principal("user")
        raise ApiError(401, "invalid JWT")
    raise ApiError(401, "missing authentication headers")
