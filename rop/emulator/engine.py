"""One REST request, end to end: auth, rate limit, faults, dispatch, ``time``.

Routes stay thin; everything Bitrix24-specific about answering a call is here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from rop.emulator import errors, scopes
from rop.emulator.apphost import AppHost, member_id_of
from rop.emulator.batch import run_batch
from rop.emulator.config import AppSettings, EmulatorConfig
from rop.emulator.data import Portal
from rop.emulator.errors import ApiError
from rop.emulator.faults import DROP, ERROR, MALFORMED, SLOW, Faults
from rop.emulator.limits import LeakyBucket, OperatingBudget
from rop.emulator.listing import Cost
from rop.emulator.methods import METHODS, Call, Reply
from rop.emulator.oauth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, TokenStore
from rop.emulator.params import Params, get, parse_body, parse_query
from rop.emulator.visibility import ScopeCache

log = logging.getLogger("rop.emulator")

# Simulated processing cost, chosen so a COUNT over a big table costs far more
# than a keyset page, as on a real portal (BITRIX24_API.md §2: 49.9 s vs 0.1 s
# on 2.4M rows). A keyset page of 50 rows costs about 2 ms.
CALL_SECONDS = 0.001
ROW_SECONDS = 2e-5  # per returned row
SCAN_SECONDS = 2e-7  # per row walked (filter, offset skip, sort)
COUNT_SECONDS = 5e-8  # per row a `total` had to count


def cost_seconds(cost: Cost) -> float:
    return (
        CALL_SECONDS
        + cost.returned * ROW_SECONDS
        + cost.scanned * SCAN_SECONDS
        + cost.counted * COUNT_SECONDS
    )


class JsonResponse(Response):
    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class DroppedResponse(Response):
    """Starts a reply and hangs up mid-body: the client sees a dropped connection."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", b"4096"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b'{"result":[', "more_body": True})
        # Returning without completing the body makes the server close the socket.


@dataclass
class _Request:
    user_id: int
    auth_key: str
    scopes: frozenset[str] | None = None  # the webhook's scopes; None: all
    via_app: bool = False  # an app's OAuth token (application context)
    extra_sleep: float = 0.0
    processing: float = 0.0
    reset_at: float = 0.0
    timings: list[float] = field(default_factory=list)


class Engine:
    def __init__(self, portal: Portal, config: EmulatorConfig) -> None:
        self.portal = portal
        self.config = config
        self.scopes = ScopeCache(portal)
        self.bucket = LeakyBucket(config.rate_per_second, config.burst)
        self.budget = OperatingBudget(config.operating_limit_seconds, clock=portal.clock.now)
        self.faults = Faults(config.faults) if config.faults else None
        app_info = portal.info.get("app") or {}
        self.tokens = TokenStore(
            clock=portal.clock.now,
            ttl=config.token_ttl_seconds,
            client_id=str(app_info.get("client_id") or DEFAULT_CLIENT_ID),
            client_secret=str(app_info.get("client_secret") or DEFAULT_CLIENT_SECRET),
            member_id=member_id_of(portal),
        )
        settings = config.app
        if settings is None and app_info.get("handler"):
            settings = AppSettings(
                client_id=self.tokens.client_id,
                client_secret=self.tokens.client_secret,
                handler=str(app_info.get("handler")),
                install_url=str(app_info.get("install_url") or ""),
            )
        self.host = AppHost(portal, self.tokens, settings, config.public_url)
        extra = [w for w in portal.info.get("webhooks") or [] if isinstance(w, dict)]
        main = portal.info.get("webhook") or {}
        # token -> the scopes it was given (None: every scope)
        self.webhook_scopes: dict[str, frozenset[str] | None] = {
            str(w.get("token")): scopes.parse(w.get("scopes")) for w in extra
        }
        self.webhook_scopes[portal.webhook_token] = scopes.parse(
            main.get("scopes") if isinstance(main, dict) else None
        )
        self.webhook_tokens = set(self.webhook_scopes)
        self.license_family = "ent" if config.rate_per_second >= 5 else "project"

    # -- entry point ----------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        started = self.portal.clock.now()
        try:
            return await self._handle(request, started)
        except ApiError as error:
            return JsonResponse(error.body(), status_code=error.status)
        except Exception:  # never a traceback to the client
            log.exception("emulator: unexpected error")
            return JsonResponse(
                {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"},
                status_code=500,
            )

    @property
    def oauth_on(self) -> bool:
        """Tokens are accepted with --oauth or once an application is registered."""
        return self.config.oauth or self.host.app.registered

    async def _handle(self, request: Request, started: float) -> Response:
        self.host.seen(str(request.base_url))
        parts = [p for p in request.path_params.get("path", "").split("/") if p]
        params = parse_query(request.url.query)
        if request.method == "POST":
            params.update(await self._body(request))
        granted: frozenset[str] | None = None
        via_app = False
        if len(parts) == 3:
            user_id = self._webhook_user(parts[0], parts[1])
            auth_key = f"webhook:{parts[0]}"
            granted = self.webhook_scopes.get(parts[1])
        elif len(parts) == 1 and get(params, "auth"):
            if not self.oauth_on:
                raise errors.no_auth()
            user_id = self.tokens.user_of(str(get(params, "auth")))
            auth_key = "app"
            via_app = True
            settings = self.host.app.settings
            # An app's token carries the app's scopes (its registration).
            granted = frozenset(settings.scopes) if settings is not None else None
        elif len(parts) == 2 and parts[0].isdigit():
            raise errors.method_not_found("")
        else:
            raise errors.no_auth()
        name = parts[-1].lower()
        for suffix in (".json", ".xml"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        if self.config.rate_limit:
            client = request.client.host if request.client else "-"
            if not self.bucket.take(client):
                raise errors.query_limit()
        fault = self.faults.pick() if self.faults else None
        if fault == DROP:
            return DroppedResponse()
        if fault == ERROR:
            raise ApiError("INTERNAL_SERVER_ERROR", "Internal server error", 500)
        if name != "batch" and name not in METHODS:
            raise errors.method_not_found(name)

        state = _Request(user_id, auth_key, granted, via_app)
        if name == "batch":
            result: Any = run_batch(params, lambda m, p: self._execute(state, m, p))
            reply = Reply(result)
            operating = state.processing
            reset_at = state.reset_at or self.portal.clock.now()
        else:
            reply, timing = self._execute(state, name, params)
            operating = timing["operating"]
            reset_at = timing["operating_reset_at"]
        delay = state.extra_sleep
        if fault == SLOW and self.config.faults is not None:
            delay += self.config.faults.slow_seconds
        if delay > 0:
            await asyncio.sleep(delay)
        reply_body: dict[str, Any] = {"result": reply.result}
        if reply.next is not None:
            reply_body["next"] = reply.next
        if reply.total is not None:
            reply_body["total"] = reply.total
        finished = self.portal.clock.now()
        reply_body["time"] = self._time(started, finished, state.processing, reset_at, operating)
        if fault == MALFORMED:
            raw = JsonResponse(reply_body).body
            return Response(raw[: max(1, len(raw) // 2)], media_type=JsonResponse.media_type)
        return JsonResponse(reply_body)

    async def _body(self, request: Request) -> Params:
        content_type = request.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            # PHP reads multipart forms like url-encoded ones (files are not supported).
            try:
                form = await request.form()
            except Exception:  # malformed multipart: Bitrix24's error, not a traceback
                raise errors.invalid_request("Malformed multipart body") from None
            pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
            return parse_query(urlencode(pairs))
        return parse_body(await request.body(), content_type)

    def _webhook_user(self, user_part: str, token: str) -> int:
        if not user_part.isdigit() or token not in self.webhook_tokens:
            raise errors.invalid_credentials()
        user_id = int(user_part)
        users = self.portal.tables["user"].rows
        if users and user_id not in users and user_id not in self.portal.admins:
            raise errors.invalid_credentials()
        return user_id

    # -- one method call (also each batch command) -------------------------------

    def _execute(self, state: _Request, name: str, params: Params) -> tuple[Reply, dict[str, Any]]:
        handler = METHODS.get(name)
        if handler is None:
            raise errors.method_not_found(name)
        scopes.check(name, state.scopes)
        # limits.md: over the budget "this method is blocked for all applications
        # and webhooks of that account", so the key is the method alone.
        key = name
        limited = self.config.operating_limit_seconds > 0
        if limited and self.budget.blocked(key):
            raise errors.operation_time_limit()
        started = self.portal.clock.now()
        tick = time.perf_counter()
        # One lock around scope and handler: in-process changes (sync tests) run
        # on other threads.
        with self.portal.lock:
            call = Call(
                self.portal,
                state.user_id,
                self.scopes.scope(state.user_id),
                params,
                license_family=self.license_family,
                host=self.host,
                via_app=state.via_app,
            )
            reply = handler(call)
        real = time.perf_counter() - tick
        simulated = (
            cost_seconds(call.cost) * self.config.processing_scale
            if self.config.simulate_processing
            else 0.0
        )
        processing = max(real, simulated)
        state.extra_sleep += max(0.0, simulated - real)
        state.processing += processing
        if limited:
            self.budget.charge(key, processing)
        reset_at = self.budget.reset_at(key)
        state.reset_at = max(state.reset_at, reset_at)
        finished = started + processing
        timing = self._time(started, finished, processing, reset_at, self.budget.used(key))
        return reply, timing

    def _time(
        self, start: float, finish: float, processing: float, reset_at: float, operating: float
    ) -> dict[str, Any]:
        clock = self.portal.clock
        return {
            "start": round(start, 6),
            "finish": round(finish, 6),
            "duration": round(finish - start, 6),
            "processing": round(processing, 6),
            "date_start": clock.iso(start),
            "date_finish": clock.iso(finish),
            "operating_reset_at": int(reset_at),
            "operating": round(operating, 6),
        }
