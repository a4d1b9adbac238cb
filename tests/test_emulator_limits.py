"""Rate limit, operating budget, simulated processing, fault injection, OAuth, CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rop.emulator import EmulatorConfig, FaultConfig, create_app, serve_in_thread
from rop.emulator.limits import LeakyBucket, OperatingBudget
from tests.emulator_portal import TOKEN, write_portal


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_portal(tmp_path_factory.mktemp("portal"), deals=60)


# -- leaky bucket -------------------------------------------------------------------------------


def test_burst_of_60_gets_query_limit_after_about_50(folder: Path) -> None:
    app = create_app(folder, EmulatorConfig())  # Bitrix24 defaults: 2 req/s, burst 50
    with serve_in_thread(app) as base, httpx.Client() as client:
        started = time.monotonic()
        replies = [client.get(f"{base}/rest/1/{TOKEN}/user.admin") for _ in range(60)]
        elapsed = time.monotonic() - started
    statuses = [r.status_code for r in replies]
    assert statuses[:50] == [200] * 50
    limited = [r for r in replies if r.status_code == 503]
    assert limited, "no request was refused"
    assert limited[0].json() == {
        "error": "QUERY_LIMIT_EXCEEDED",
        "error_description": "Too many requests",
    }
    # Whatever drained while the burst ran (2/s) may pass, nothing more.
    assert statuses.count(200) <= 50 + int(2 * elapsed) + 1


def test_sustained_two_per_second_is_never_refused(folder: Path) -> None:
    app = create_app(folder, EmulatorConfig())
    clock = FakeClock()
    app.state.engine.bucket.clock = clock  # the limiter's time, not the test's
    with serve_in_thread(app) as base, httpx.Client() as client:
        for _ in range(150):  # three times the burst
            reply = client.get(f"{base}/rest/1/{TOKEN}/user.admin")
            assert reply.status_code == 200
            clock.now += 0.5
        # Faster than the drain rate: the bucket fills and refuses.
        codes = []
        for _ in range(150):
            codes.append(client.get(f"{base}/rest/1/{TOKEN}/user.admin").status_code)
            clock.now += 0.1  # 10 req/s
        assert 503 in codes


def test_leaky_bucket_unit() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(rate=5, burst=250, clock=clock)  # Enterprise plan
    assert all(bucket.take("ip") for _ in range(250))
    assert not bucket.take("ip")
    assert bucket.take("other-ip")  # counted per client
    clock.now += 1.0
    assert sum(bucket.take("ip") for _ in range(10)) == 5


# -- operating budget and simulated processing -------------------------------------------------


def test_operating_budget_blocks_one_method(folder: Path) -> None:
    config = EmulatorConfig(rate_limit=False, operating_limit_seconds=0.01)
    app = create_app(folder, config)
    with serve_in_thread(app) as base:
        hook = f"{base}/rest/1/{TOKEN}/"
        seen = []
        for _ in range(40):
            reply = httpx.get(hook + "crm.deal.list")
            if reply.status_code != 200:
                break
            seen.append(reply.json()["time"]["operating"])
        assert reply.status_code == 429
        assert reply.json()["error"] == "OPERATION_TIME_LIMIT"
        assert seen == sorted(seen) and seen[-1] > 0
        assert httpx.get(hook + "crm.lead.list").status_code == 200  # other methods run
        # limits.md: the method is blocked "for all applications and webhooks of
        # that account", not only for the caller that spent the budget.
        other = httpx.get(f"{base}/rest/2/{TOKEN}/crm.deal.list")
        assert other.status_code == 429 and other.json()["error"] == "OPERATION_TIME_LIMIT"
        inner = httpx.post(hook + "batch", json={"cmd": {"a": "crm.deal.list"}}).json()
        assert inner["result"]["result_error"]["a"]["error"] == "OPERATION_TIME_LIMIT"
        # A method not called before: crm.lead.list may have spent its own tiny
        # budget by now on a loaded machine.
        reset_at = httpx.get(hook + "crm.contact.list").json()["time"]["operating_reset_at"]
        assert reset_at > app.state.portal.clock.now()


def test_operating_budget_window_unit() -> None:
    clock = FakeClock(600.0)
    budget = OperatingBudget(10.0, clock=clock)
    assert budget.reset_at("m") == 600.0 + 600  # nothing spent: a window from now
    budget.charge("m", 6.0)
    clock.now += 120
    budget.charge("m", 5.0)
    assert budget.blocked("m") and budget.reset_at("m") == 600.0 + 600
    clock.now = 600.0 + 600
    assert not budget.blocked("m") and budget.used("m") == 5.0


def test_count_costs_more_than_a_keyset_page(tmp_path: Path) -> None:
    # A large scale makes the simulated cost dominate the real one, which a
    # loaded machine inflates for any call.
    config = EmulatorConfig(rate_limit=False, processing_scale=50.0)
    app = create_app(write_portal(tmp_path, deals=20000), config)
    with serve_in_thread(app) as base:
        hook = f"{base}/rest/1/{TOKEN}/"
        counted = httpx.get(hook + "crm.deal.list?select[]=ID&start=15000").json()["time"]
        keyset = httpx.get(
            hook + "crm.deal.list?select[]=ID&start=-1&order[ID]=ASC&filter[%3EID]=15000"
        ).json()["time"]
    assert counted["processing"] > 2 * keyset["processing"]
    # The simulated time is really spent: the reply is not faster than it claims.
    assert counted["duration"] >= counted["processing"] * 0.9


# -- fault injection --------------------------------------------------------------------------------


def _outcomes(folder: Path, faults: FaultConfig, n: int) -> tuple[list[str], dict[str, int]]:
    """What a client saw per request ("ok" includes slow ones), and the injected counts."""
    app = create_app(folder, EmulatorConfig(rate_limit=False, faults=faults))
    out, slow_enough = [], 0
    with serve_in_thread(app) as base, httpx.Client(timeout=10) as client:
        for _ in range(n):
            started = time.monotonic()
            try:
                reply = client.get(f"{base}/rest/1/{TOKEN}/user.admin")
            except (httpx.RemoteProtocolError, httpx.ReadError):
                out.append("drop")
                continue
            if reply.status_code == 500:
                assert reply.json()["error"] == "INTERNAL_SERVER_ERROR"
                out.append("error")
                continue
            try:
                reply.json()
            except json.JSONDecodeError:
                out.append("malformed")
                continue
            out.append("ok")
            slow_enough += time.monotonic() - started >= faults.slow_seconds
        counts = dict(app.state.engine.faults.counts)
    assert counts["drop"] == out.count("drop") and counts["error"] == out.count("error")
    assert counts["malformed"] == out.count("malformed")
    # Every slow fault really waited (a busy machine may make others slow too).
    assert counts["slow"] >= 1 and slow_enough >= counts["slow"]
    return out, counts


def test_fault_injection_is_seeded_and_produces_each_fault(folder: Path) -> None:
    faults = FaultConfig(
        drop_rate=0.15,
        error_rate=0.15,
        slow_rate=0.1,
        slow_seconds=0.3,
        malformed_rate=0.15,
        seed=7,
    )
    first = _outcomes(folder, faults, 40)
    assert {"drop", "error", "malformed", "ok"} <= set(first[0])
    assert _outcomes(folder, faults, 40) == first  # same seed, same faults


# -- OAuth mode ----------------------------------------------------------------------------------


def test_oauth_tokens_expire_and_refresh(folder: Path) -> None:
    app = create_app(folder, EmulatorConfig(rate_limit=False, oauth=True))
    tokens = app.state.engine.tokens
    with serve_in_thread(app) as base:
        issued = tokens.issue(3, f"{base}/rest/")
        ok = httpx.get(f"{base}/rest/user.current", params={"auth": issued["access_token"]})
        assert ok.json()["result"]["ID"] == "3"
        tokens.expire(issued["access_token"])
        expired = httpx.post(f"{base}/rest/crm.deal.list", json={"auth": issued["access_token"]})
        assert expired.status_code == 401 and expired.json()["error"] == "expired_token"
        query = {
            "grant_type": "refresh_token",
            "client_id": tokens.client_id,
            "client_secret": tokens.client_secret,
            "refresh_token": issued["refresh_token"],
        }
        fresh = httpx.get(f"{base}/oauth/token/", params=query).json()
        assert {
            "access_token",
            "refresh_token",
            "expires_in",
            "client_endpoint",
            "member_id",
        } <= set(fresh)
        assert fresh["user_id"] == 3 and fresh["refresh_token"] != issued["refresh_token"]
        again = httpx.get(f"{base}/rest/profile", params={"auth": fresh["access_token"]})
        assert again.json()["result"]["ID"] == "3"
        reused = httpx.get(f"{base}/oauth/token/", params=query)
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        wrong = httpx.get(f"{base}/oauth/token/", params={**query, "client_secret": "x"})
        assert wrong.json()["error"] == "invalid_client"
        unknown = httpx.get(f"{base}/rest/profile", params={"auth": "nope"})
        assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_token"


def test_oauth_authorize_redirects_with_a_code_to_exchange(folder: Path) -> None:
    app = create_app(folder, EmulatorConfig(rate_limit=False, oauth=True))
    tokens = app.state.engine.tokens
    with serve_in_thread(app) as base:
        redirect = httpx.get(
            f"{base}/oauth/authorize/",
            params={
                "client_id": tokens.client_id,
                "state": "xyz",
                "redirect_uri": "https://app.example/cb",
                "user_id": 2,
            },
        )
        assert redirect.status_code == 302
        location = httpx.URL(redirect.headers["location"])
        assert location.host == "app.example" and location.params["state"] == "xyz"
        exchange = {
            "grant_type": "authorization_code",
            "client_id": tokens.client_id,
            "client_secret": tokens.client_secret,
            "code": location.params["code"],
        }
        issued = httpx.get(f"{base}/oauth/token/", params=exchange).json()
        assert issued["user_id"] == 2 and issued["client_endpoint"] == f"{base}/rest/"
        me = httpx.get(f"{base}/rest/user.current", params={"auth": issued["access_token"]})
        assert me.json()["result"]["ID"] == "2"
        again = httpx.get(f"{base}/oauth/token/", params=exchange)  # codes are one-time
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        stranger = httpx.get(f"{base}/oauth/authorize/", params={"client_id": "other"})
        assert stranger.json()["error"] == "invalid_client"


def test_fast_bitrix24_oauth_client_renews_an_expired_token(folder: Path) -> None:
    from fast_bitrix24 import BitrixAsync

    app = create_app(folder, EmulatorConfig(oauth=True))
    tokens = app.state.engine.tokens
    with serve_in_thread(app) as base:
        current = tokens.issue(1, f"{base}/rest/")
        asked = []

        async def token_func() -> str:
            asked.append(1)
            if len(asked) > 1:  # after a 401 expired_token: refresh as an app would
                query = {
                    "grant_type": "refresh_token",
                    "client_id": tokens.client_id,
                    "client_secret": tokens.client_secret,
                    "refresh_token": current["refresh_token"],
                }
                async with httpx.AsyncClient() as http:
                    current.update((await http.get(f"{base}/oauth/token/", params=query)).json())
            return str(current["access_token"])

        async def run() -> tuple[int, int]:
            client = BitrixAsync(f"{base}/rest/", token_func=token_func, verbose=False, ssl=False)
            first = await client.get_all("crm.deal.list", {"select": ["ID"]})
            tokens.expire(current["access_token"])
            second = await client.get_all("crm.deal.list", {"select": ["ID"]})
            return len(first), len(second)

        assert asyncio.run(run()) == (60, 60)
        assert len(asked) == 2


def test_oauth_off_refuses_tokens(folder: Path) -> None:
    app = create_app(folder, EmulatorConfig(rate_limit=False))
    with serve_in_thread(app) as base:
        reply = httpx.get(f"{base}/rest/profile", params={"auth": "whatever"})
        assert reply.status_code == 401 and reply.json()["error"] == "NO_AUTH_FOUND"


# -- the CLI --------------------------------------------------------------------------------------


def test_rop_emulate_prints_the_webhook_first(folder: Path) -> None:
    command = [sys.executable, "-c", "from rop.cli import main; main()"]
    proc = subprocess.Popen(
        [*command, "emulate", "--portal", str(folder), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        webhook = proc.stdout.readline().strip()
        assert webhook.startswith("http://127.0.0.1:") and webhook.endswith(f"/rest/1/{TOKEN}/")
        reply = httpx.get(webhook + "crm.deal.list", timeout=10)
        assert reply.status_code == 200 and reply.json()["total"] == 60
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_rop_emulate_bad_folder_is_a_usage_error(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "from rop.cli import main; main()"]
    done = subprocess.run(
        [*command, "emulate", "--portal", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "portal.json: not found" in done.stderr and "Traceback" not in done.stderr


def test_the_bucket_counts_refusals_and_its_peak():
    # What the multi-portal worker test reads to say no portal went over its limit.
    now = [0.0]
    bucket = LeakyBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert (bucket.refused, bucket.peak) == (1, 3)
    now[0] = 1.0  # two drained
    assert bucket.take() and bucket.refused == 1 and bucket.peak == 3
