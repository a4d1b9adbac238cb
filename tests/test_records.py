"""Mapping of Bitrix24 REST records to store rows."""

from __future__ import annotations

from datetime import date, datetime

from rop.bitrix import records
from rop.bitrix.values import offset_zone_name, to_utc


def test_deal_record_maps_types_and_times():
    row = records.DEALS.to_row(
        {
            "ID": "410",
            "TITLE": "New Deal #1",
            "CATEGORY_ID": "0",
            "STAGE_ID": "PREPARATION",
            "STAGE_SEMANTIC_ID": "P",
            "OPPORTUNITY": "1000000.00",
            "CURRENCY_ID": "EUR",
            "ASSIGNED_BY_ID": "1",
            "COMPANY_ID": "9",
            "CONTACT_ID": "84",
            "LEAD_ID": None,
            "CLOSED": "N",
            "CLOSEDATE": "2024-09-09T02:00:00+02:00",
            "DATE_CREATE": "2024-08-30T14:29:00+02:00",
            "MOVED_TIME": "",
        }
    )
    assert row["id"] == 410
    assert row["opportunity"] == 1_000_000.0
    assert row["lead_id"] is None
    assert row["closed"] is False
    assert row["date_create"] == datetime(2024, 8, 30, 12, 29)
    assert row["closedate"] == date(2024, 9, 9)
    assert row["moved_time"] is None


def test_status_semantics_prefers_extra():
    assert records.status_semantics({"SEMANTICS": None, "EXTRA": {"SEMANTICS": "apology"}}) == "F"
    assert records.status_semantics({"SEMANTICS": "S"}) == "S"
    assert records.status_semantics({"SEMANTICS": None}) == "P"


def test_offset_zone_name():
    assert offset_zone_name("2026-01-01T00:00:00+03:00") == "Etc/GMT-3"
    assert offset_zone_name("2026-01-01T00:00:00-05:00") == "Etc/GMT+5"
    assert offset_zone_name("2026-01-01T00:00:00+05:30") is None
    assert to_utc("2026-01-01T00:30:00+03:00") == datetime(2025, 12, 31, 21, 30)


def test_nothing_reads_as_none_in_codes_and_links():
    from rop.bitrix.values import to_code, to_ref

    for nothing in (None, "", "  "):
        assert to_code(nothing) is None and to_ref(nothing) is None
    assert to_ref("0") is None and to_ref(0) is None  # typed replies (crm.item.list) send 0
    assert to_ref("12") == 12 and to_code("WEB") == "WEB" and to_code("0") == "0"
    row = records.CONTACTS.to_row({"ID": "3", "COMPANY_ID": 0, "SOURCE_ID": "", "LEAD_ID": "0"})
    assert (row["company_id"], row["source_id"], row["lead_id"]) == (None, None, None)
    user = records.USERS.to_row({"ID": "5", "UF_DEPARTMENT": ["0", "", 7]})
    assert user["department_id"] == 7 and user["department_ids"] == "[7]"
