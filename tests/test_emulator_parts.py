"""Unit tests of the emulator's parts: PHP-bracket params, filters, list engine, batch refs."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from rop.emulator.batch import run_batch
from rop.emulator.data import Table
from rop.emulator.errors import ApiError
from rop.emulator.filters import compile_filter
from rop.emulator.listing import Cost, parse_start, run_list
from rop.emulator.methods import Reply
from rop.emulator.params import parse_body, parse_query

ZONE = ZoneInfo("Europe/Moscow")


def test_php_brackets() -> None:
    parsed = parse_query(
        "filter%5B%3E%3DID%5D=5&select[]=ID&select[]=TITLE&order[ID]=DESC&start=-1&a[b][c]=d"
    )
    assert parsed == {
        "filter": {">=ID": "5"},
        "select": {"0": "ID", "1": "TITLE"},
        "order": {"ID": "DESC"},
        "start": "-1",
        "a": {"b": {"c": "d"}},
    }


def test_bodies() -> None:
    assert parse_body(b'{"x": [1]}', "application/json") == {"x": [1]}
    assert parse_body(b"cmd[a]=user.admin", "application/x-www-form-urlencoded") == {
        "cmd": {"a": "user.admin"}
    }
    for bad in (b"{oops", b"[1, 2]"):
        with pytest.raises(ApiError) as caught:
            parse_body(bad, "application/json")
        assert caught.value.code == "INVALID_REQUEST"


def _table(n: int = 100) -> Table:
    return Table(
        "deal",
        [
            {
                "ID": str(i),
                "TITLE": f"T{i}",
                "OPPORTUNITY": str(i * 10),
                "STAGE_ID": "WON" if i % 2 else "NEW",
            }
            for i in range(1, n + 1)
        ],
    )


def _resolve(table: Table):  # type: ignore[no-untyped-def]
    return lambda name: name.upper() if name.upper() in table.fields else None


def test_id_conditions_become_bisect_bounds() -> None:
    table = _table()
    compiled = compile_filter({">ID": "10", "<=ID": 20.5, "STAGE_ID": "WON"}, _resolve(table), ZONE)
    assert (compiled.low, compiled.high) == (11, 20)
    assert len(compiled.rest.items) == 1
    assert compile_filter({">ID": ""}, _resolve(table), ZONE).empty


def test_unknown_filter_field_is_invalid_arg() -> None:
    with pytest.raises(ApiError) as caught:
        compile_filter({">=NOPE": 1}, _resolve(_table()), ZONE)
    assert caught.value.code == "INVALID_ARG_VALUE"


def test_keyset_page_scans_only_what_it_returns() -> None:
    table = _table(10000)
    cost = Cost()
    compiled = compile_filter({">ID": 5000}, _resolve(table), ZONE)
    page = run_list(None, table, compiled, [("ID", False)], -1, None, cost)  # type: ignore[arg-type]
    assert [r["ID"] for r in page.rows] == [str(i) for i in range(5001, 5051)]
    assert (page.total, page.next) == (0, None)
    assert cost.scanned == 50 and cost.counted == 0
    counted = Cost()
    page = run_list(None, table, compile_filter({}, _resolve(table), ZONE), [], 100, None, counted)  # type: ignore[arg-type]
    assert (page.total, page.next) == (10000, 150) and counted.counted == 10000


def test_keyset_with_extra_condition_stops_after_a_page() -> None:
    table = _table(10000)
    cost = Cost()
    compiled = compile_filter({">ID": 100, "STAGE_ID": "WON"}, _resolve(table), ZONE)
    page = run_list(None, table, compiled, [], -1, None, cost)  # type: ignore[arg-type]
    assert [int(r["ID"]) for r in page.rows] == list(range(101, 200, 2))
    assert cost.scanned < 120


def test_order_by_other_field_descending() -> None:
    table = _table(30)
    cost = Cost()
    page = run_list(
        None,
        table,
        compile_filter({}, _resolve(table), ZONE),
        [("OPPORTUNITY", True)],
        0,
        None,
        cost,
    )  # type: ignore[arg-type]
    assert [r["ID"] for r in page.rows[:3]] == ["30", "29", "28"]  # numeric, not text order


def test_table_changes_keep_ids_sorted() -> None:
    table = _table(5)
    table.put(3, {"ID": "3", "TITLE": "x"})
    table.put(10, {"ID": "10"})
    table.put(7, {"ID": "7"})
    assert table.ids == [1, 2, 3, 4, 5, 7, 10]
    assert table.remove(4) and not table.remove(4)
    assert table.ids == [1, 2, 3, 5, 7, 10]


def test_batch_references_resolve_and_missing_ones_become_empty() -> None:
    calls = []

    def execute(method: str, params: dict) -> tuple[Reply, dict]:
        calls.append((method, params))
        if method == "crm.item.list":
            return Reply({"items": [{"id": 7}, {"id": 9}]}, 2), {}
        return Reply(params), {}

    out = run_batch(
        {
            "cmd": {
                "a": "crm.item.list?entityTypeId=2",
                "b": "echo?x=%24result%5Ba%5D%5Bitems%5D%5B1%5D%5Bid%5D&y=$result[a][items][5][id]",
                "c": "echo?t=total+$result_total[a]",
            }
        },
        execute,
    )
    assert calls[1][1] == {"x": "9", "y": ""}
    assert calls[2][1] == {"t": "total 2"}
    assert out["result_total"] == {"a": 2} and out["result_error"] == []


def test_date_index_gives_what_a_scan_gives() -> None:
    rows = [
        {"ID": str(i), "DATE_MODIFY": f"2026-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}T10:00:00+03:00"}
        for i in range(1, 5001)
    ]
    rows[4000]["DATE_MODIFY"] = "2026-12-31T23:00:00+00:00"  # another offset, same rule
    table = Table("deal", rows)
    flt = {">=DATE_MODIFY": "2026-12-20", ">ID": 100}
    cost = Cost()
    page = run_list(None, table, compile_filter(flt, _resolve(table), ZONE), [], 0, None, cost)  # type: ignore[arg-type]
    expected = [
        int(r["ID"]) for r in rows if int(r["ID"]) > 100 and r["DATE_MODIFY"][:10] >= "2026-12-20"
    ]
    assert page.total == len(expected) and [int(r["ID"]) for r in page.rows] == expected[:50]
    assert cost.scanned == len(expected)  # the index, not a walk over 5000 rows
    table.put(7, {"ID": "7", "DATE_MODIFY": "2026-12-25T00:00:00+03:00"})  # index rebuilt
    page = run_list(
        None,
        table,
        compile_filter({">=DATE_MODIFY": "2026-12-20"}, _resolve(table), ZONE),
        [],
        0,
        None,
        Cost(),
    )  # type: ignore[arg-type]
    assert page.rows[0]["ID"] == "7"


def test_absurd_offset_costs_no_more_than_the_table() -> None:
    table = _table(100)
    cost = Cost()
    page = run_list(
        None,
        table,
        compile_filter({}, _resolve(table), ZONE),
        [],
        parse_start("99999999999999999999"),
        None,
        cost,
    )  # type: ignore[arg-type]
    assert page.rows == [] and page.total == 100 and cost.scanned <= 100
