"""The emulator's record store (SQLite, tables.py): what its indexes answer must
be exactly what the Python filters answer, loads keep records as they were, and
scoped lists use the indexes instead of walking the table."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rop.emulator.data import FILES, PortalError, load_portal
from rop.emulator.filters import compile_filter
from rop.emulator.jsonstream import iter_records
from rop.emulator.listing import Cost, run_list
from rop.emulator.tables import Table
from rop.emulator.visibility import ScopeCache, visible

ZONE = ZoneInfo("Europe/Moscow")


def _deals(n: int, seed: int = 5) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        out.append(
            {
                "ID": str(i),
                "TITLE": f'Сделка «{i}» "q" \\ {rnd.random()}',
                "ASSIGNED_BY_ID": str(rnd.randint(1, 12)) if i % 17 else None,
                "DATE_MODIFY": f"2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
                f"T{rnd.randint(0, 23):02d}:00:00+0{rnd.randint(0, 5)}:00",
                "OPENED": rnd.choice(["Y", "N", "y", None]),
                "STAGE_ID": rnd.choice(["NEW", "WON", "LOSE"]),
                "PHONE": [{"VALUE": "+7 900", "VALUE_TYPE": "WORK"}] if i % 5 == 0 else None,
            }
        )
    return out


def _resolver(table: Table):  # type: ignore[no-untyped-def]
    return lambda name: name.upper() if name.upper() in table.fields else None


FILTERS: list[dict[str, Any]] = [
    {"ASSIGNED_BY_ID": 3},
    {"@ASSIGNED_BY_ID": [2, "5", 7]},
    {"!ASSIGNED_BY_ID": 4},
    {"!@ASSIGNED_BY_ID": [1, 2, 3]},
    {"@ID": [5, 70, 71, 9999], "STAGE_ID": "WON"},
    {"!ID": 8, "<ID": 40},
    {">=DATE_MODIFY": "2026-06-01", "<DATE_MODIFY": "2026-09-01T12:00:00+03:00"},
    {">DATE_MODIFY": "2026-11-15T00:00:00+00:00", "@ASSIGNED_BY_ID": [1, 3, 5, 7, 9, 11]},
    {"><DATE_MODIFY": ["2026-02-01", "2026-03-01"], ">ID": 100},
    {"LOGIC": "OR", "ASSIGNED_BY_ID": 2, "STAGE_ID": "LOSE"},
    {"ASSIGNED_BY_ID": "abc"},
    {"ASSIGNED_BY_ID": ""},
]


def _reference(records: list[dict[str, Any]], flt: dict[str, Any], table: Table) -> list[str]:
    compiled = compile_filter(flt, _resolver(table), ZONE)
    out = []
    for record in sorted(records, key=lambda r: int(r["ID"])):
        rid = int(record["ID"])
        if compiled.empty:
            break
        if compiled.low is not None and rid < compiled.low:
            continue
        if compiled.high is not None and rid > compiled.high:
            continue
        if compiled.rest.matches(record):
            out.append(record["ID"])
    return out


def _listed(table: Table, flt: dict[str, Any], start: int = 0, **kw: Any) -> Any:
    compiled = compile_filter(flt, _resolver(table), ZONE)
    return run_list(None, table, compiled, kw.get("order", []), start, None, Cost())  # type: ignore[arg-type]


@pytest.mark.parametrize("irregular", [False, True])
def test_indexed_filters_answer_what_the_python_filters_answer(irregular: bool) -> None:
    records = _deals(600)
    if irregular:
        # Values the columns cannot mirror: the table must fall back to decoded records.
        records[10]["ASSIGNED_BY_ID"] = 3.0
        records[11]["ASSIGNED_BY_ID"] = ["3", "4"]
        records[12]["DATE_MODIFY"] = "2026-07-01"  # no offset: depends on the zone
        records[13]["DATE_MODIFY"] = "01.08.2026 10:00"
    table = Table("deal", records, zone=ZONE)
    assert table.column("ASSIGNED_BY_ID") is (
        None if irregular else table.columns["ASSIGNED_BY_ID"]
    )
    for flt in FILTERS:
        expected = _reference(records, flt, table)
        page = _listed(table, flt)
        assert page.total == len(expected), flt
        assert [r["ID"] for r in page.rows] == expected[:50], flt
        second = _listed(table, flt, start=50)
        assert [r["ID"] for r in second.rows] == expected[50:100], flt
        keyset = _listed(table, flt, start=-1, order=[("ID", True)])
        assert [r["ID"] for r in keyset.rows] == expected[::-1][:50], flt


def test_changes_keep_the_indexes_true() -> None:
    records = _deals(300)
    table = Table("deal", records, zone=ZONE)
    table.put(7, {**records[6], "ASSIGNED_BY_ID": "99"})
    table.put(301, {"ID": "301", "ASSIGNED_BY_ID": 99, "DATE_MODIFY": "2030-01-01T00:00:00+03:00"})
    table.remove(8)
    assert [r["ID"] for r in _listed(table, {"ASSIGNED_BY_ID": 99}).rows] == ["7", "301"]
    assert [r["ID"] for r in _listed(table, {">DATE_MODIFY": "2029-12-31"}).rows] == ["301"]
    assert _listed(table, {"@ID": [8, 9]}).total == 1
    # A value the column cannot mirror, added later, stops the index being trusted.
    table.put(302, {"ID": "302", "ASSIGNED_BY_ID": [99]})
    assert table.column("ASSIGNED_BY_ID") is None
    assert [r["ID"] for r in _listed(table, {"ASSIGNED_BY_ID": 99}).rows] == ["7", "301", "302"]


def _portal_folder(tmp_path: Path, deals: list[dict[str, Any]]) -> Path:
    folder = tmp_path / "portal"
    folder.mkdir()
    (folder / "portal.json").write_text(
        json.dumps({"domain": "x.bitrix24.ru", "timezone": "Europe/Moscow", "admins": [1]})
    )
    users = [{"ID": str(u), "ACTIVE": True, "UF_DEPARTMENT": [1 + u % 3]} for u in range(1, 13)]
    departments = [
        {"ID": "1", "NAME": "Top", "UF_HEAD": "1"},
        {"ID": "2", "NAME": "A", "PARENT": "1", "UF_HEAD": "2"},
        {"ID": "3", "NAME": "B", "PARENT": "1", "UF_HEAD": "6"},
    ]
    history = [
        {"ID": i, "OWNER_ID": 1 + (i * 7) % (len(deals) + 20), "STAGE_ID": "NEW"}
        for i in range(1, 3 * len(deals))
    ]
    files = {"deal": deals, "user": users, "department": departments, "deal_history": history}
    for kind, rows in files.items():
        (folder / FILES[kind]).write_text(json.dumps(rows, ensure_ascii=False, indent=1))
    permissions = {"default": {}, "users": {"5": {"deal": "open"}, "9": {"deal": "department"}}}
    (folder / "crm.permissions.json").write_text(json.dumps(permissions))
    return folder


def test_load_keeps_records_as_they_were_and_both_readers_agree(tmp_path: Path) -> None:
    deals = _deals(400)
    folder = _portal_folder(tmp_path, deals)
    portal = load_portal(folder)
    table = portal.tables["deal"]
    assert len(table) == 400 and table.rows[17] == deals[16] and table.rows.get(401) is None
    assert list(table.rows.values()) == deals
    # The fallback reader (Python's json) gives the same table.
    slow = Table("deal", zone=ZONE, texts=iter_records(folder / FILES["deal"]))
    assert list(slow.rows.values()) == deals and slow.fields == table.fields
    for flt in FILTERS:
        assert _listed(slow, flt).total == _listed(table, flt).total


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"ID": "1"}, {"ID": ', "not valid JSON"),
        ('{"ID": "1"}', "expected a JSON array of records"),
        ('[{"ID": "1"}, 5]', "expected a JSON array of records"),
        ('[{"ID": "1"}, {"TITLE": "no id"}]', "record without a numeric ID"),
    ],
)
def test_a_bad_snapshot_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    folder = _portal_folder(tmp_path, _deals(3))
    (folder / FILES["deal"]).write_text(text)
    with pytest.raises(PortalError, match=message):
        load_portal(folder)


def test_a_viewer_scope_is_an_index_lookup_not_a_walk(tmp_path: Path) -> None:
    deals = _deals(1500)
    portal = load_portal(_portal_folder(tmp_path, deals))
    scopes = ScopeCache(portal)
    for kind in ("deal", "deal_history"):
        table = portal.tables[kind]
        records = list(table.rows.values())
        for user in (3, 2, 5, 9):  # own, a head, open records, department
            scope = scopes.scope(user)
            expected = [r["ID"] for r in records if visible(portal, kind, r, scope)]
            for flt in ({}, {"@ASSIGNED_BY_ID": [2, 3, 4]} if kind == "deal" else {">ID": 30}):
                compiled = compile_filter(flt, _resolver(table), ZONE)
                allowed = set(_reference(records, flt, table))
                want = [i for i in expected if i in allowed]
                cost = Cost()
                page = run_list(portal, table, compiled, [], 0, scope, cost)
                assert page.total == len(want) and [r["ID"] for r in page.rows] == want[:50]
                # The index hands over the visible rows only: no walk over the table.
                assert cost.scanned <= len(want) + 50 < len(records), (kind, user, flt)


def test_the_syncs_activity_filter_is_indexed() -> None:
    # rop sync counts and pages crm.activity.list with {"TYPE_ID": 2} (calls only).
    records = [
        {"ID": str(i), "TYPE_ID": str(1 + (i % 4 == 0)), "SUBJECT": "x"} for i in range(1, 2001)
    ]
    table = Table("activity", records, zone=ZONE)
    compiled = compile_filter({"TYPE_ID": 2}, _resolver(table), ZONE)
    cost = Cost()
    page = run_list(None, table, compiled, [("ID", False)], 0, None, cost)  # type: ignore[arg-type]
    assert page.total == 500 and [r["ID"] for r in page.rows][:2] == ["4", "8"]
    assert cost.scanned == 500  # the matches, not the 2,000 activities
