"""The demo portal generator: deterministic, shaped like Bitrix24, internally consistent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from rop.bitrix.snapshot import load_snapshot
from rop.cli import cli
from rop.demo.generator import SCRIPT_TITLE, generate
from rop.demo.staff import UNKNOWN_USER
from rop.store import open_store

DEALS = 2000
FILES = (
    "portal.json",
    "user.get.json",
    "department.get.json",
    "crm.category.list.json",
    "crm.status.list.json",
    "crm.currency.list.json",
    "crm.deal.list.json",
    "crm.lead.list.json",
    "crm.company.list.json",
    "crm.contact.list.json",
    "crm.stagehistory.list.2.json",
    "crm.stagehistory.list.1.json",
    "voximplant.statistic.get.json",
    "crm.activity.list.json",
    "crm.requisite.list.json",
)


def _read(folder: Path, name: str):
    return json.loads((folder / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def portal(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo") / "portal"
    generate(folder, seed=1, deals=DEALS)
    return folder


@pytest.fixture(scope="module")
def data(portal) -> dict:
    return {name: _read(portal, name) for name in FILES}


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _by_owner(rows: list[dict]) -> dict[int, list[dict]]:
    owners: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        owners[row["OWNER_ID"]].append(row)
    return owners


# -- determinism -----------------------------------------------------------


def _file_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(portal, tmp_path):
    generate(tmp_path / "again", seed=1, deals=DEALS)
    generate(tmp_path / "other", seed=2, deals=DEALS)
    first = _file_bytes(portal)
    assert sorted(first) == sorted(FILES)  # every contract file, no leftovers
    assert _file_bytes(tmp_path / "again") == first
    other = _file_bytes(tmp_path / "other")
    assert other["crm.deal.list.json"] != first["crm.deal.list.json"]
    assert other["voximplant.statistic.get.json"] != first["voximplant.statistic.get.json"]
    assert (
        _read(tmp_path / "other", "portal.json")["webhook"]
        != _read(portal, "portal.json")["webhook"]
    )


def test_output_does_not_depend_on_hash_randomisation(portal, tmp_path):
    # A set or dict iterated in hash order would change the files between runs.
    code = "import sys; from rop.demo.generator import generate; generate(sys.argv[1], deals=int(sys.argv[2]))"
    for hash_seed in ("0", "12345"):
        folder = tmp_path / hash_seed
        subprocess.run(
            [sys.executable, "-c", code, str(folder), str(DEALS)],
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert _file_bytes(folder) == _file_bytes(portal)


# -- shapes and counts -----------------------------------------------------


def test_counts_as_requested_and_ids_ascend_from_one(data):
    deals = data["crm.deal.list.json"]
    assert len(deals) == DEALS
    assert len(data["crm.lead.list.json"]) == DEALS // 2
    assert len(data["crm.company.list.json"]) == DEALS // 4
    assert len(data["crm.contact.list.json"]) == DEALS // 2
    assert 3 * DEALS <= len(data["crm.stagehistory.list.2.json"]) <= 6 * DEALS
    assert 1.5 * DEALS <= len(data["voximplant.statistic.get.json"]) <= 3 * DEALS
    for name in FILES[6:]:
        ids = [int(r["ID"]) for r in data[name]]
        assert ids == list(range(1, len(ids) + 1)), name


def test_portal_json(data):
    portal = data["portal.json"]
    assert portal["domain"] == "demo-rop.bitrix24.ru"
    assert portal["timezone"] == "Europe/Moscow"
    assert portal["base_currency"] == "RUB"
    assert portal["admins"] == [1]
    assert portal["webhook"]["user_id"] == 1 and len(portal["webhook"]["token"]) == 16
    assert portal["now"] == "2026-11-27T12:00:00+03:00"


def test_records_use_bitrix_value_types(data):
    deal = data["crm.deal.list.json"][0]
    assert all(
        isinstance(deal[k], str) for k in ("ID", "CATEGORY_ID", "ASSIGNED_BY_ID", "OPPORTUNITY")
    )
    assert deal["CLOSED"] in ("Y", "N") and deal["OPENED"] == "Y"
    assert deal["DATE_CREATE"].endswith("+03:00") and deal["CLOSEDATE"].endswith("T03:00:00+03:00")
    user = data["user.get.json"][0]
    assert isinstance(user["ACTIVE"], bool)
    assert all(isinstance(d, int) for u in data["user.get.json"] for d in u["UF_DEPARTMENT"])
    row = data["crm.stagehistory.list.2.json"][0]
    assert all(isinstance(row[k], int) for k in ("ID", "TYPE_ID", "OWNER_ID", "CATEGORY_ID"))
    category = data["crm.category.list.json"][0]
    assert set(category) == {"id", "name", "sort", "entityTypeId", "isDefault"}
    assert category["entityTypeId"] == 2
    call = data["voximplant.statistic.get.json"][0]
    assert isinstance(call["CALL_DURATION"], str) and isinstance(call["CALL_TYPE"], str)


# -- the organisation ------------------------------------------------------


def test_departments_users_and_the_unknown_responsible(data):
    users = {int(u["ID"]): u for u in data["user.get.json"]}
    departments = data["department.get.json"]
    assert len(departments) >= 3
    ids = {int(d["ID"]) for d in departments}
    for d in departments:
        assert int(d["UF_HEAD"]) in users
        assert "PARENT" not in d or int(d["PARENT"]) in ids
    assert any(int(d.get("PARENT", 0)) not in (0, 1) for d in departments)  # a real tree
    assert UNKNOWN_USER not in users
    dismissed = {i for i, u in users.items() if u["ACTIVE"] is False}
    assert len(dismissed) == 2
    assert any(len(u["UF_DEPARTMENT"]) > 1 for u in users.values())
    owners = {int(r["ASSIGNED_BY_ID"]) for n in FILES[6:10] for r in data[n]}
    assert owners <= set(users) | {UNKNOWN_USER}
    assert UNKNOWN_USER in owners and dismissed <= owners
    managers = {int(r["ASSIGNED_BY_ID"]) for r in data["crm.deal.list.json"]}
    assert 20 <= len(managers) <= 30


# -- deals and their history -----------------------------------------------


def _stages(data) -> dict[str, dict]:
    return {
        s["STATUS_ID"]: s
        for s in data["crm.status.list.json"]
        if s["ENTITY_ID"].startswith("DEAL_STAGE")
    }


def test_pipelines_and_stage_prefixes(data):
    stages = _stages(data)
    pipelines = {c["id"] for c in data["crm.category.list.json"]}
    assert len(pipelines) == 3 and 0 in pipelines
    for s in stages.values():
        category = 0 if s["ENTITY_ID"] == "DEAL_STAGE" else int(s["ENTITY_ID"].rsplit("_", 1)[1])
        assert category in pipelines
        assert (
            (":" not in s["STATUS_ID"])
            if category == 0
            else s["STATUS_ID"].startswith(f"C{category}:")
        )
    assert stages["APOLOGY"]["EXTRA"]["SEMANTICS"] == "apology"
    assert stages["APOLOGY"]["SEMANTICS"] == "F"
    for deal in data["crm.deal.list.json"]:
        stage = stages[deal["STAGE_ID"]]
        category = int(deal["CATEGORY_ID"])
        assert stage["ENTITY_ID"] == ("DEAL_STAGE" if category == 0 else f"DEAL_STAGE_{category}")
        letter = stage["SEMANTICS"] or "P"
        assert deal["STAGE_SEMANTIC_ID"] == letter
        assert deal["CLOSED"] == ("N" if letter == "P" else "Y")
    used = {d["STAGE_ID"] for d in data["crm.deal.list.json"]}
    assert {"WON", "LOSE", "APOLOGY", "C1:WON", "C3:WON"} <= used


def test_history_agrees_with_each_deal(data):
    deals = {int(d["ID"]): d for d in data["crm.deal.list.json"]}
    stages = _stages(data)
    history = data["crm.stagehistory.list.2.json"]
    times = [_moment(r["CREATED_TIME"]) for r in history]
    assert times == sorted(times)  # IDs ascend in time order
    owners = _by_owner(history)
    assert set(owners) <= set(deals)
    assert 0.05 * DEALS <= DEALS - len(owners) <= 0.15 * DEALS  # old deals without history
    for owner, rows in owners.items():
        deal = deals[owner]
        assert rows[0]["TYPE_ID"] == 1
        assert rows[0]["CREATED_TIME"] == deal["DATE_CREATE"]
        assert rows[-1]["STAGE_ID"] == deal["STAGE_ID"]
        assert rows[-1]["CATEGORY_ID"] == int(deal["CATEGORY_ID"])
        assert rows[-1]["CREATED_TIME"] == deal["MOVED_TIME"]
        for before, row in zip(rows, rows[1:], strict=False):
            assert _moment(before["CREATED_TIME"]) < _moment(row["CREATED_TIME"])
            final = (stages[row["STAGE_ID"]]["SEMANTICS"] or "P") != "P"
            assert row["TYPE_ID"] == (
                5 if row["CATEGORY_ID"] != before["CATEGORY_ID"] else 3 if final else 2
            )
            assert row["STAGE_SEMANTIC_ID"] == (stages[row["STAGE_ID"]]["SEMANTICS"] or "P")


def _stage_order(data) -> dict[str, int]:
    order = {}
    for s in data["crm.status.list.json"]:
        if s["ENTITY_ID"].startswith("DEAL_STAGE"):
            order[s["STATUS_ID"]] = int(s["SORT"])
    return order


def test_history_has_the_hard_cases(data):
    stages = _stages(data)
    sort = _stage_order(data)
    owners = _by_owner(data["crm.stagehistory.list.2.json"])
    reopened = skipped = backward = switched = 0
    process = {}
    for s in data["crm.status.list.json"]:
        if s["ENTITY_ID"].startswith("DEAL_STAGE") and s["SEMANTICS"] is None:
            process.setdefault(s["ENTITY_ID"], []).append(s["STATUS_ID"])
    position = {sid: i for ids in process.values() for i, sid in enumerate(ids)}
    for rows in owners.values():
        kinds = [r["TYPE_ID"] for r in rows]
        if any(a == 3 and b == 2 for a, b in zip(kinds, kinds[1:], strict=False)):
            reopened += 1
        switched += 5 in kinds
        for a, b in zip(rows, rows[1:], strict=False):
            if b["TYPE_ID"] == 2 and a["TYPE_ID"] != 3 and a["STAGE_ID"] in position:
                step = position[b["STAGE_ID"]] - position[a["STAGE_ID"]]
                skipped += step > 1
                backward += step < 0
        assert all(stages[r["STAGE_ID"]]["SEMANTICS"] for r in rows if r["TYPE_ID"] == 3)
    assert reopened >= 5 and switched >= 5 and skipped >= 50 and backward >= 20
    assert sort  # sorts parse as numbers


def test_every_closed_deal_has_a_close_time(data):
    owners = _by_owner(data["crm.stagehistory.list.2.json"])
    without_moved = 0
    for deal in data["crm.deal.list.json"]:
        if deal["STAGE_SEMANTIC_ID"] == "P":
            continue
        rows = owners.get(int(deal["ID"]), [])
        into_final = [r for r in rows if r["TYPE_ID"] == 3 and r["STAGE_ID"] == deal["STAGE_ID"]]
        assert into_final or deal["MOVED_TIME"] or deal["CLOSEDATE"]
        if rows:
            assert into_final  # with history, the history tells
        if not deal["MOVED_TIME"]:
            without_moved += 1
            assert not rows and deal["CLOSEDATE"]
    assert without_moved >= 5


def test_date_modify_is_the_latest_time_and_nothing_is_after_now(data):
    now = _moment(data["portal.json"]["now"])
    owners = _by_owner(data["crm.stagehistory.list.2.json"])
    for deal in data["crm.deal.list.json"]:
        modified = _moment(deal["DATE_MODIFY"])
        assert modified <= now
        for key in ("DATE_CREATE", "MOVED_TIME", "LAST_ACTIVITY_TIME"):
            if deal[key]:
                assert _moment(deal[key]) <= modified, (deal["ID"], key)
        for row in owners.get(int(deal["ID"]), []):
            assert _moment(row["CREATED_TIME"]) <= modified
    lead_owners = _by_owner(data["crm.stagehistory.list.1.json"])
    for lead in data["crm.lead.list.json"]:
        modified = _moment(lead["DATE_MODIFY"])
        assert modified <= now
        for key in ("DATE_CREATE", "MOVED_TIME", "DATE_CLOSED"):
            if lead[key]:
                assert _moment(lead[key]) <= modified, (lead["ID"], key)
        for row in lead_owners.get(int(lead["ID"]), []):
            assert _moment(row["CREATED_TIME"]) <= modified
    for name in ("crm.company.list.json", "crm.contact.list.json"):
        for record in data[name]:
            assert _moment(record["DATE_CREATE"]) <= _moment(record["DATE_MODIFY"]) <= now
    for call in data["voximplant.statistic.get.json"]:
        assert _moment(call["CALL_START_DATE"]) <= now


def test_this_month_and_future_plans_have_data(data):
    now = _moment(data["portal.json"]["now"])
    deals = data["crm.deal.list.json"]
    this_month = [d for d in deals if d["DATE_CREATE"][:7] == now.isoformat()[:7]]
    assert len(this_month) >= DEALS / 24
    open_deals = [d for d in deals if d["STAGE_SEMANTIC_ID"] == "P"]
    assert any(d["CLOSEDATE"][:10] > now.date().isoformat() for d in open_deals)
    assert any(d["CLOSEDATE"][:10] < now.date().isoformat() for d in open_deals)  # overdue
    assert min(d["DATE_CREATE"] for d in deals) >= "2025-12-01"


# -- links between records -------------------------------------------------


def test_links_point_to_existing_records(data):
    companies = {int(c["ID"]) for c in data["crm.company.list.json"]}
    contacts = {int(c["ID"]): c for c in data["crm.contact.list.json"]}
    leads = {int(lead["ID"]): lead for lead in data["crm.lead.list.json"]}
    for contact in contacts.values():
        assert contact["COMPANY_ID"] is None or int(contact["COMPANY_ID"]) in companies
    assert any(c["COMPANY_ID"] is None for c in contacts.values())
    from_leads = 0
    for deal in data["crm.deal.list.json"]:
        assert deal["COMPANY_ID"] == "0" or int(deal["COMPANY_ID"]) in companies
        assert deal["CONTACT_ID"] is None or int(deal["CONTACT_ID"]) in contacts
        if deal["LEAD_ID"]:
            from_leads += 1
            lead = leads[int(deal["LEAD_ID"])]
            assert lead["STATUS_ID"] == "CONVERTED"
            assert lead["DATE_CLOSED"] == deal["DATE_CREATE"]
    assert from_leads >= DEALS * 0.1
    used = {int(d["COMPANY_ID"]) for d in data["crm.deal.list.json"]}
    assert len(companies - used) >= len(companies) * 0.1  # clients without deals
    converted = [lead for lead in leads.values() if lead["STATUS_ID"] == "CONVERTED"]
    assert len(converted) == from_leads


def test_currencies_referenced_exist(data):
    currencies = {c["CURRENCY"]: c for c in data["crm.currency.list.json"]}
    assert currencies["RUB"]["BASE"] == "Y" and {"USD", "EUR"} <= set(currencies)
    assert any(c["AMOUNT_CNT"] != "1" for c in currencies.values())
    used = {d["CURRENCY_ID"] for d in data["crm.deal.list.json"]}
    used |= {lead["CURRENCY_ID"] for lead in data["crm.lead.list.json"]}
    assert {"RUB", "USD", "EUR"} <= used <= set(currencies)
    amounts = [d["OPPORTUNITY"] for d in data["crm.deal.list.json"]]
    assert "" in amounts and "0.00" in amounts


def test_calls_and_activities(data):
    existing = {
        "LEAD": {int(r["ID"]) for r in data["crm.lead.list.json"]},
        "CONTACT": {int(r["ID"]) for r in data["crm.contact.list.json"]},
        "COMPANY": {int(r["ID"]) for r in data["crm.company.list.json"]},
    }
    calls = data["voximplant.statistic.get.json"]
    activities = {int(a["ID"]): a for a in data["crm.activity.list.json"]}
    users = {int(u["ID"]) for u in data["user.get.json"]} | {UNKNOWN_USER}
    times = [_moment(c["CALL_START_DATE"]) for c in calls]
    assert times == sorted(times)
    for call in calls:
        assert int(call["PORTAL_USER_ID"]) in users
        assert 0 <= int(call["CALL_DURATION"]) <= 3600
        if call["CRM_ENTITY_TYPE"] is not None:
            assert int(call["CRM_ENTITY_ID"]) in existing[call["CRM_ENTITY_TYPE"]]
        if call["CRM_ACTIVITY_ID"]:
            activity = activities[int(call["CRM_ACTIVITY_ID"])]
            assert activity["TYPE_ID"] == "2" and activity["PROVIDER_ID"] == "VOXIMPLANT_CALL"
            assert activity["START_TIME"] == call["CALL_START_DATE"]
            assert activity["OWNER_ID"] == call["CRM_ENTITY_ID"]
    assert {c["CALL_TYPE"] for c in calls} == {"1", "2", "3", "4", "5"}
    assert {"200", "304", "603", "603-S", "486", "480", "404", "OTHER"} <= {
        c["CALL_FAILED_CODE"] for c in calls
    }
    assert {c["CRM_ENTITY_TYPE"] for c in calls} >= {"LEAD", "CONTACT", "COMPANY"}
    short = sum(1 for c in calls if 0 < int(c["CALL_DURATION"]) <= 30)
    assert short >= len(calls) * 0.1
    assert len(activities) >= len(calls) * 0.4


def test_companies_carry_inns_with_a_few_entered_twice(data):
    from collections import Counter

    from rop.bitrix.contact_keys import inn_key

    companies = {int(c["ID"]): c for c in data["crm.company.list.json"]}
    requisites = data["crm.requisite.list.json"]
    assert [int(r["ID"]) for r in requisites] == list(range(1, len(requisites) + 1))
    owners = [int(r["ENTITY_ID"]) for r in requisites]
    assert len(set(owners)) == len(owners) and set(owners) <= set(companies)
    assert {r["ENTITY_TYPE_ID"] for r in requisites} == {"4"}
    assert all(companies[o]["IS_MY_COMPANY"] == "N" for o in owners)
    assert 0.75 < len(requisites) / len(companies) < 0.95  # some have none yet
    keys = Counter(inn_key(r["RQ_INN"]) for r in requisites)
    twins = sum(n for k, n in keys.items() if k and n > 1)
    assert 0 < twins < 0.05 * len(requisites)  # a believable few
    assert 0 < keys[None] < 0.05 * len(requisites)  # placeholders and typos
    # A twin is written another way than its original, as people retype it.
    spellings = {r["RQ_INN"] for r in requisites if keys[inn_key(r["RQ_INN"])] > 1}
    assert any(" " in s for s in spellings)
    assert {len(k) for k in keys if k} == {10, 12}  # organisations and sole traders
    blank = sum(1 for r in requisites if r["DATE_MODIFY"] == "")
    assert 0 < blank < len(requisites)  # never changed since creation: blank


def test_lead_history_and_statuses(data):
    statuses = {
        s["STATUS_ID"]: s for s in data["crm.status.list.json"] if s["ENTITY_ID"] == "STATUS"
    }
    assert statuses["CONVERTED"]["SEMANTICS"] == "S"
    assert sum(1 for s in statuses.values() if s["SEMANTICS"] == "F") >= 2
    leads = {int(lead["ID"]): lead for lead in data["crm.lead.list.json"]}
    history = data["crm.stagehistory.list.1.json"]
    times = [_moment(r["CREATED_TIME"]) for r in history]
    assert times == sorted(times)
    for owner, rows in _by_owner(history).items():
        lead = leads[owner]
        assert rows[0]["TYPE_ID"] == 1 and rows[0]["CREATED_TIME"] == lead["DATE_CREATE"]
        assert rows[-1]["STATUS_ID"] == lead["STATUS_ID"]
        assert lead["STATUS_SEMANTIC_ID"] == (statuses[lead["STATUS_ID"]]["SEMANTICS"] or "P")
    assert {lead["STATUS_ID"] for lead in leads.values()} >= {"NEW", "CONVERTED", "JUNK", "1"}
    sources = {s["STATUS_ID"] for s in data["crm.status.list.json"] if s["ENTITY_ID"] == "SOURCE"}
    assert {lead["SOURCE_ID"] for lead in leads.values()} <= sources


def test_titles_carry_the_awkward_characters(data):
    titles = [d["TITLE"] for d in data["crm.deal.list.json"]]
    assert titles.count(SCRIPT_TITLE) == 1
    everything = " ".join(titles + [c["TITLE"] for c in data["crm.company.list.json"]])
    for char in ("«", '"', "<", "&", "🚀"):
        assert char in everything, char
    assert any("\u0400" <= ch <= "\u04ff" for ch in titles[0])


# -- other arguments -------------------------------------------------------


def test_now_and_months_shape_the_window(tmp_path):
    now = datetime(2026, 3, 10, 9, 0, tzinfo=timezone(timedelta(hours=5)))  # 07:00 Moscow
    generate(tmp_path, seed=3, deals=300, months=2, now=now)
    assert _read(tmp_path, "portal.json")["now"] == "2026-03-10T07:00:00+03:00"
    deals = _read(tmp_path, "crm.deal.list.json")
    created = [d["DATE_CREATE"] for d in deals]
    assert min(created) >= "2026-02-01" and max(created) <= "2026-03-10T07:00:00+03:00"
    history = _read(tmp_path, "crm.stagehistory.list.2.json")
    assert max(_moment(r["CREATED_TIME"]) for r in history) <= now


def test_tiny_portal_still_works(tmp_path):
    generate(tmp_path, deals=1, months=1)
    assert len(_read(tmp_path, "crm.deal.list.json")) == 1
    assert _read(tmp_path, "crm.deal.list.json")[0]["TITLE"] == SCRIPT_TITLE


def test_window_opening_before_office_hours(tmp_path):
    # The first of the month at 08:00: no working time has passed in a 1-month window.
    generate(tmp_path, deals=50, months=1, now=datetime(2026, 12, 1, 8, 0))
    deals = _read(tmp_path, "crm.deal.list.json")
    assert len(deals) == 50
    assert all(d["DATE_CREATE"] <= "2026-12-01T08:00:00+03:00" for d in deals)
    assert all(d["DATE_CREATE"] >= "2026-12-01" for d in deals)


@pytest.mark.parametrize("kwargs", [{"deals": 0}, {"deals": -5}, {"months": 0}])
def test_bad_arguments_are_refused_before_writing(tmp_path, kwargs):
    with pytest.raises(ValueError, match="deals|months"):
        generate(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


# -- the rest of the product reads it ---------------------------------------


def test_snapshot_loads_into_the_store_with_matching_counts(portal, data, tmp_path):
    with open_store(tmp_path / "s.duckdb") as store:
        key = load_snapshot(store, portal)
        assert key == "demo-rop.bitrix24.ru"
        tables = {
            "deals": "crm.deal.list.json",
            "leads": "crm.lead.list.json",
            "companies": "crm.company.list.json",
            "contacts": "crm.contact.list.json",
            "deal_stage_history": "crm.stagehistory.list.2.json",
            "lead_status_history": "crm.stagehistory.list.1.json",
            "calls": "voximplant.statistic.get.json",
            "activities": "crm.activity.list.json",
            "users": "user.get.json",
            "departments": "department.get.json",
            "pipelines": "crm.category.list.json",
            "statuses": "crm.status.list.json",
            "currencies": "crm.currency.list.json",
        }
        for table, name in tables.items():
            count = store.scalar(f"SELECT count(*) FROM {table} WHERE portal = ?", [key])
            assert count == len(data[name]), table
        assert store.scalar("SELECT count(*) FROM deals WHERE title = ?", [SCRIPT_TITLE]) == 1
        won = store.scalar("SELECT count(*) FROM deals WHERE stage_semantic = 'S'")
        assert won == sum(1 for d in data["crm.deal.list.json"] if d["STAGE_SEMANTIC_ID"] == "S")


def test_cli_writes_a_portal(tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        cli, ["demo-portal", "--out", str(out), "--seed", "1", "--deals", "500"]
    )
    assert result.exit_code == 0, result.output
    assert len(_read(out, "crm.deal.list.json")) == 500
    assert str(out) in result.output


def test_cli_refuses_a_bad_count(tmp_path):
    result = CliRunner().invoke(
        cli, ["demo-portal", "--out", str(tmp_path / "bad"), "--deals", "0"]
    )
    assert result.exit_code == 2
    assert "deals" in result.output
    assert "Traceback" not in result.output


def test_cli_refuses_an_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(cli, ["demo-portal", "--out", str(blocker / "sub"), "--deals", "5"])
    assert result.exit_code == 2
    assert "cannot write the demo portal" in result.output
    assert blocker.read_text() == "not a folder"
