"""The ASGI application: one server for ``/graphql``, ``/v1/...`` and ``/v2/...``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from graphql import graphql_sync
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import aggregates, v1, v2
from .auth import Principal, authenticate
from .chaos import ChaosMiddleware
from .errors import ApiError, error_response
from .graphql_roots import attach
from .graphql_schema import build
from .state import EmulatorState

log = logging.getLogger("rune_emulator")


class LatencyMiddleware:
    """A fixed delay before every response (``EmulatorConfig.latency_ms``)."""

    def __init__(self, app, delay_s: float) -> None:
        self.app = app
        self.delay_s = delay_s

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        await self.app(scope, receive, send)


def _principal(state: EmulatorState, request: Request) -> Principal:
    return authenticate(request.headers, state.config, state.cohort.client_key_patient_id)


def _guarded(state: EmulatorState, fn: Callable[[Request, Principal], Response]):
    """Authenticate, run the (blocking, numpy-heavy) handler in a thread, map errors."""

    async def endpoint(request: Request) -> Response:
        try:
            principal = _principal(state, request)
            return await run_in_threadpool(fn, request, principal)
        except ApiError as e:
            return error_response(e.status, e.message, e.retry_after)
        except Exception as e:  # a bug must still be a well-formed 500
            log.exception("emulator handler failed")
            return error_response(500, f"internal error: {type(e).__name__}: {e}")

    return endpoint


def create_app(state: EmulatorState):
    """ASGI app over ``state`` (wrapped in the chaos/stats middleware)."""
    schema = attach(build())

    async def graphql_endpoint(request: Request) -> Response:
        try:
            principal = _principal(state, request)
        except ApiError as e:
            return error_response(e.status, e.message)
        try:
            body = json.loads(await request.body() or b"{}")
            query = body["query"]
            variables = body.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return error_response(400, "body must be JSON with a 'query'")
        result = await run_in_threadpool(
            graphql_sync,
            schema,
            query,
            variable_values=variables,
            operation_name=body.get("operationName"),
            context_value={"state": state, "principal": principal, "variables": variables},
        )
        return JSONResponse(result.formatted)

    def v2_stream(request: Request, principal: Principal) -> Response:
        sid = request.path_params["stream_id"]
        return v2.stream_data(state, principal, sid, request.query_params, request.url.path)

    def v2_availability(request: Request, principal: Principal) -> Response:
        sid = request.path_params["stream_id"]
        q = request.query_params
        return v2.availability(state, principal, [sid], q, request.url.path, batch=False)

    def v2_batch(request: Request, principal: Principal) -> Response:
        q = request.query_params
        ids = v2.require_stream_ids(q)
        return v2.availability(state, principal, ids, q, request.url.path, batch=True)

    def v2_window(request: Request, principal: Principal) -> Response:
        sid = request.path_params["stream_id"]
        return aggregates.aggregate_window(state, principal, sid, request.query_params)

    def v2_daily(request: Request, principal: Principal) -> Response:
        sid = request.path_params["stream_id"]
        return aggregates.daily_aggregate(state, principal, sid, request.query_params)

    def v1_resource(request: Request, principal: Principal) -> Response:
        return v1.handle(state, principal, request.path_params["resource"], request.query_params)

    async def health(request: Request) -> Response:
        return JSONResponse({"success": True, "now": state.store.now_ns / 1e9})

    async def unknown_path(request: Request) -> Response:
        return error_response(404, f"no such endpoint: {request.method} {request.url.path}")

    routes = [
        Route("/health", health),
        Route("/graphql", graphql_endpoint, methods=["POST"]),
        Route("/v2/batch/availability", _guarded(state, v2_batch)),
        Route("/v2/streams/{stream_id}/availability", _guarded(state, v2_availability)),
        Route("/v2/streams/{stream_id}/aggregate_window", _guarded(state, v2_window)),
        Route("/v2/streams/{stream_id}/daily_aggregate", _guarded(state, v2_daily)),
        Route("/v2/streams/{stream_id}", _guarded(state, v2_stream)),
        Route("/v1/{resource}", _guarded(state, v1_resource)),
        Route("/{path:path}", unknown_path, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    app = Starlette(routes=routes)
    return LatencyMiddleware(ChaosMiddleware(app, state), state.config.latency_ms / 1000.0)
