"""One pooled HTTP session per client, with timeouts and the retry policy on every request.

:class:`HttpClient` wraps a ``requests.Session`` (connection pool, auth headers,
``(connect, read)`` timeouts). :meth:`HttpClient.request` reads each body whole (streamed,
so a body cut short is detected and retried rather than half-parsed), retries what the
:class:`~rune_io.api.retry.RetryPolicy` says, and turns error statuses into
:mod:`rune_io.errors`. A ``parse`` callback lets a caller validate the body inside the
retry loop: a page that does not parse is fetched again.

Credentials travel only in session headers; log lines and error messages carry
:func:`sanitize_url` output.
"""

from __future__ import annotations

import http.client
import json as _json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from rune_io.api.retry import RetryPolicy, parse_retry_after
from rune_io.config import Settings
from rune_io.errors import (
    ApiError,
    ConfigError,
    DataError,
    RequestError,
    RuneIOError,
    TransientError,
    TruncatedBody,
    api_error,
)

log = logging.getLogger("rune_io.api.http")

T = TypeVar("T")

USER_AGENT = "rune-lake/0.1 (rune_io; python-requests)"

_SECRET_PARAM_HINTS = ("secret", "access_key", "password", "jwt", "authorization")


def sanitize_url(url: str, params: Mapping[str, Any] | None = None) -> str:
    """The URL with its query, safe to log: no userinfo, secret-looking params masked."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            masked = any(h in key.lower() for h in _SECRET_PARAM_HINTS)
            query.append((key, "***" if masked else str(v)))
    q = urlencode(query) if query else parts.query
    return urlunsplit((parts.scheme, netloc, parts.path, q, ""))


@dataclass(frozen=True)
class Response:
    """A fully read response."""

    status: int
    headers: CaseInsensitiveDict[str]
    content: bytes
    url: str
    """Sanitised URL of the request (with params)."""
    attempts: int = 1
    """Attempts it took."""

    def json(self) -> Any:
        """The body parsed as JSON; :class:`DataError` if it is not JSON."""
        try:
            return _json.loads(self.content)
        except ValueError as exc:
            raise DataError(
                f"response from {self.url} is not valid JSON ({exc}); first bytes: "
                f"{self.content[:80]!r}",
                transient=True,
            ) from None


class _Session(requests.Session):
    """A ``requests.Session`` that reads the environment's proxy and CA-bundle settings
    once per origin (scheme and host), not on every request.

    requests re-reads them for each request (``merge_environment_settings``: every
    ``*_proxy`` variable, ``NO_PROXY`` matching, ``REQUESTS_CA_BUNDLE``): 0.5 ms a
    request, 0.1 s of CPU with the GIL held in a whole-cohort refresh of the default
    cohort (cProfile). The result is the same; a variable changed while a client lives
    is seen by the next client.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple, Any] = {}  # requests' settings, per origin

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        if proxies:  # per-request proxies: requests' own merge
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = (urlsplit(url)[:2], stream, verify, cert)
        got = self._environment.get(key)
        if got is None:
            got = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = got
        return {**got, "proxies": dict(got["proxies"])}


class HttpClient:
    """A pooled session with timeouts, auth headers and the retry policy.

    Args:
        settings: credentials, timeouts, retry knobs, TLS verification.
        policy: overrides ``settings.retry_policy``.
        sleep: the function that waits between attempts (tests inject a fake).
        session: a ``requests.Session`` to use (default: a new one).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy or settings.retry_policy
        self.sleep = sleep
        self.session = session or _Session()
        adapter = HTTPAdapter(
            pool_connections=4, pool_maxsize=settings.pool_size, max_retries=0, pool_block=False
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, **settings.auth_headers()})
        self.session.verify = settings.verify_tls
        self.timeout = settings.timeout

    def close(self) -> None:
        """Close the session and its pooled connections."""
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpClient(auth={self.settings.auth_method}, policy={self.policy!r})"

    @overload
    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = ...,
        json: Any = ...,
        parse: None = ...,
    ) -> Response: ...

    @overload
    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = ...,
        json: Any = ...,
        parse: Callable[[Response], T],
    ) -> T: ...

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        parse: Callable[[Response], Any] | None = None,
    ) -> Any:
        """Send a request, retrying per the policy; return the response or ``parse(response)``.

        Raises:
            ApiError: (a subclass by status) for error statuses, once retries are spent
                or at once for statuses that are never retried.
            TransientError: network failures that outlived the retries.
            DataError: ``parse`` kept failing.
        """
        policy = self.policy
        safe = sanitize_url(url, params)
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            t0 = time.perf_counter()
            try:
                resp = self._send(method, url, clean_params, json)
                if resp.status >= 400:
                    if not policy.retries_status(resp.status) or attempt >= policy.max_attempts:
                        err = api_error(resp.status, resp.content, safe)
                        log.debug("%s %s -> %s (attempt %d)", method, safe, resp.status, attempt)
                        raise err
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    reason: str = f"HTTP {resp.status}"
                else:
                    resp = Response(resp.status, resp.headers, resp.content, safe, attempt)
                    log.debug(
                        "%s %s -> %s, %d bytes in %.3fs (attempt %d)",
                        method, safe, resp.status, len(resp.content),
                        time.perf_counter() - t0, attempt,
                    )  # fmt: skip
                    return parse(resp) if parse is not None else resp
            except ApiError:
                raise
            except Exception as exc:
                if _certificate_failure(exc):  # the same certificate fails the same way
                    raise ConfigError(
                        f"the TLS certificate of {safe} does not verify ({_cert_reason(exc)}); "
                        "fix the server's certificate or the CA bundle (REQUESTS_CA_BUNDLE), "
                        "or, for a test server only, set verify_tls: false explicitly"
                    ) from None
                if not policy.retries_exception(exc):
                    failure = _as_rune_error(exc, method, safe)
                    if failure is exc:
                        raise
                    raise failure from exc
                if attempt >= policy.max_attempts:
                    if isinstance(exc, DataError):
                        raise DataError(
                            f"{exc} (after {attempt} attempts)", transient=exc.transient
                        ) from exc
                    raise TransientError(
                        f"{method} {safe} failed after {attempt} attempts: "
                        f"{type(exc).__name__}: {exc}",
                        url=safe,
                        attempts=attempt,
                    ) from exc
                reason = f"{type(exc).__name__}: {exc}"
            wait = policy.backoff(attempt, retry_after)
            log.warning(
                "%s %s: %s; retry %d/%d in %.2fs",
                method, safe, reason[:300], attempt, policy.max_attempts - 1, wait,
            )  # fmt: skip
            self.sleep(wait)

    def get(self, url: str, **kwargs: Any) -> Any:
        """``request("GET", url, ...)``."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        """``request("POST", url, ...)``."""
        return self.request("POST", url, **kwargs)

    def _send(self, method: str, url: str, params: Mapping[str, Any], json: Any) -> Response:
        # verify per request: requests lets REQUESTS_CA_BUNDLE override session.verify=False
        r = self.session.request(
            method,
            url,
            params=params,
            json=json,
            timeout=self.timeout,
            stream=True,
            verify=self.settings.verify_tls,
        )
        try:
            content = _read_body(r)
        finally:
            r.close()
        return Response(r.status_code, r.headers, content, url)


_BAD_URL = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
)


def _as_rune_error(exc: Exception, method: str, safe: str) -> Exception:
    """A failure that is not retried, as a :class:`RuneIOError` (those pass unchanged).

    Exceptions of other kinds raised by a ``parse`` callback are bugs and pass unchanged.
    """
    if isinstance(exc, RuneIOError):
        return exc
    if isinstance(exc, _BAD_URL):
        return ConfigError(f"{method} {safe}: {exc}; check the stream_url / graph_url setting")
    if isinstance(exc, requests.RequestException):
        return RequestError(f"{method} {safe} failed: {type(exc).__name__}: {exc}")
    return exc


def _cert_chain(exc: BaseException):
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack += [c for c in (e.__cause__, e.__context__) if c is not None]
        stack += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)


def _certificate_failure(exc: BaseException) -> bool:
    """True when a request failed because the server's certificate did not verify."""
    if not isinstance(exc, requests.exceptions.SSLError):
        return False
    return any(isinstance(e, ssl.SSLCertVerificationError) for e in _cert_chain(exc)) or (
        "CERTIFICATE_VERIFY_FAILED" in str(exc)
    )


def _cert_reason(exc: BaseException) -> str:
    for e in _cert_chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            return e.verify_message or str(e)
    return "certificate verify failed"


def _read_body(r: requests.Response) -> bytes:
    """Read the whole body; raise :class:`TruncatedBody` if it was cut short."""
    try:
        content = r.raw.read(decode_content=True)
    except (urllib3.exceptions.ProtocolError, http.client.IncompleteRead) as exc:
        raise TruncatedBody(f"body cut short: {exc}") from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.ReadTimeout(str(exc)) from exc
    except urllib3.exceptions.DecodeError as exc:
        raise TruncatedBody(f"body does not decode: {exc}") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise requests.ConnectionError(str(exc)) from exc
    content = content or b""
    expected = r.headers.get("Content-Length")
    if (
        expected is not None
        and not r.headers.get("Content-Encoding")
        and r.request.method != "HEAD"
    ):
        try:
            n = int(expected)
        except ValueError:
            n = -1
        if n >= 0 and len(content) != n:
            raise TruncatedBody(f"body has {len(content)} bytes, Content-Length says {n}")
    return content
