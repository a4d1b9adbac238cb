"""The REST client on recorded reply shapes (httpx.MockTransport): retries, limits, batch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rop.bitrix import client as client_module
from rop.bitrix import ratelimit
from rop.bitrix.client import BitrixClient, RetryPolicy, parse_webhook, unwrap_list
from rop.bitrix.errors import BitrixError
from rop.bitrix.query import php_query

BASE = "https://demo.bitrix24.ru/rest/1/abc/"
TIME = {
    "start": 1725292115.02,
    "finish": 1725292115.90,
    "duration": 0.88,
    "processing": 0.24,
    "date_start": "2024-09-02T17:48:35+02:00",
    "date_finish": "2024-09-02T17:48:35+02:00",
    "operating_reset_at": 1725292715,
    "operating": 0.25,
}
DEALS = {"result": [{"ID": "37", "TITLE": "Deal"}], "total": 120, "next": 50, "time": TIME}
FAST = RetryPolicy(attempts=4, base_delay=0.0)

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """Answers from a script of responses and remembers each request."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        status, body = answer
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def call(handler: Handler, method: str = "crm.deal.list", **kwargs: Any) -> Any:
    async with BitrixClient(
        BASE, transport=httpx.MockTransport(handler), retry=kwargs.pop("retry", FAST), **kwargs
    ) as client:
        reply = await client.call(method, {"select": ["ID"]})
        return reply, client


def test_php_query_nests_brackets_and_encodes_values() -> None:
    text = php_query(
        {
            "filter": {">ID": "$result[p0][49][ID]", "TYPE_ID": 2},
            "select": ["ID", "TITLE"],
            "order": {"ID": "ASC"},
            "start": -1,
        }
    )
    assert text == (
        "filter[%3EID]=%24result%5Bp0%5D%5B49%5D%5BID%5D&filter[TYPE_ID]=2"
        "&select[0]=ID&select[1]=TITLE&order[ID]=ASC&start=-1"
    )


def test_parse_webhook_takes_the_host_as_portal_key() -> None:
    hook = parse_webhook("https://company.bitrix24.ru/rest/12/xyz")
    assert hook.base == "https://company.bitrix24.ru/rest/12/xyz/"
    assert hook.portal == "company.bitrix24.ru"
    assert hook.origin == "https://company.bitrix24.ru"
    assert parse_webhook("http://127.0.0.1:8765/rest/1/t/").portal == "127.0.0.1:8765"
    for bad in ("company.bitrix24.ru/rest/1/x/", "ftp://x/rest/1/t/", "https://x.ru/1/t/"):
        with pytest.raises(ValueError):
            parse_webhook(bad)


def test_call_returns_result_and_envelope() -> None:
    recorder = Recorder((200, DEALS))
    reply, client = run(call(recorder))
    assert reply.result == [{"ID": "37", "TITLE": "Deal"}]
    assert (reply.total, reply.next) == (120, 50)
    assert client.requests == 1
    sent = recorder.requests[0]
    assert str(sent.url) == BASE + "crm.deal.list"
    assert json.loads(sent.content) == {"select": ["ID"]}


@pytest.mark.parametrize(
    "first",
    [
        (503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}),
        (500, {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}),
        (502, b"<html>Bad gateway</html>"),
        (200, b'{"result":[{"ID":'),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
    ids=["503-limit", "500", "502-html", "malformed-200", "timeout", "dropped"],
)
def test_retryable_failures_are_retried(first: Any) -> None:
    recorder = Recorder((200, DEALS), first, (200, DEALS))

    # The first answer connects (a connection error before any answer is fatal).
    async def twice() -> tuple[Any, BitrixClient]:
        async with BitrixClient(
            BASE, transport=httpx.MockTransport(recorder), retry=FAST
        ) as client:
            await client.call("crm.deal.list")
            reply = await client.call("crm.deal.list")
            return reply, client

    reply, client = run(twice())
    assert reply.total == 120
    assert client.requests == 3
    assert client.retries == 1


def test_limit_answer_fills_the_bucket() -> None:
    recorder = Recorder(
        (503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}),
        (200, DEALS),
    )
    _, client = run(call(recorder, burst=5))
    # After the 503 the client assumed a full server bucket, then sent one more.
    assert client.bucket._level > 4


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (401, {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}, "NO_AUTH_FOUND"),
        (403, {"error": "ACCESS_DENIED", "error_description": "Access denied"}, "ACCESS_DENIED"),
        (400, {"error": "", "error_description": "Access denied."}, ""),
        (404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}, "ERROR_METHOD_NOT_FOUND"),
        (401, {"error": "expired_token", "error_description": "The access token expired"}, "expired_token"),
        (401, {"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"}, "INVALID_CREDENTIALS"),
        (401, {"error": "insufficient_scope", "error_description": "The request requires higher privileges"}, "insufficient_scope"),
        # A manual block by support: never retried, whatever the status (older docs: 503).
        (503, {"error": "OVERLOAD_LIMIT", "error_description": "REST API is blocked due to overload"}, "OVERLOAD_LIMIT"),
        (401, {"error": "OVERLOAD_LIMIT", "error_description": "REST API is blocked due to overload"}, "OVERLOAD_LIMIT"),
    ],
)  # fmt: skip
def test_other_errors_stop_at_once_naming_method_and_error(
    status: int, body: dict[str, Any], code: str
) -> None:
    recorder = Recorder((status, body))
    with pytest.raises(BitrixError) as caught:
        run(call(recorder))
    assert len(recorder.requests) == 1
    err = caught.value
    assert (err.method, err.code, err.status) == ("crm.deal.list", code, status)
    assert "crm.deal.list" in str(err) and body["error_description"] in str(err)


def test_retries_give_up_with_a_clear_message() -> None:
    recorder = Recorder((200, DEALS), (500, {"error": "INTERNAL_SERVER_ERROR"}))

    async def go() -> None:
        async with BitrixClient(
            BASE, transport=httpx.MockTransport(recorder), retry=FAST
        ) as client:
            await client.call("crm.deal.list")
            await client.call("crm.lead.list")

    with pytest.raises(BitrixError) as caught:
        run(go())
    assert len(recorder.requests) == 1 + FAST.attempts
    assert "crm.lead.list" in str(caught.value) and "gave up after 4 tries" in str(caught.value)


def test_nothing_listening_fails_at_once() -> None:
    recorder = Recorder(httpx.ConnectError("Connection refused"))
    with pytest.raises(BitrixError) as caught:
        run(call(recorder))
    assert len(recorder.requests) == 1
    assert "cannot connect to demo.bitrix24.ru" in str(caught.value)


def test_non_json_error_page_is_not_retried() -> None:
    recorder = Recorder((404, b"<html>Not found</html>"))
    with pytest.raises(BitrixError, match="not Bitrix24 JSON"):
        run(call(recorder))
    assert len(recorder.requests) == 1


def test_expired_token_is_refreshed_once() -> None:
    expired = (401, {"error": "expired_token", "error_description": "The access token expired"})
    tokens: list[bool] = []

    async def provider(refresh: bool) -> str:
        tokens.append(refresh)
        return "new" if refresh else "old"

    recorder = Recorder(expired, (200, DEALS))
    reply, _ = run(call(recorder, token_provider=provider))
    assert reply.total == 120
    assert tokens == [False, True]
    assert [json.loads(r.content)["auth"] for r in recorder.requests] == ["old", "new"]

    # A second expiry right after the refresh is an error, not a loop.
    tokens.clear()
    recorder = Recorder(expired)
    with pytest.raises(BitrixError, match="expired_token"):
        run(call(recorder, token_provider=provider))
    assert len(recorder.requests) == 2


def _record_sleeps(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[float]:
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(module, "asyncio", _AsyncioShim(fake_sleep))
    return sleeps


class _AsyncioShim:
    """The asyncio module with ``sleep`` replaced, for one module under test."""

    def __init__(self, sleep: Any) -> None:
        self.sleep = sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


def test_operation_time_limit_waits_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = _record_sleeps(monkeypatch, client_module)
    limited = (
        429,
        {
            "error": "OPERATION_TIME_LIMIT",
            "error_description": "Method is blocked due to operation time limit.",
            "time": {**TIME, "operating_reset_at": TIME["finish"] + 42},
        },
    )
    recorder = Recorder(limited, (200, DEALS))
    reply, _ = run(call(recorder))
    assert reply.total == 120
    assert len(sleeps) == 1 and 41 < sleeps[0] <= 42


def test_operation_time_limit_without_time_waits_for_the_last_known_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # error-codes.md: error replies carry no `time`; "use the operating_reset_at
    # field from the time block of the last successful response".
    sleeps = _record_sleeps(monkeypatch, client_module)
    seen = {**DEALS, "time": {**TIME, "operating": 10.0, "operating_reset_at": TIME["finish"] + 25}}
    limited = (
        429,
        {"error": "OPERATION_TIME_LIMIT", "error_description": "Method is blocked"},
    )
    recorder = Recorder((200, seen), limited, (200, DEALS), limited, (200, DEALS))

    async def go() -> None:
        async with BitrixClient(
            BASE, transport=httpx.MockTransport(recorder), retry=FAST
        ) as client:
            await client.call("crm.deal.list")
            await client.call("crm.deal.list")  # 429: waits for the reset seen before
            await client.call("crm.lead.list")  # 429, nothing known: one bucket

    run(go())
    assert len(sleeps) == 2
    assert 24 < sleeps[0] <= 25 and 59 < sleeps[1] <= 60


def test_operating_budget_near_limit_pauses_the_method(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = _record_sleeps(monkeypatch, client_module)
    heavy = {
        **DEALS,
        "time": {**TIME, "operating": 470.0, "operating_reset_at": TIME["finish"] + 30},
    }
    recorder = Recorder((200, heavy), (200, DEALS), (200, DEALS))

    async def go() -> None:
        async with BitrixClient(
            BASE, transport=httpx.MockTransport(recorder), retry=FAST
        ) as client:
            await client.call("crm.deal.list")
            await client.call("crm.lead.list")  # another method: no wait
            assert sleeps == []
            await client.call("crm.deal.list")  # this one waits for its budget

    run(go())
    assert len(sleeps) == 1 and 29 < sleeps[0] <= 30


def test_leaky_bucket_lets_a_burst_through_then_drains(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = _record_sleeps(monkeypatch, ratelimit)
    now = [100.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])

    async def go() -> None:
        bucket = ratelimit.LeakyBucket(2.0, 3)
        for _ in range(3):
            await bucket.acquire()
        assert sleeps == []
        await bucket.acquire()  # bucket full: wait for one slot to drain
        assert sleeps == [pytest.approx(0.5)]
        now[0] += 10.0  # long idle: the bucket is empty again
        for _ in range(3):
            await bucket.acquire()
        assert len(sleeps) == 1

    run(go())


def test_batch_sends_commands_and_reports_each_error() -> None:
    body = {
        "result": {
            "result": {"a": [{"ID": "1"}], "c": {"items": [{"ID": 7}]}},
            "result_error": {
                "b": {"error": "ACCESS_DENIED", "error_description": "No telephony rights"}
            },
            "result_total": {"a": 1},
            "result_next": [],
            "result_time": {"a": {**TIME, "operating": 3.0}},
        },
        "time": TIME,
    }
    recorder = Recorder((200, body))

    async def go() -> Any:
        async with BitrixClient(
            BASE, transport=httpx.MockTransport(recorder), retry=FAST
        ) as client:
            return await client.batch(
                {
                    "a": ("crm.deal.list", {"filter": {">ID": 0}, "start": -1}),
                    "b": ("voximplant.statistic.get", {"FILTER": {}}),
                    "c": ("crm.stagehistory.list", {"entityTypeId": 2}),
                }
            )

    reply = run(go())
    sent = json.loads(recorder.requests[0].content)
    assert str(recorder.requests[0].url) == BASE + "batch"
    assert sent["halt"] == 0
    assert sent["cmd"]["a"] == "crm.deal.list?filter[%3EID]=0&start=-1"
    assert reply.get("a") == [{"ID": "1"}] and reply.total("a") == 1
    assert unwrap_list(reply.get("c")) == [{"ID": 7}]
    with pytest.raises(BitrixError) as caught:
        reply.get("b")
    assert caught.value.method == "voximplant.statistic.get"
    assert "ACCESS_DENIED" in str(caught.value) and "No telephony rights" in str(caught.value)


def test_batch_refuses_more_than_fifty_commands() -> None:
    recorder = Recorder((200, DEALS))

    async def go() -> None:
        async with BitrixClient(BASE, transport=httpx.MockTransport(recorder)) as client:
            await client.batch({f"k{i}": ("crm.deal.list", {}) for i in range(51)})

    with pytest.raises(ValueError, match="at most 50"):
        run(go())
    assert recorder.requests == []


def test_concurrent_expiries_share_one_refresh() -> None:
    expired = (401, {"error": "expired_token", "error_description": "The access token expired"})
    calls: list[bool] = []

    async def provider(refresh: bool) -> str:
        calls.append(refresh)
        await asyncio.sleep(0)
        return "new" if refresh else "old"

    def handler(request: httpx.Request) -> httpx.Response:
        auth = json.loads(request.content)["auth"]
        status, body = expired if auth == "old" else (200, DEALS)
        return httpx.Response(status, json=body)

    async def go() -> list[Any]:
        async with BitrixClient(
            BASE, transport=httpx.MockTransport(handler), token_provider=provider, retry=FAST
        ) as client:
            return await asyncio.gather(*(client.call("crm.deal.list") for _ in range(5)))

    replies = run(go())
    assert [r.total for r in replies] == [120] * 5
    # A refresh token is single-use: five expiries, one refresh.
    assert calls == [False, True]


def test_a_moved_portal_is_reported_not_followed() -> None:
    moved = httpx.Response(302, headers={"location": "https://new.bitrix24.ru/rest/1/abc/"})
    recorder = Recorder(moved)
    with pytest.raises(BitrixError) as caught:
        run(call(recorder))
    assert len(recorder.requests) == 1
    assert "moved to https://new.bitrix24.ru/rest/1/abc/" in str(caught.value)


def test_operation_limit_inside_a_batch_waits_and_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = _record_sleeps(monkeypatch, client_module)
    limited = {
        "result": {
            "result": [],
            "result_error": {
                "a": {
                    "error": "OPERATION_TIME_LIMIT",
                    "error_description": "Method is blocked due to operation time limit.",
                }
            },
            "result_total": [],
            "result_next": [],
            "result_time": [],
        },
        "time": TIME,
    }
    good = {
        "result": {"result": {"a": [{"ID": "1"}]}, "result_error": [], "result_total": []},
        "time": TIME,
    }
    recorder = Recorder((200, limited), (200, good))

    async def go() -> Any:
        async with BitrixClient(
            BASE, transport=httpx.MockTransport(recorder), retry=FAST
        ) as client:
            return await client.batch({"a": ("crm.deal.list", {"start": -1})})

    reply = run(go())
    assert reply.get("a") == [{"ID": "1"}]
    assert len(recorder.requests) == 2
    assert len(sleeps) == 1 and 59 < sleeps[0] <= 60  # one operating bucket
