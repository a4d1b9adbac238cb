"""Two real third-party Bitrix24 clients, unchanged, over real HTTP against the emulator."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator

import pytest

from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from tests.emulator_portal import TOKEN, write_portal

DEALS = 260  # more than five pages and more than one 50-command chain link


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = write_portal(tmp_path_factory.mktemp("portal"), deals=DEALS)
    # Limits stay on: both clients must live with Bitrix24's rules.
    with serve_in_thread(create_app(folder, EmulatorConfig())) as url:
        yield url


def test_fast_bitrix24_get_all_returns_every_deal(base_url: str) -> None:
    from fast_bitrix24 import BitrixAsync

    async def fetch() -> list[dict]:
        client = BitrixAsync(f"{base_url}/rest/1/{TOKEN}/", verbose=False, ssl=False)
        return await client.get_all("crm.deal.list", {"select": ["ID", "TITLE"]})

    deals = asyncio.run(fetch())
    assert sorted(int(d["ID"]) for d in deals) == list(range(1, DEALS + 1))
    assert all(d["TITLE"] == f"Deal #{d['ID']}" for d in deals)


def test_fast_bitrix24_get_by_id_and_call(base_url: str) -> None:
    from fast_bitrix24 import BitrixAsync

    async def fetch() -> tuple[dict, object]:
        client = BitrixAsync(f"{base_url}/rest/1/{TOKEN}/", verbose=False, ssl=False)
        by_id = await client.get_by_ID("crm.deal.get", [3, 7])
        one = await client.call("crm.deal.get", {"ID": 5})
        return by_id, one

    by_id, one = asyncio.run(fetch())
    assert {str(k): v["TITLE"] for k, v in by_id.items()} == {"3": "Deal #3", "7": "Deal #7"}
    # fast_bitrix24 keys a dict-shaped result by its internal order key.
    assert isinstance(one, dict)
    record = one if "TITLE" in one else next(iter(one.values()))
    assert record["TITLE"] == "Deal #5"


@pytest.fixture
def b24_client(base_url: str, monkeypatch: pytest.MonkeyPatch) -> object:
    from b24pysdk import BitrixWebhook, Client, Config

    # b24pysdk hard-codes https (BITRIX24_API.md §11); plain http only inside this test.
    caller = importlib.import_module("b24pysdk.api.callers.call_method")._MethodCaller
    monkeypatch.setattr(caller, "_base_url", property(lambda s: f"http://{s._domain}/rest"))
    Config().configure(default_timeout=(3.05, 60))
    domain = base_url.removeprefix("http://")
    return Client(BitrixWebhook(domain=domain, webhook_token=f"1/{TOKEN}"))


def test_b24pysdk_as_list_fast_returns_every_deal(b24_client: object) -> None:
    request = b24_client.crm.deal.list(select=["ID", "STAGE_ID"])  # type: ignore[attr-defined]
    deals = list(request.as_list_fast().result)
    ids = [int(d["ID"]) for d in deals]
    assert ids == list(range(1, DEALS + 1))  # keyset order, no gaps, no duplicates


def test_b24pysdk_as_list_and_single_call(b24_client: object) -> None:
    request = b24_client.crm.deal.list(select=["ID"], filter={">=ID": 200})  # type: ignore[attr-defined]
    deals = list(request.as_list().result)
    assert sorted(int(d["ID"]) for d in deals) == list(range(200, DEALS + 1))
    page = b24_client.crm.deal.list(select=["ID"])  # type: ignore[attr-defined]
    assert page.response.total == DEALS
    assert len(page.result) == 50


def test_b24pysdk_fast_lists_of_wrapped_methods(b24_client: object) -> None:
    client = b24_client
    items = list(client.crm.item.list(entity_type_id=2, select=["id"]).as_list_fast().result)  # type: ignore[attr-defined]
    assert [i["id"] for i in items] == list(range(1, DEALS + 1))
    history = list(client.crm.stagehistory.list(entity_type_id=2).as_list_fast().result)  # type: ignore[attr-defined]
    assert sorted(h["OWNER_ID"] for h in history) == list(range(1, DEALS + 1))


def test_fast_bitrix24_get_all_of_other_methods(base_url: str) -> None:
    from fast_bitrix24 import BitrixAsync

    async def fetch() -> list[int]:
        client = BitrixAsync(f"{base_url}/rest/1/{TOKEN}/", verbose=False, ssl=False)
        items = await client.get_all("crm.item.list", {"entityTypeId": 2, "select": ["id"]})
        history = await client.get_all("crm.stagehistory.list", {"entityTypeId": 2})
        users = await client.get_all("user.get")
        calls = await client.get_all("voximplant.statistic.get")
        return [len(items), len(history), len(users), len(calls)]

    assert asyncio.run(fetch()) == [DEALS, DEALS, 6, 20]
