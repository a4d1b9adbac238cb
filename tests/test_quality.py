"""The data-quality panel and the activity figures on a hand-made portal
(tests/fixtures/portals/quality): each check pinned with exact numbers, each
number equal to its drill-down, the score worst first, the settings obeyed."""

from __future__ import annotations

from datetime import date

import pytest

from rop.bitrix.contact_keys import email_key, inn_key, phone_key
from rop.metrics.quality import CHECKS, QualitySettings
from rop.report.build import drill
from rop.report.filter import AccessDenied, ReportFilter
from rop.report.quality import build_quality, manager_quality
from tests.fixtures.portals import load

NOV = ReportFilter(date(2026, 11, 1), date(2026, 11, 30))
OCT = ReportFilter(date(2026, 10, 1), date(2026, 10, 31))
SEP = ReportFilter(date(2026, 9, 1), date(2026, 9, 30))


@pytest.fixture(scope="module")
def store():
    s = load("quality")
    yield s
    s.close()


def per_manager(panel, key):
    return {r["user_id"]: r["figures"][key] for r in panel["rows"] if r["figures"][key]}


def test_two_ways_of_writing_one_phone_are_one_key():
    assert phone_key("8 (912) 345-67-89") == phone_key("+7 912 345 67 89") == "+79123456789"
    assert phone_key("79123456789") == "+79123456789"
    assert phone_key("12-34") is None and phone_key("") is None
    assert email_key(" Sales@Example.ru ") == "sales@example.ru"
    assert email_key("nobody") is None


def test_an_inn_is_its_digits_when_its_control_digits_check_out():
    assert inn_key("77 07 083 893") == inn_key("7707083893") == "7707083893"
    assert inn_key("500100732259") == "500100732259"  # a person's 12 digits
    assert inn_key("7707083894") is None  # a typo in the last digit
    assert inn_key("0000000000") is None and inn_key("000 000 000 000") is None  # placeholders
    assert inn_key("770708389") is None and inn_key("") is None and inn_key(None) is None


# (figure, total, {manager: count}) in November; the portal's clock is 25 Nov 12:00.
NOVEMBER = [
    ("quality_deal_no_amount", 2, {2: 1, 3: 1}),  # D2 open; D4 won in November
    ("quality_deal_no_client", 1, {2: 1}),  # D2 (D5 was lost in September)
    ("quality_deal_overdue_close", 1, {2: 1}),  # D2
    ("quality_deal_stale", 1, {2: 1}),  # D2: last move 5 Oct, no activity
    ("quality_deal_no_next_step", 2, {2: 2}),  # D2 nothing; D3 only a done meeting
    # L2: Friday 17:00 -> Monday 15:00 = 7 working hours; L4: 11 by now. Not L1
    # (Friday 17:00 -> Monday 10:00 = 2) nor L3 (4 November is a holiday: 3).
    ("quality_lead_slow", 2, {2: 1, 3: 1}),
    ("quality_company_no_reach", 1, {4: 1}),  # C2
    ("quality_contact_no_reach", 1, {2: 1}),  # K3 (K4 has a number, if a broken one)
    # C3, C4 by e-mail; C1 "7707083893" = C2 "77 07 083 893" by INN. Not C5 (another
    # INN), not our own company (C1's INN too), not C3's INN with a wrong control digit.
    ("quality_company_duplicate", 4, {2: 1, 3: 2, 4: 1}),
    ("quality_contact_duplicate", 2, {2: 1, 3: 1}),  # K1 "8 912 ..." = K2 "+7912..."
    ("quality_deal_dismissed", 1, {4: 1}),
    ("quality_lead_dismissed", 1, {4: 1}),
    ("quality_company_dismissed", 1, {4: 1}),
    ("quality_contact_dismissed", 0, {}),
    ("quality_call_unbound", 1, {3: 1}),
    ("activities_done", 2, {2: 1, 3: 1}),  # A2 meeting, A5 call
    ("activities_overdue", 1, {4: 1}),  # A3 task due 20 November
]


def test_each_check_has_its_exact_numbers(store):
    panel = build_quality(store, NOV)
    for key, total, managers in NOVEMBER:
        assert panel["total"]["figures"][key] == total, key
        assert per_manager(panel, key) == managers, key


def test_checks_that_follow_the_period(store):
    october = build_quality(store, OCT)
    assert october["total"]["figures"]["quality_call_unbound"] == 1  # V3
    assert per_manager(october, "activities_done") == {3: 1}  # A4 e-mail
    # L6 was closed as junk at a time nobody recorded: it cannot be judged.
    assert october["total"]["figures"]["quality_lead_slow"] == 0
    september = build_quality(store, SEP)
    # D5 lost then, and D2 that is in progress now.
    assert september["total"]["figures"]["quality_deal_no_client"] == 2
    # Present-day checks do not depend on the period.
    assert september["total"]["figures"]["quality_deal_stale"] == 1


def test_every_number_equals_its_drill_down(store):
    for flt in (NOV, OCT, SEP):
        panel = build_quality(store, flt)
        for col in panel["columns"]:
            key = col["key"]
            total = drill(store, flt, key)
            assert total["value"] == panel["total"]["figures"][key], key
            assert total["total_records"] == panel["total"]["figures"][key], key
            owners = [r["manager_id"] for r in total["records"]]
            for row in panel["rows"]:
                assert owners.count(row["user_id"]) == row["figures"][key], key
            row = panel["rows"][0]
            mine = drill(store, flt, key, user_id=row["user_id"])
            assert mine["value"] == row["figures"][key] == len(mine["records"]), key


def test_inn_duplicates_drill_down_to_the_two_companies_with_their_inn(store):
    listed = drill(store, NOV, "quality_company_duplicate")
    inns = {r["id"]: r["inn"] for r in listed["records"]}
    assert inns == {1: "7707083893", 2: "77 07 083 893", 3: "7707083894", 4: None}
    mine = drill(store, NOV, "quality_company_duplicate", user_id=4)
    assert [r["id"] for r in mine["records"]] == [2] and mine["value"] == 1


def test_score_is_the_share_of_open_records_without_a_problem_worst_first(store):
    panel = build_quality(store, NOV)
    rows = {r["user_id"]: r for r in panel["rows"]}
    # Борис: D1-D3, L1, L2, C1, C5, K1, K3, K4 open; D2, D3, L2, C1, K1, K3 with a problem.
    assert (rows[2]["open_records"], rows[2]["open_with_problems"]) == (10, 6)
    assert rows[2]["score"] == pytest.approx(4 / 10)
    assert (rows[3]["open_records"], rows[3]["open_with_problems"]) == (4, 4)
    assert (rows[4]["open_records"], rows[4]["open_with_problems"]) == (3, 3)
    assert [r["user_id"] for r in panel["rows"]] == [3, 4, 2]
    assert panel["rows"][1]["dismissed"] is True


def test_settings_switch_checks_off_and_set_thresholds(store):
    settings = QualitySettings(checks=("deal_no_amount",), stale_days=60, lead_hours=8)
    panel = build_quality(store, NOV, settings)
    keys = [c["key"] for c in panel["columns"]]
    assert "quality_lead_slow" not in keys and "quality_deal_no_amount" in keys
    assert [c["name"] for c in panel["checks"]] == ["deal_no_amount"]
    # Only D2 of Борис's open records has the one enabled problem.
    assert {r["user_id"]: r["open_with_problems"] for r in panel["rows"]}[2] == 1
    # Thresholds reach the drill-down too: 8 working hours spare L2 (7), not L4 (11).
    d = drill(store, NOV, "quality_lead_slow", quality=settings)
    assert [r["id"] for r in d["records"]] == [4]
    assert drill(store, NOV, "quality_deal_stale", quality=settings)["value"] == 0
    assert set(CHECKS) >= set(QualitySettings().checks)


def test_a_viewer_sees_only_their_scope(store):
    # Вера (3) is no head: her own records only; a drill for Борис is refused.
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), viewer=3)
    panel = build_quality(store, flt)
    assert [r["user_id"] for r in panel["rows"]] == [3]
    assert panel["total"]["figures"]["quality_deal_no_amount"] == 1
    with pytest.raises(AccessDenied):
        drill(store, flt, "quality_deal_no_amount", user_id=2)


def test_one_managers_checks_for_the_manager_page(store):
    mine = manager_quality(store, NOV, 2)
    assert mine["row"]["figures"]["quality_deal_no_next_step"] == 2
    assert mine["row"]["score"] == pytest.approx(4 / 10)
    nobody = manager_quality(store, NOV, 1)  # the admin owns nothing here
    assert nobody["row"]["score"] is None
    assert set(nobody["row"]["figures"].values()) == {0}


def test_activity_drill_links_to_the_owner_card(store):
    d = drill(store, NOV, "activities_overdue")
    (rec,) = d["records"]
    assert rec["subject"] == "A3 task overdue"
    assert rec["url"].endswith("/crm/deal/details/6/")


def test_settings_name_the_checks_and_refuse_an_unknown_one(monkeypatch):
    from rop.config import QUALITY_CHECKS, Settings

    assert QUALITY_CHECKS == CHECKS
    monkeypatch.setenv("ROP_QUALITY_CHECKS", "deal_stale, lead_slow")
    assert Settings().quality_check_names() == ("deal_stale", "lead_slow")
    monkeypatch.setenv("ROP_QUALITY_CHECKS", "all")
    assert Settings().quality_check_names() == CHECKS
    monkeypatch.setenv("ROP_QUALITY_CHECKS", "deal_stael")
    with pytest.raises(ValueError, match="deal_stael"):
        Settings()


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_the_same_panel_on_both_engines(engine, tmp_path, request, store):
    from rop.bitrix.snapshot import load_snapshot
    from rop.store import open_store
    from tests.conftest import store_target
    from tests.fixtures.portals import PORTALS

    other = open_store(store_target(engine, tmp_path, request))
    try:
        load_snapshot(other, PORTALS / "quality")
        got = build_quality(other, NOV)
        want = build_quality(store, NOV)
        assert got["rows"] == want["rows"] and got["total"] == want["total"]
        d = drill(other, NOV, "quality_lead_slow")
        assert sorted(r["id"] for r in d["records"]) == [2, 4]
    finally:
        other.close()


def test_a_sync_over_rest_gives_the_same_panel_and_follows_a_new_activity(tmp_path, store):
    """Activities of every type, e-mails and phone keys come over REST (the
    emulator) as from the snapshot; a to-do added later is copied incrementally."""
    from rop.bitrix.sync import run_sync
    from rop.store import open_store
    from tests.fixtures.portals import PORTALS
    from tests.test_sync import QUICK, emulate

    with emulate(PORTALS / "quality", rate_limit=False) as emu, open_store(":memory:") as synced:
        run_sync(synced, emu.webhook, retry=QUICK)
        flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), today=date(2026, 11, 25))
        got, want = build_quality(synced, flt), build_quality(store, flt)
        assert got["total"] == want["total"]
        assert got["total"]["figures"]["quality_contact_duplicate"] == 2
        before = got["total"]["figures"]["quality_deal_no_next_step"]
        emu.portal.add(
            "activity",
            {"TYPE_ID": "6", "PROVIDER_ID": "CRM_TODO", "OWNER_TYPE_ID": "2", "OWNER_ID": "2",
             "RESPONSIBLE_ID": "2", "COMPLETED": "N", "DEADLINE": "2026-11-30T10:00:00+03:00",
             "SUBJECT": "call D2 back"},
        )  # fmt: skip
        result = run_sync(synced, emu.webhook, retry=QUICK)
        assert result.kind == "incremental"
        assert result.counts["activities"]["added"] == 1
        after = build_quality(synced, flt)["total"]["figures"]["quality_deal_no_next_step"]
        assert after == before - 1  # D2 has a next step now


def test_requisites_follow_incrementally_new_changed_and_deleted(tmp_path):
    """A new requisite has no DATE_MODIFY yet (Bitrix24 leaves it blank until the
    first change): the incremental run reads it by ID. A changed one comes by
    DATE_MODIFY, a deleted one goes through the range counts (docs/SYNC.md)."""
    from rop.bitrix.sync import run_sync
    from rop.store import open_store
    from tests.fixtures.portals import PORTALS
    from tests.test_sync import QUICK, emulate

    def duplicates(store):
        return sorted(r["id"] for r in drill(store, NOV, "quality_company_duplicate")["records"])

    with emulate(PORTALS / "quality", rate_limit=False) as emu, open_store(":memory:") as synced:
        run_sync(synced, emu.webhook, retry=QUICK)
        assert duplicates(synced) == [1, 2, 3, 4]
        rid = emu.portal.add(
            "requisite",
            {"ENTITY_TYPE_ID": "4", "ENTITY_ID": "5", "PRESET_ID": "1", "RQ_INN": "770 708 3893"},
        )
        assert emu.portal.get("requisite", rid)["DATE_MODIFY"] == ""
        result = run_sync(synced, emu.webhook, retry=QUICK)
        assert result.kind == "incremental" and result.counts["requisites"]["added"] == 1
        assert duplicates(synced) == [1, 2, 3, 4, 5]  # C5 now shares C1's INN
        emu.portal.update("requisite", 2, {"RQ_INN": "7702070139"})  # C2 -> C5's old INN
        emu.portal.delete("requisite", 3)  # C5's own requisite with that INN
        result = run_sync(synced, emu.webhook, retry=QUICK)
        assert result.counts["requisites"]["updated"] == 1
        assert result.counts["requisites"]["deleted"] == 1
        assert duplicates(synced) == [1, 3, 4, 5]


def test_an_activity_counts_for_its_owner_only():
    """Bindings beyond the owner are not copied (docs/METRICS_DECISIONS.md "Activities
    bound to several records"): a planned call owned by D3's contact K1 is not D3's
    next step; the same call owned by D3 is."""
    from datetime import datetime

    s = load("quality")
    try:
        call = {"portal": s.scalar("SELECT portal FROM portals"), "id": 900, "type_id": 2,
                "owner_type_id": 3, "owner_id": 1, "responsible_id": 2, "completed": False,
                "deadline": datetime(2026, 11, 28, 9), "created": datetime(2026, 11, 24, 9),
                "last_updated": datetime(2026, 11, 24, 9), "subject": "call K1 about D3"}  # fmt: skip
        s.upsert("activities", [call])
        listed = drill(s, NOV, "quality_deal_no_next_step")
        assert sorted(r["id"] for r in listed["records"]) == [2, 3]
        s.upsert("activities", [{**call, "id": 901, "owner_type_id": 2, "owner_id": 3}])
        listed = drill(s, NOV, "quality_deal_no_next_step")
        assert sorted(r["id"] for r in listed["records"]) == [2]
    finally:
        s.close()
