"""A thin async Bitrix24 REST client: webhook or OAuth, limits, retries, batch.

Why not b24pysdk or fast-bitrix24: docs/SYNC.md. In short, we need keyset
chains inside ``batch`` (``start=-1`` with ``$result[..][49][ID]``), the
per-method ``time.operating`` budget, and an exact list of retried errors;
b24pysdk is synchronous and hard-codes https, fast-bitrix24 pages by offsets
and retries broadly.

Only these are retried, with exponential backoff: 503 QUERY_LIMIT_EXCEEDED,
other 5xx answers, timeouts, dropped connections and a 200 whose body is not
JSON. 429 OPERATION_TIME_LIMIT waits until the method's budget resets. A 401
``expired_token`` refreshes the OAuth token once through the token provider.
Everything else raises :class:`BitrixError` at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from rop.bitrix.errors import AuthExpired, BitrixError
from rop.bitrix.query import php_query
from rop.bitrix.ratelimit import STANDARD_BURST, STANDARD_RATE_PER_SECOND, LeakyBucket
from rop.bitrix.values import to_utc

# Every REST request, for the request log (rop.logs keeps it rotated for days).
REST_LOG = logging.getLogger("rop.rest")

# Per-method execution budget (BITRIX24_API.md §2, REST docs "Limits on
# execution time"): 480 s summed over a sliding 10-minute window; over it the
# method answers 429 OPERATION_TIME_LIMIT until ``operating_reset_at``.
OPERATING_LIMIT_SECONDS = 480.0
# Pause a method this far below the budget: one 50-command batch can add tens
# of seconds of server time at once.
OPERATING_MARGIN_SECONDS = 60.0
# The budget's window is ten one-minute buckets (limits.md): a blocked method
# frees some budget at the latest a bucket later.
OPERATING_BUCKET_SECONDS = 60.0
# Bitrix24 cloud aborts a request after 60 s (BITRIX24_API.md §2).
REQUEST_TIMEOUT_SECONDS = 65.0
# The most commands one ``batch`` may carry (ERROR_BATCH_LENGTH_EXCEEDED above).
BATCH_MAX_COMMANDS = 50
# Rows per list page: fixed by Bitrix24, there is no ``limit`` parameter.
PAGE_SIZE = 50

# Errors that must not be retried whatever their HTTP status: a manual REST
# block by Bitrix24 support (error-codes.md: "Do not retry the call"; older
# docs gave it status 503, which would otherwise be retried).
_NEVER_RETRIED = frozenset({"OVERLOAD_LIMIT"})

# OAuth token provider: called with refresh=False for the current token and
# once with refresh=True after a 401 expired_token.
TokenProvider = Callable[[bool], Awaitable[str]]
Command = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8  # tries per request before giving up
    base_delay: float = 0.5  # seconds; doubles each retry, with jitter
    max_delay: float = 20.0
    max_operating_waits: int = 3  # 429 OPERATION_TIME_LIMIT waits per request


@dataclass
class Reply:
    """One method's answer: ``result`` plus the paging and timing envelope."""

    result: Any
    total: int | None = None
    next: int | None = None
    time: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchReply:
    """A ``batch`` answer; :meth:`get` raises the error of a failed command."""

    methods: dict[str, str]
    results: dict[str, Any]
    errors: dict[str, Any]
    totals: dict[str, Any]
    time: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        if key in self.errors and key not in self.results:
            err = self.errors[key]
            if isinstance(err, dict):
                raise BitrixError(
                    self.methods.get(key, key),
                    str(err.get("error") or ""),
                    str(err.get("error_description") or "the command failed"),
                    200,
                )
            raise BitrixError(self.methods.get(key, key), "", str(err), 200)
        if key not in self.results:
            raise BitrixError(self.methods.get(key, key), "", "missing from the batch answer", 200)
        return self.results[key]

    def records(self, key: str) -> list[Any]:
        """A list command's records; an answer that is not a list names the method."""
        result = self.get(key)
        try:
            return unwrap_list(result)
        except TypeError:
            snippet = repr(result)[:60]
            raise BitrixError(
                self.methods.get(key, key), "", f"expected a list of records, got {snippet}", 200
            ) from None

    def total(self, key: str) -> int | None:
        value = self.totals.get(key)
        return int(value) if value is not None else None


@dataclass(frozen=True)
class Webhook:
    """A parsed incoming-webhook URL."""

    base: str  # .../rest/<user>/<code>/ (ends with a slash)
    portal: str  # the store's portal key: the host (netloc)
    origin: str  # scheme://netloc


def parse_webhook(url: str, *, oauth: bool = False) -> Webhook:
    """Check a webhook URL's shape; raise ValueError naming what is wrong.

    With ``oauth`` the URL is the app's REST endpoint, ``https://PORTAL/rest/``
    (the token travels in the ``auth`` parameter instead of the path).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"webhook URL {url!r} must start with https:// (or http://) and name the portal"
        )
    path = parts.path.rstrip("/")
    segments = [s for s in path.split("/") if s]
    if oauth:
        if not segments or segments[-1] != "rest":
            raise ValueError(f"REST endpoint {url!r} must look like https://PORTAL/rest/")
    elif len(segments) < 3 or segments[-3] != "rest":
        raise ValueError(
            f"webhook URL {url!r} must look like https://PORTAL/rest/USER_ID/CODE/ "
            "(Bitrix24: Developer resources -> Other -> Incoming webhook)"
        )
    return Webhook(
        base=f"{parts.scheme}://{parts.netloc}{path}/",
        portal=parts.netloc,
        origin=f"{parts.scheme}://{parts.netloc}",
    )


def unwrap_list(result: Any) -> list[Any]:
    """The records of a list answer: a bare list, or wrapped ({"items": [...]})."""
    if isinstance(result, list):
        return result
    if isinstance(result, dict):
        for value in result.values():
            if isinstance(value, list):
                return value
        if not result:
            return []
    raise TypeError("not a list answer")


# Method names a batch error message lists before "+N more".
_LABEL_METHODS = 3


def batch_label(methods: tuple[str, ...]) -> str:
    """``batch (crm.deal.list, crm.lead.list +5 more)``: what a failed batch was asking."""
    if not methods:
        return "batch"
    shown = ", ".join(methods[:_LABEL_METHODS])
    more = len(methods) - _LABEL_METHODS
    return f"batch ({shown}{f' +{more} more' if more > 0 else ''})"


def _as_map(value: Any) -> dict[str, Any]:
    # PHP sends an empty map as [] and a map with keys 0..n-1 as a list.
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


class _Retry(Exception):
    def __init__(self, code: str, description: str, status: int = 0) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.status = status


class BitrixClient:
    """Async REST client for one portal. Use as ``async with BitrixClient(...)``."""

    def __init__(
        self,
        base_url: str,
        *,
        rate_per_second: float = STANDARD_RATE_PER_SECOND,
        burst: int = STANDARD_BURST,
        token_provider: TokenProvider | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.base = base_url if base_url.endswith("/") else base_url + "/"
        self.host = urlsplit(self.base).netloc
        self.bucket = LeakyBucket(rate_per_second, burst)
        self.retry = retry or RetryPolicy()
        self.requests = 0  # HTTP requests sent, retries included
        self.retries = 0
        # The portal's own clock: the latest moment a reply's ``time`` named
        # (naive UTC). The report's "today" comes from it, not from ours.
        self.portal_clock: datetime | None = None
        self._token_provider = token_provider
        self._token: str | None = None
        self._auth_lock = asyncio.Lock()
        self._connected = False
        self._operating: dict[str, tuple[float, float]] = {}  # method -> (seconds, reset_at)
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"User-Agent": "rop-report"},
            # A renamed portal answers 302 (BITRIX24_API.md §1); following it
            # would turn our POST into a GET without its parameters.
            follow_redirects=False,
        )

    async def __aenter__(self) -> BitrixClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- public calls ------------------------------------------------------
    async def call(self, method: str, params: dict[str, Any] | None = None) -> Reply:
        data = await self._send(method, dict(params or {}), (method,))
        self._note_time(method, data.get("time"))
        self._note_clock(data.get("time"))
        return Reply(
            result=data.get("result"),
            total=_int_or_none(data.get("total")),
            next=_int_or_none(data.get("next")),
            time=data.get("time") or {},
        )

    async def batch(self, commands: dict[str, Command]) -> BatchReply:
        """Run up to 50 commands in one request (halt=0: each fails on its own)."""
        if not commands:
            return BatchReply({}, {}, {}, {})
        if len(commands) > BATCH_MAX_COMMANDS:
            raise ValueError(f"a batch holds at most {BATCH_MAX_COMMANDS} commands")
        for _ in range(self.retry.max_operating_waits):
            reply = await self._batch_once(commands)
            if reply is not None:
                return reply
        reply = await self._batch_once(commands)
        if reply is None:
            label = batch_label(tuple(dict.fromkeys(m for m, _ in commands.values())))
            raise BitrixError(label, "OPERATION_TIME_LIMIT", "method time budget exhausted", 200)
        return reply

    async def _batch_once(self, commands: dict[str, Command]) -> BatchReply | None:
        cmd = {key: f"{method}?{php_query(params)}" for key, (method, params) in commands.items()}
        methods = {key: method for key, (method, _) in commands.items()}
        distinct = tuple(dict.fromkeys(methods.values()))
        data = await self._send(
            "batch", {"halt": 0, "cmd": cmd}, distinct, label=batch_label(distinct)
        )
        self._note_clock(data.get("time"))
        body = data.get("result")
        if not isinstance(body, dict):
            raise BitrixError(batch_label(distinct), "", "the answer has no result map", 200)
        times = _as_map(body.get("result_time"))
        for key, timing in times.items():
            if key in methods:
                self._note_time(methods[key], timing)
        reply = BatchReply(
            methods=methods,
            results=_as_map(body.get("result")),
            errors=_as_map(body.get("result_error")),
            totals=_as_map(body.get("result_total")),
            time=data.get("time") or {},
        )
        limited = [
            k
            for k, e in reply.errors.items()
            if isinstance(e, dict) and e.get("error") == "OPERATION_TIME_LIMIT"
        ]
        if limited:
            # A nested method ran out of its time budget: wait, then repeat the
            # whole batch (our commands only read, so repeating is safe).
            for key in limited:
                method = methods[key]
                reset_at = self._reset_at(None, (method,))
                self._operating[method] = (OPERATING_LIMIT_SECONDS, reset_at)
            return None
        return reply

    # -- transport ---------------------------------------------------------
    async def _auth(self, refresh: bool, stale: str | None = None) -> str | None:
        """The current token; with ``refresh``, a new one unless ``stale`` was already replaced.

        Concurrent requests that all hit the expiry share one refresh (a
        refresh token is single-use).
        """
        if self._token_provider is None:
            return None
        async with self._auth_lock:
            if self._token is None or (refresh and self._token == stale):
                self._token = await self._token_provider(refresh and self._token is not None)
            return self._token

    async def _send(
        self,
        method: str,
        payload: dict[str, Any],
        methods: tuple[str, ...],
        label: str | None = None,
    ) -> dict[str, Any]:
        """POST one request, retrying what may pass; errors name ``label`` (or ``method``)."""
        label = label or method
        failures = 0
        operating_waits = 0
        refreshed = False
        while True:
            await self._respect_operating(methods)
            token = await self._auth(False)
            body = dict(payload, auth=token) if token else payload
            await self.bucket.acquire()
            self.requests += 1
            try:
                return await self._attempt(method, body, label)
            except AuthExpired:
                if refreshed or self._token_provider is None:
                    raise
                refreshed = True
                await self._auth(True, stale=token)
            except _OperatingLimit as limit:
                operating_waits += 1
                if operating_waits > self.retry.max_operating_waits:
                    raise BitrixError(
                        label, "OPERATION_TIME_LIMIT", limit.description, 429
                    ) from None
                await asyncio.sleep(max(0.0, self._reset_at(limit.reset_at, methods) - time.time()))
            except _Retry as problem:
                failures += 1
                self.retries += 1
                if failures >= self.retry.attempts:
                    raise BitrixError(
                        label,
                        problem.code,
                        f"{problem.description}; gave up after {failures} tries",
                        problem.status,
                    ) from None
                delay = min(self.retry.max_delay, self.retry.base_delay * 2 ** (failures - 1))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311

    async def _attempt(self, method: str, body: dict[str, Any], label: str) -> dict[str, Any]:
        started = time.monotonic()
        status = 0
        try:
            data = await self._exchange(method, body, label)
            status = 200
            return data
        except BitrixError as exc:
            status = exc.status or 0
            raise
        except (_Retry, _OperatingLimit) as exc:
            status = getattr(exc, "status", 0) or 0
            raise
        finally:
            # One line per REST request (Bitrix24 asks servers to keep them for
            # at least 3 days): host and method only, never the token or body.
            REST_LOG.info(
                "rest %s %s %s",
                self.host,
                method,
                status,
                extra={
                    "event": "rest",
                    "portal": self.host,
                    "method": method,
                    "status": status,
                    "ms": round((time.monotonic() - started) * 1000, 1),
                },
            )

    async def _exchange(self, method: str, body: dict[str, Any], label: str) -> dict[str, Any]:
        url = self.base + method
        try:
            response = await self._http.post(url, json=body)
        except httpx.TimeoutException:
            raise _Retry("TIMEOUT", "the portal did not answer in time") from None
        except httpx.ConnectError as exc:
            if not self._connected:
                # Nothing ever answered: a wrong address, not a passing glitch.
                host = urlsplit(self.base).netloc
                raise BitrixError(label, "CONNECT", f"cannot connect to {host}: {exc}") from None
            raise _Retry("CONNECT", f"connection failed: {exc}") from None
        except httpx.TransportError as exc:
            raise _Retry("DROPPED", f"connection dropped: {exc!r}") from None
        self._connected = True
        status = response.status_code
        if 300 <= status < 400:
            where = response.headers.get("location", "another address")
            raise BitrixError(
                label,
                "MOVED",
                f"the portal moved to {where}: use that address in the webhook URL",
                status,
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            snippet = response.text[:80].replace("\n", " ")
            if status == 200 or status >= 500:
                raise _Retry("BAD_JSON", f"the answer is not Bitrix24 JSON: {snippet!r}", status)
            raise BitrixError(label, "", f"the answer is not Bitrix24 JSON: {snippet!r}", status)
        code = str(data.get("error") or "")
        if status == 200 and "error" not in data:
            if "result" not in data:
                raise _Retry("BAD_JSON", "the answer has no result", status)
            return data
        description = str(data.get("error_description") or code or "unknown error")
        if code in _NEVER_RETRIED:
            raise BitrixError(label, code, description, status)
        if code == "QUERY_LIMIT_EXCEEDED" or status == 503:
            self.bucket.fill()
            raise _Retry(code or "HTTP_503", description, status)
        if code == "OPERATION_TIME_LIMIT" or status == 429:
            timing = data.get("time")
            if not isinstance(timing, dict):
                timing = {}
            reset_at: float | None = None
            if timing.get("operating_reset_at") and timing.get("finish"):
                wait = float(timing["operating_reset_at"]) - float(timing["finish"])
                reset_at = time.time() + max(0.0, wait)
            raise _OperatingLimit(description, reset_at)
        if code == "expired_token":
            raise AuthExpired(label, code, description, status)
        if status >= 500:
            raise _Retry(code or f"HTTP_{status}", description, status)
        raise BitrixError(label, code, description, status)

    def _note_clock(self, timing: Any) -> None:
        """Keep the latest ``date_finish`` (else ``date_start``) the portal reported."""
        if not isinstance(timing, dict):
            return
        stamp = timing.get("date_finish") or timing.get("date_start")
        try:
            moment = to_utc(stamp)
        except (TypeError, ValueError):
            return  # a clock we cannot read tells us nothing
        if moment is not None and (self.portal_clock is None or moment > self.portal_clock):
            self.portal_clock = moment

    # -- time.operating ----------------------------------------------------
    def _note_time(self, method: str, timing: Any) -> None:
        if not isinstance(timing, dict) or timing.get("operating") is None:
            return
        # operating_reset_at is on the portal's clock; measure it from the
        # reply's own finish time so a skewed clock does not matter.
        finish = timing.get("finish") or timing.get("start")
        reset_at = timing.get("operating_reset_at")
        if reset_at is not None and finish is not None:
            wait = float(reset_at) - float(finish)
        else:
            wait = 600.0
        self._operating[method] = (float(timing["operating"]), time.time() + max(0.0, wait))

    def _reset_at(self, said: float | None, methods: tuple[str, ...]) -> float:
        """When a 429 OPERATION_TIME_LIMIT may be repeated.

        Error replies carry no ``time`` (error-codes.md: "Use the
        operating_reset_at field from the time block of the last successful
        response"), so the methods' last seen reset moment is used; with none,
        one operating bucket (a minute).
        """
        if said is not None:
            return said
        known = [self._operating[m][1] for m in methods if m in self._operating]
        future = [r for r in known if r > time.time()]
        return max(future) if future else time.time() + OPERATING_BUCKET_SECONDS

    async def _respect_operating(self, methods: tuple[str, ...]) -> None:
        for method in methods:
            used, reset_at = self._operating.get(method, (0.0, 0.0))
            if used >= OPERATING_LIMIT_SECONDS - OPERATING_MARGIN_SECONDS:
                wait = reset_at - time.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._operating.pop(method, None)


class _OperatingLimit(Exception):
    def __init__(self, description: str, reset_at: float | None) -> None:
        super().__init__(description)
        self.description = description
        self.reset_at = reset_at


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
