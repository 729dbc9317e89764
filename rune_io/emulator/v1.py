"""V1 Stream API (placeholder until the full implementation lands)."""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.responses import Response

from .auth import Principal
from .errors import ApiError
from .state import EmulatorState


def handle(state: EmulatorState, principal: Principal, resource: str, q: QueryParams) -> Response:
    raise ApiError(404, f"unknown V1 resource {resource!r}")
