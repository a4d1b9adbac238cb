"""The snapshot loader streams: chunked, the same store as a whole-file load, all or nothing."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rop.bitrix.records import ALL, to_rows
from rop.bitrix.snapshot import SnapshotError, load_snapshot, portal_clock, read_portal_info
from rop.store import open_store
from rop.store.db import Store
from rop.store.facts import refresh_facts
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import PORTALS

FACT_TABLES = ("deal_facts", "lead_facts", "call_facts")


@pytest.fixture(params=ENGINES)
def target(request, tmp_path):
    return store_target(request.param, tmp_path, request)


def whole_file_load(store: Store, folder: Path) -> str:
    """The loader as it was before streaming: every file read whole, one write per entity."""
    info = read_portal_info(folder)
    portal = info.domain
    store.use_portal(portal)
    with store.unmarked(), store.transaction():
        for entity in ALL:
            path = folder / entity.snapshot
            records = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
            rows = to_rows(entity, portal, records)
            if entity.name == "users":
                for row in rows:
                    row["is_admin"] = row["id"] in info.admins
            store.upsert(entity.table, rows)
        store.upsert(
            "portals",
            [
                {
                    "portal": portal,
                    "url": f"https://{portal}",
                    "timezone": info.timezone,
                    "base_currency": info.base_currency,
                    "webhook_user_id": info.webhook_user_id,
                    "updated_at": datetime.now(UTC).replace(tzinfo=None),
                    "clock": portal_clock(info),
                }
            ],
        )
    refresh_facts(store, portal, full=True)
    return portal


def dump(store: Store, portal: str) -> dict[str, list[tuple]]:
    """Every row of the portal in every data and facts table, in a stable order."""
    out = {}
    for table in [e.table for e in ALL] + list(FACT_TABLES):
        cols = [c for c in store.table(table).columns if c != "portal"]
        rows = store.query(
            f"SELECT {', '.join(cols)} FROM {table} WHERE portal = ?",  # noqa: S608
            [portal],
        )
        out[table] = sorted(rows, key=repr)
    return out


@pytest.mark.parametrize("name", ["quality", "stages"])
def test_chunked_load_equals_a_whole_file_load(target, tmp_path, name):
    folder = PORTALS / name
    with open_store(target) as store:
        seen: list[int] = []
        upsert = store.upsert

        def counted(table, rows):
            seen.append(len(rows))
            return upsert(table, rows)

        store.upsert = counted  # type: ignore[method-assign]
        portal = load_snapshot(store, folder, chunk=3)
        del store.upsert
        streamed = dump(store, portal)
        clock = store.scalar("SELECT clock FROM portals WHERE portal = ?", [portal])
        # Bounded: no write got more than a chunk, and the big files took several.
        assert max(seen) <= 3 and len(seen) > len(ALL)
    reference = str(tmp_path / "whole.duckdb")
    with open_store(reference) as store:
        assert whole_file_load(store, folder) == portal
        whole = dump(store, portal)
    assert streamed == whole
    # Nothing lost at a chunk's edge: each table holds its file's records.
    deals = json.loads((folder / "crm.deal.list.json").read_text(encoding="utf-8"))
    assert len(streamed["deals"]) == len(deals) > 3
    assert clock is not None


def _bad_copy(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "bad"
    shutil.copytree(PORTALS / "stages", folder)
    # A change in an early file: visible if the load were not rolled back.
    deals = json.loads((folder / "crm.deal.list.json").read_text(encoding="utf-8"))
    for deal in deals:
        deal["TITLE"] = "changed by the bad load"
    (folder / "crm.deal.list.json").write_text(json.dumps(deals), encoding="utf-8")
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def _cut(name: str) -> str:
    """The file cut in the middle of a record after several chunks' worth."""
    text = (PORTALS / "stages" / name).read_text(encoding="utf-8")
    return text[: int(len(text) * 0.8)]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("crm.stagehistory.list.2.json", None, "not valid JSON"),
        ("voximplant.statistic.get.json", None, "not valid JSON"),
        ("voximplant.statistic.get.json", '{"ID": "1"}', "expected a JSON array of records"),
        ("voximplant.statistic.get.json", '[{"ID": "1"}] [', "not valid JSON"),
        ("voximplant.statistic.get.json", "", "not valid JSON"),
        ("voximplant.statistic.get.json", " " * 5000, "not valid JSON"),
        ("crm.stagehistory.list.2.json", "[[1]]", "expected a JSON array of records"),
        ("voximplant.statistic.get.json", '[{"CALL_TYPE": "1"}]', "bad or missing field"),
    ],
)
def test_a_bad_file_leaves_the_store_as_it_was(target, tmp_path, name, text, message):
    with open_store(target) as store:
        portal = load_snapshot(store, PORTALS / "stages", chunk=2)
        before = dump(store, portal)
        stamp = store.scalar("SELECT updated_at FROM portals WHERE portal = ?", [portal])
        folder = _bad_copy(tmp_path, name, _cut(name) if text is None else text)
        with pytest.raises(SnapshotError, match=message) as caught:
            load_snapshot(store, folder, chunk=2)
        assert name in str(caught.value) and "\n" not in str(caught.value)
        assert dump(store, portal) == before
        assert store.scalar("SELECT updated_at FROM portals WHERE portal = ?", [portal]) == stamp
        # The store still takes a good load afterwards.
        assert load_snapshot(store, PORTALS / "stages") == portal


def test_a_file_with_a_long_blank_lead_is_read(tmp_path):
    from rop.bitrix.records import DEALS
    from rop.bitrix.snapshot import iter_records

    (tmp_path / DEALS.snapshot).write_text(" \n" * 5000 + '[{"ID": "1"}, {"ID": "2"}]')
    assert [r["ID"] for batch in iter_records(tmp_path, DEALS, chunk=1) for r in batch] == [
        "1",
        "2",
    ]
