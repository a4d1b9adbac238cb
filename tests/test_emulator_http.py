"""The emulator over real HTTP: reply shapes, errors, limits, visibility, faults, changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rop.emulator import EmulatorConfig, create_app, serve_in_thread
from tests.emulator_portal import TOKEN, owned_by, write_portal

DOCS = Path(__file__).parent / "fixtures" / "emulator_docs"
NO_LIMITS = EmulatorConfig(rate_limit=False, test_api=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_portal(tmp_path_factory.mktemp("portal"))


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[tuple[str, Any]]:
    app = create_app(folder, NO_LIMITS)
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def hook(server: tuple[str, Any]) -> str:
    return f"{server[0]}/rest/1/{TOKEN}/"


# Keys the cloud adds to the docs' `time` examples (BITRIX24_API.md §1).
TIME_EXTRAS = {"operating", "operating_reset_at"}


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def assert_same_shape(ours: Any, theirs: Any, path: str = "") -> None:
    """Same keys and JSON types, recursively; the first list element stands for all."""
    if theirs is None or ours is None:
        return  # null in one example, a value in another: both are allowed
    assert kind_of(ours) == kind_of(theirs), f"{path}: {kind_of(ours)} != {kind_of(theirs)}"
    if isinstance(theirs, dict):
        assert set(theirs) <= set(ours), f"{path}: missing {set(theirs) - set(ours)}"
        envelope = path in ("", ".result") or path.endswith(".time") or "result_time" in path
        if envelope:  # records may carry more fields than an example; envelopes may not
            extra = set(ours) - set(theirs)
            assert extra <= TIME_EXTRAS | {"next"}, f"{path}: unexpected {extra}"
        for key, value in theirs.items():
            assert_same_shape(ours[key], value, f"{path}.{key}")
    elif isinstance(theirs, list):
        assert (ours == []) == (theirs == []), f"{path}: empty vs non-empty"
        if ours and theirs:
            assert_same_shape(ours[0], theirs[0], f"{path}[0]")


def doc(name: str) -> Any:
    return json.loads((DOCS / name).read_text(encoding="utf-8"))


# -- reply shapes replayed from the docs ---------------------------------------------


def test_deal_list_shape_matches_docs(hook: str) -> None:
    example = doc("crm.deal.list.json")
    fields = list(example["result"][0])
    reply = httpx.post(
        hook + "crm.deal.list",
        json={"select": fields, "filter": {"<=ID": 6}, "order": {"ID": "ASC"}},
    )
    assert reply.status_code == 200
    got = reply.json()
    assert_same_shape(got, example)
    assert got["total"] == 6 and "next" not in got
    assert {k for k in got["time"]} == set(example["time"]) | TIME_EXTRAS


def test_deal_list_error_shape_matches_docs(hook: str) -> None:
    reply = httpx.post(hook + "crm.deal.list", json={"filter": "not an array"})
    assert reply.status_code == 400
    assert reply.json() == doc("crm.deal.list.error.json")


def test_stagehistory_shape_matches_docs(hook: str) -> None:
    example = doc("crm.stagehistory.list.json")
    got = httpx.post(
        hook + "crm.stagehistory.list",
        json={"entityTypeId": 2, "order": {"ID": "ASC"}, "filter": {"OWNER_ID": 3}},
    ).json()
    assert_same_shape(got, example)
    assert got["result"]["items"][0]["OWNER_ID"] == 3
    bad = httpx.post(hook + "crm.stagehistory.list", json={"entityTypeId": 999})
    assert bad.status_code == 400 and bad.json()["error"] == "ENTITY_TYPE_NOT_SUPPORTED"
    order = httpx.post(
        hook + "crm.stagehistory.list", json={"entityTypeId": 2, "order": {"ID": "UP"}}
    )
    assert (
        order.status_code == 400 and "allowed sort directions" in order.json()["error_description"]
    )


def test_batch_shape_matches_docs(hook: str) -> None:
    # The docs' own example: the department of the current user, by reference.
    cmd = {
        "get_user": "user.current",
        "get_department": "department.get?ID=$result[get_user][UF_DEPARTMENT][0]",
    }
    got = httpx.post(hook + "batch", json={"halt": 0, "cmd": cmd}).json()
    assert_same_shape(got, doc("batch.json"))
    assert got["result"]["result"]["get_department"][0]["ID"] == "1"
    assert got["result"]["result_total"] == {"get_department": 1}


def test_batch_error_shape_matches_docs(hook: str) -> None:
    cmd = {"get_user": "crm.stagehistory.list?entityTypeId=7", "get_department": "department.get"}
    got = httpx.post(hook + "batch", json={"halt": 1, "cmd": cmd}).json()
    assert_same_shape(got, doc("batch_halt_error.json"))
    assert list(got["result"]["result_error"]) == ["get_user"]


def test_paged_batch_reports_total_and_next(hook: str) -> None:
    got = httpx.post(
        hook + "batch", json={"halt": 0, "cmd": {"p1": "crm.deal.list?select[0]=ID&start=50"}}
    ).json()
    assert got["result"]["result_total"] == {"p1": 120}
    assert got["result"]["result_next"] == {"p1": 100}
    assert got["result"]["result_error"] == []  # empty maps come back as []


def test_voximplant_shape_matches_docs(hook: str) -> None:
    example = doc("voximplant.statistic.get.json")
    got = httpx.get(
        hook + "voximplant.statistic.get",
        params={"FILTER[>CALL_DURATION]": 100, "SORT": "CALL_DURATION", "ORDER": "DESC"},
    ).json()
    assert set(got) == set(example)
    row = got["result"][0]
    assert set(example["result"][0]) <= set(row)
    assert all(kind_of(row[k]) == kind_of(v) for k, v in example["result"][0].items())
    durations = [int(r["CALL_DURATION"]) for r in got["result"]]
    assert durations == sorted(durations, reverse=True) and min(durations) > 100


def test_item_list_shape_and_error_match_docs(hook: str) -> None:
    example = doc("crm.item.list.json")
    fields = list(example["result"]["items"][0])
    got = httpx.post(
        hook + "crm.item.list",
        json={"entityTypeId": 2, "select": fields, "filter": {"<=id": 60}, "order": {"id": "ASC"}},
    ).json()
    assert_same_shape(got, example)
    assert set(got["result"]["items"][0]) == set(fields)  # typed: id and opportunity are numbers
    assert got["total"] == 60 and got["next"] == 50
    bad = httpx.post(hook + "crm.item.list", json={"entityTypeId": 2, "filter": {"FIELD": 1}})
    assert bad.status_code == 400 and bad.json() == doc("crm.item.list.error.json")


def test_users_and_departments_match_docs(hook: str) -> None:
    users = httpx.post(hook + "user.get", json={"UF_DEPARTMENT": 3, "SORT": "ID", "ORDER": "asc"})
    assert_same_shape(users.json(), doc("user.get.json"))
    assert [u["ID"] for u in users.json()["result"]] == ["3", "4", "6"]
    assert_same_shape(httpx.post(hook + "user.current", json={}).json(), doc("user.current.json"))
    deps = httpx.post(hook + "department.get", json={"sort": "NAME", "order": "DESC", "PARENT": 1})
    assert_same_shape(deps.json(), doc("department.get.json"))
    assert [d["NAME"] for d in deps.json()["result"]] == ["Support", "Sales"]


def test_activity_list_shape_matches_docs(tmp_path: Path) -> None:
    example = doc("crm.activity.list.json")
    app = create_app(write_portal(tmp_path / "p", deals=3), NO_LIMITS)
    for i in range(51):
        record = {k: v for k, v in example["result"][0].items() if k != "ID"}
        app.state.portal.add("activity", {**record, "RESPONSIBLE_ID": "1", "OWNER_ID": str(i)})
    with serve_in_thread(app) as base:
        got = httpx.post(
            f"{base}/rest/1/{TOKEN}/crm.activity.list",
            json={"select": list(example["result"][0]), "filter": {"TYPE_ID": 2}},
        ).json()
    assert_same_shape(got, example)
    assert got["total"] == 51 and got["next"] == 50


def test_category_list_matches_docs(hook: str) -> None:
    got = httpx.post(hook + "crm.category.list", json={"entityTypeId": 2}).json()
    assert_same_shape(got, doc("crm.category.list.json"))
    assert [c["id"] for c in got["result"]["categories"]] == [0, 1] and got["total"] == 2
    leads = httpx.post(hook + "crm.category.list", json={"entityTypeId": 1})
    assert leads.status_code == 400 and leads.json()["error"] == "ENTITY_TYPE_NOT_SUPPORTED"
    smart = httpx.post(hook + "crm.category.list", json={"entityTypeId": 1234})
    assert smart.json() == {"error": "NOT_FOUND", "error_description": "Smart process not found"}
    companies = httpx.post(hook + "crm.category.list", json={"entityTypeId": 4}).json()
    assert companies["result"] == {"categories": []}


def test_webhook_scopes_match_docs(tmp_path: Path) -> None:
    # A webhook created with only the CRM permission (portal.json "scopes").
    hooks = [{"user_id": 1, "token": "crm-only", "scopes": ["crm"]}]
    folder = write_portal(tmp_path / "p", deals=3, webhooks=hooks)
    with serve_in_thread(create_app(folder, NO_LIMITS)) as base:
        hook = f"{base}/rest/1/crm-only/"
        assert httpx.get(hook + "crm.deal.list").status_code == 200
        single = httpx.get(hook + "user.current")  # system-errors.md: 401
        assert single.status_code == 401 and single.json()["error"] == "insufficient_scope"
        cmd = {"get_user": "user.current", "get_department": "department.get?ID=1"}
        batch = httpx.post(hook + "batch", json={"halt": 0, "cmd": cmd})
        example = doc("batch_scope_error.json")
        assert batch.status_code == 200
        assert_same_shape(batch.json(), example)
        assert batch.json()["result"]["result_error"] == example["result"]["result_error"]
        # The portal's main webhook has no "scopes": it may call everything.
        assert httpx.get(f"{base}/rest/1/{TOKEN}/user.current").status_code == 200


def test_call_statistics_denied_matches_docs(tmp_path: Path) -> None:
    folder = write_portal(tmp_path / "p", deals=3, call_statistics_denied=[3])
    with serve_in_thread(create_app(folder, NO_LIMITS)) as base:
        denied = httpx.get(f"{base}/rest/3/{TOKEN}/voximplant.statistic.get")
        allowed = httpx.get(f"{base}/rest/1/{TOKEN}/voximplant.statistic.get")
    assert denied.status_code == 403
    assert denied.json() == doc("voximplant.statistic.get.error.json")
    assert allowed.status_code == 200 and allowed.json()["total"] == 20


def test_error_shape_matches_docs(hook: str) -> None:
    got = httpx.get(hook + "crm.no.such.method")
    assert got.status_code == 404
    assert set(got.json()) == set(doc("error.json"))
    assert got.json()["error"] == "ERROR_METHOD_NOT_FOUND"


# -- request forms ------------------------------------------------------------------------


def test_get_form_and_json_agree_and_names_are_case_insensitive(hook: str) -> None:
    # "=" inside a key must be percent-encoded, as PHP splits at the first "=".
    query = "filter[>%3DID]=10&filter[<ID]=20&select[]=ID&order[ID]=DESC"
    by_get = httpx.get(hook + "CRM.Deal.List.json?" + query).json()["result"]
    by_form = httpx.post(
        hook + "crm.deal.list",
        content=query.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    ).json()["result"]
    by_json = httpx.post(
        hook + "crm.deal.list",
        json={"filter": {">=ID": 10, "<ID": 20}, "select": ["ID"], "order": {"ID": "DESC"}},
    ).json()["result"]
    by_multipart = httpx.post(
        hook + "crm.deal.list",
        files={"placeholder": ("", b"")},  # forces multipart; ignored as a file
        data={"filter[>=ID]": "10", "filter[<ID]": "20", "select[]": "ID", "order[ID]": "DESC"},
    ).json()["result"]
    assert by_get == by_form == by_json == by_multipart
    assert [r["ID"] for r in by_json] == [str(i) for i in range(19, 9, -1)]


def test_paging_total_next_and_start_minus_one(hook: str) -> None:
    first = httpx.get(hook + "crm.deal.list?select[]=ID").json()
    assert (first["total"], first["next"], len(first["result"])) == (120, 50, 50)
    last = httpx.get(hook + "crm.deal.list?select[]=ID&start=100").json()
    assert len(last["result"]) == 20 and "next" not in last
    fast = httpx.get(hook + "crm.deal.list?select[]=ID&start=-1&filter[>ID]=110").json()
    assert fast["total"] == 0 and "next" not in fast
    assert [r["ID"] for r in fast["result"]] == [str(i) for i in range(111, 121)]


def test_select_star_uf_and_multifields(hook: str) -> None:
    default = httpx.get(hook + "crm.deal.list?filter[ID]=1").json()["result"][0]
    assert "UF_CRM_SOURCE_NOTE" in default and "PHONE" not in default
    star = httpx.get(hook + "crm.deal.list?filter[ID]=1&select[]=*").json()["result"][0]
    assert "UF_CRM_SOURCE_NOTE" not in star and "TITLE" in star
    named = httpx.get(hook + "crm.deal.list?filter[ID]=1&select[]=ID&select[]=PHONE").json()
    assert named["result"][0]["PHONE"][0]["VALUE"] == "+7000"


def test_filter_prefixes(hook: str) -> None:
    def ids(flt: dict[str, Any]) -> list[int]:
        reply = httpx.post(hook + "crm.deal.list", json={"filter": flt, "select": ["ID"]})
        assert reply.status_code == 200, reply.text
        return sorted(int(r["ID"]) for r in reply.json()["result"])

    assert ids({"@ID": [3, 5, 999]}) == [3, 5]
    assert ids({"><ID": [10, 12]}) == [10, 11, 12]
    assert ids({"%TITLE": "#11", "<ID": 115}) == [11, 110, 111, 112, 113, 114]
    assert ids({"STAGE_ID": "WON", "<=ID": 20}) == [2, 7, 12, 17]
    assert ids({"!STAGE_ID": "NEW", "<=ID": 5}) == [1, 2, 3, 4]
    assert ids({"!@STAGE_ID": ["NEW", "WON", "LOSE"], "<=ID": 10}) == [1, 4, 6, 9]
    assert ids({">=DATE_CREATE": "2026-09-01", "<ID": 30}) == [8, 17, 26]
    assert ids({">OPPORTUNITY": 11500}) == [116, 117, 118, 119, 120]


def test_item_list_is_camel_case_and_typed(hook: str) -> None:
    got = httpx.post(
        hook + "crm.item.list",
        json={
            "entityTypeId": 2,
            "select": ["id", "stageId", "opportunity", "assignedById"],
            "filter": {">id": 118},
            "order": {"id": "ASC"},
        },
    ).json()
    assert got["total"] == 2
    assert got["result"]["items"][0] == {
        "id": 119,
        "stageId": "C1:NEW",
        "opportunity": 11900.0,
        "assignedById": 5,
    }


def test_item_list_unknown_filter_field_is_invalid_arg(hook: str) -> None:
    got = httpx.post(hook + "crm.item.list", json={"entityTypeId": 2, "filter": {"nope": 1}})
    assert got.status_code == 400 and got.json()["error"] == "INVALID_ARG_VALUE"
    assert (
        got.json()["error_description"] == "Invalid filter: field 'nope' is not allowed in filter"
    )


def test_entity_types_the_docs_name(hook: str) -> None:
    # crm-item-list.md: an unknown entityTypeId is 400 NOT_FOUND "Smart process not found".
    smart = httpx.post(hook + "crm.item.list", json={"entityTypeId": 1234})
    assert smart.status_code == 400
    assert smart.json() == {"error": "NOT_FOUND", "error_description": "Smart process not found"}
    # Invoices (31) exist on every portal: an empty list, not an error.
    invoices = httpx.post(hook + "crm.item.list", json={"entityTypeId": 31}).json()
    assert invoices["result"] == {"items": []} and invoices["total"] == 0
    # crm-stage-history-list.md serves 1, 2, 5 and 31.
    for type_id in (5, 31):
        old = httpx.post(hook + "crm.stagehistory.list", json={"entityTypeId": type_id}).json()
        assert old["result"] == {"items": []} and old["total"] == 0


def test_directories_and_users(hook: str) -> None:
    cats = httpx.get(hook + "crm.category.list?entityTypeId=2").json()["result"]["categories"]
    assert [c["id"] for c in cats] == [0, 1]
    stages = httpx.get(hook + "crm.status.list?filter[ENTITY_ID]=DEAL_STAGE").json()["result"]
    assert [s["STATUS_ID"] for s in stages] == ["NEW", "WON"]
    items = httpx.get(hook + "crm.status.entity.items?entityId=DEAL_STAGE").json()["result"]
    assert items[1] == {"NAME": "Won", "SORT": "60", "STATUS_ID": "WON"}
    assert httpx.get(hook + "crm.currency.base.get").json()["result"] == "RUB"
    assert len(httpx.get(hook + "crm.currency.list").json()["result"]) == 2
    active = httpx.get(hook + "user.get?FILTER[ACTIVE]=true&sort=ID&order=DESC").json()
    assert [u["ID"] for u in active["result"]] == ["5", "4", "3", "2", "1"]
    everyone = httpx.get(hook + "user.get").json()
    assert everyone["total"] == 6  # fired users included unless ACTIVE is given
    team = httpx.get(hook + "user.get?UF_DEPARTMENT=3").json()["result"]
    assert sorted(u["ID"] for u in team) == ["3", "4", "6"]
    deps = httpx.get(hook + "department.get?PARENT=1").json()["result"]
    assert [d["ID"] for d in deps] == ["2", "4"]
    assert httpx.get(hook + "user.admin").json()["result"] is True
    assert httpx.get(hook + "profile").json()["result"]["ADMIN"] is True
    assert httpx.get(hook + "app.info").json()["result"]["LICENSE_FAMILY"] == "project"


# -- batch ------------------------------------------------------------------------------


def test_batch_chains_keyset_pages_with_references(hook: str) -> None:
    cmd = {"p0": "crm.deal.list?select[0]=ID&order[ID]=ASC&start=-1"}
    for i in range(1, 4):
        cmd[f"p{i}"] = (
            "crm.deal.list?select[0]=ID&order%5BID%5D=ASC&start=-1"
            f"&filter%5B%3EID%5D=%24result%5Bp{i - 1}%5D%5B49%5D%5BID%5D"
        )
    got = httpx.post(hook + "batch", json={"halt": 0, "cmd": cmd}).json()["result"]
    pages = [[int(r["ID"]) for r in got["result"][k]] for k in ("p0", "p1", "p2", "p3")]
    assert pages[0] == list(range(1, 51)) and pages[1] == list(range(51, 101))
    assert pages[2] == list(range(101, 121)) and pages[3] == []
    assert set(got["result_time"]) == {"p0", "p1", "p2", "p3"}


def test_batch_errors_and_halt(hook: str) -> None:
    cmd = {
        "a": "crm.item.list?entityTypeId=2&filter[NOPE]=1",
        "b": "crm.deal.get?id=1",
        "c": "batch?cmd[x]=y",
    }
    free = httpx.post(hook + "batch", json={"halt": 0, "cmd": cmd}).json()["result"]
    assert free["result_error"]["a"]["error"] == "INVALID_ARG_VALUE"
    assert free["result_error"]["c"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    assert free["result"]["b"]["ID"] == "1"
    halted = httpx.post(hook + "batch", json={"halt": 1, "cmd": cmd}).json()["result"]
    assert halted["result"] == [] and list(halted["result_error"]) == ["a"]


# -- malformed requests: Bitrix24's error, never a traceback ----------------------------------


@pytest.mark.parametrize(
    ("request_args", "status", "code"),
    [
        (
            {
                "method": "POST",
                "path": "crm.deal.list",
                "content": b"{not json",
                "headers": {"content-type": "application/json"},
            },
            400,
            "INVALID_REQUEST",
        ),
        (
            {"method": "GET", "path": "crm.item.list?entityTypeId=2&filter[missingField]=1"},
            400,
            "INVALID_ARG_VALUE",
        ),
        (
            {"method": "GET", "path": "crm.item.list?entityTypeId=2&order[missingField]=ASC"},
            400,
            "INVALID_ARG_VALUE",
        ),
        (
            {"method": "GET", "path": "crm.stagehistory.list?entityTypeId=2&filter[NOPE]=1"},
            400,
            "INVALID_ARG_VALUE",
        ),
        ({"method": "GET", "path": "crm.deal.get?id=99999"}, 400, ""),
        ({"method": "GET", "path": "crm.deal.list?filter=notadict"}, 400, ""),
        ({"method": "GET", "path": "crm.item.list?entityTypeId=abc"}, 400, "INVALID_ARG_VALUE"),
        ({"method": "GET", "path": "crm.deal.list?filter[><ID]=5"}, 400, "INVALID_ARG_VALUE"),
    ],
)
def test_malformed_requests_get_bitrix_errors(
    hook: str, request_args: dict[str, Any], status: int, code: str
) -> None:
    args = dict(request_args)
    url = hook + args.pop("path")
    reply = httpx.request(args.pop("method"), url, **args)
    assert reply.status_code == status
    body = reply.json()
    assert set(body) == {"error", "error_description"} and body["error"] == code
    assert "Traceback" not in reply.text


def test_batch_beyond_fifty_commands_fails_each_extra_command(hook: str) -> None:
    # error-codes.md: ERROR_BATCH_LENGTH_EXCEEDED "for every subquery beyond 50".
    cmd = {f"c{i}": "crm.deal.list?select[]=ID&start=-1" for i in range(52)}
    reply = httpx.post(hook + "batch", json={"halt": 0, "cmd": cmd})
    assert reply.status_code == 200
    body = reply.json()["result"]
    assert len(body["result"]) == 50 and "c49" in body["result"]
    assert sorted(body["result_error"]) == ["c50", "c51"]
    assert body["result_error"]["c50"] == {
        "error": "ERROR_BATCH_LENGTH_EXCEEDED",
        "error_description": "Max batch length exceeded",
    }


def test_legacy_lists_drop_unknown_filter_and_order_fields(hook: str) -> None:
    # crm-deal-list.md and crm-activity-list.md list no INVALID_ARG_VALUE (unlike
    # crm.item.list and crm.stagehistory.list): an unknown key filters nothing.
    plain = httpx.get(hook + "crm.deal.list").json()
    odd = httpx.get(hook + "crm.deal.list?filter[NOPE]=1&order[NOPE]=DESC").json()
    assert odd["total"] == plain["total"] > 0
    assert [r["ID"] for r in odd["result"]] == [r["ID"] for r in plain["result"]]


def test_activity_list_defaults_to_start_time_order(tmp_path: Path) -> None:
    # crm-activity-list.md: "By default, the results are sorted in ascending
    # order by the value of the START_TIME field".
    app = create_app(write_portal(tmp_path / "p", deals=3), NO_LIMITS)
    starts = ["2026-01-03T10:00:00+03:00", "2026-01-01T10:00:00+03:00", "2026-01-02T08:00:00+01:00"]
    for start in starts:
        app.state.portal.add(
            "activity",
            {
                "TYPE_ID": "2",
                "OWNER_TYPE_ID": "2",
                "OWNER_ID": "1",
                "RESPONSIBLE_ID": "1",
                "START_TIME": start,
            },
        )
    with serve_in_thread(app) as base:
        hook = f"{base}/rest/1/{TOKEN}/"
        plain = httpx.get(hook + "crm.activity.list").json()["result"]
        assert [r["START_TIME"] for r in plain] == [starts[1], starts[2], starts[0]]
        by_id = httpx.get(hook + "crm.activity.list?order[ID]=ASC").json()["result"]
        assert [r["START_TIME"] for r in by_id] == starts


def test_bad_token_and_unknown_user(server: tuple[str, Any]) -> None:
    base = server[0]
    # error-codes.md: no webhook with that user ID and code -> 401 INVALID_CREDENTIALS;
    # no authorisation data at all -> 401 NO_AUTH_FOUND.
    for path, code in (
        ("/rest/1/wrong/crm.deal.list", "INVALID_CREDENTIALS"),
        (f"/rest/99/{TOKEN}/crm.deal.list", "INVALID_CREDENTIALS"),
        ("/rest/crm.deal.list", "NO_AUTH_FOUND"),
        (f"/rest/x/{TOKEN}/crm.deal.list", "INVALID_CREDENTIALS"),
    ):
        reply = httpx.get(base + path)
        assert reply.status_code == 401, path
        assert reply.json() == {
            "error": code,
            "error_description": (
                "Invalid request credentials"
                if code == "INVALID_CREDENTIALS"
                else "Wrong authorization data"
            ),
        }


# -- visibility ---------------------------------------------------------------------------------


def _deal_ids(base: str, user_id: int) -> set[int]:
    reply = httpx.get(
        f"{base}/rest/{user_id}/{TOKEN}/crm.deal.list?select[]=ID&start=-1&order[ID]=ASC"
    )
    ids: set[int] = set()
    last = 0
    while True:
        reply = httpx.get(
            f"{base}/rest/{user_id}/{TOKEN}/crm.deal.list",
            params={"select[]": "ID", "start": -1, "order[ID]": "ASC", "filter[>ID]": last},
        )
        rows = reply.json()["result"]
        ids.update(int(r["ID"]) for r in rows)
        if len(rows) < 50:
            return ids
        last = int(rows[-1]["ID"])


def test_visibility_per_webhook_user(server: tuple[str, Any]) -> None:
    base = server[0]
    assert _deal_ids(base, 1) == set(range(1, 121))  # admin
    assert _deal_ids(base, 2) == owned_by({2, 3, 4})  # head of Sales > Team A
    assert _deal_ids(base, 3) == owned_by({3})  # plain user: own deals
    assert _deal_ids(base, 5) == owned_by({5})  # head of Support: nobody else there
    total = httpx.get(f"{base}/rest/3/{TOKEN}/crm.deal.list").json()["total"]
    assert total == len(owned_by({3}))
    hidden = min(owned_by({4}))
    denied = httpx.get(f"{base}/rest/3/{TOKEN}/crm.deal.get?id={hidden}")
    assert denied.status_code == 400 and denied.json()["error_description"] == "Access denied."
    history = httpx.get(f"{base}/rest/3/{TOKEN}/crm.stagehistory.list?entityTypeId=2").json()
    assert {h["OWNER_ID"] for h in history["result"]["items"]} <= owned_by({3})
    calls = httpx.get(f"{base}/rest/3/{TOKEN}/voximplant.statistic.get").json()["result"]
    assert calls and {c["PORTAL_USER_ID"] for c in calls} == {"3"}
    assert httpx.get(f"{base}/rest/3/{TOKEN}/user.admin").json()["result"] is False
    assert httpx.get(f"{base}/rest/3/{TOKEN}/user.current").json()["result"]["ID"] == "3"


# -- changes while serving -----------------------------------------------------------------------


def test_changes_in_process_and_over_the_test_api(tmp_path: Path) -> None:
    app = create_app(write_portal(tmp_path, deals=10), NO_LIMITS)
    portal = app.state.portal
    with serve_in_thread(app) as base:
        hook = f"{base}/rest/1/{TOKEN}/"
        new_id = portal.add("deal", {"TITLE": "Fresh", "ASSIGNED_BY_ID": "3"})
        assert new_id == 11
        before = httpx.get(hook + "crm.deal.get?id=3").json()["result"]["DATE_MODIFY"]
        portal.update("deal", 3, {"TITLE": "Renamed"})
        after = httpx.get(hook + "crm.deal.get?id=3").json()["result"]
        assert after["TITLE"] == "Renamed" and after["DATE_MODIFY"] > before
        modified = httpx.get(
            hook + "crm.deal.list",
            params={"filter[>=DATE_MODIFY]": after["DATE_MODIFY"], "select[]": "ID"},
        ).json()["result"]
        assert {r["ID"] for r in modified} == {"3", "11"}
        portal.delete("deal", 4)
        assert httpx.get(hook + "crm.deal.get?id=4").status_code == 400
        history = httpx.get(hook + "crm.stagehistory.list?entityTypeId=2&filter[OWNER_ID]=4").json()
        assert history["result"]["items"] == []  # history goes with the deal

        added = httpx.post(f"{base}/_emulator/deal/add", json={"fields": {"TITLE": "Via API"}})
        assert added.json() == {"result": 12}
        httpx.post(f"{base}/_emulator/deal/update", json={"id": 12, "fields": {"STAGE_ID": "WON"}})
        assert httpx.get(hook + "crm.deal.get?id=12").json()["result"]["STAGE_ID"] == "WON"
        httpx.post(f"{base}/_emulator/deal/delete", json={"id": 12})
        assert httpx.get(hook + "crm.deal.list").json()["total"] == 10
        bad = httpx.post(f"{base}/_emulator/nonsense/add", json={})
        assert bad.status_code == 400 and "unknown kind" in bad.json()["error_description"]
        missing = httpx.post(f"{base}/_emulator/deal/delete", json={"id": 999})
        assert missing.status_code == 400


def test_test_api_is_off_by_default(tmp_path: Path) -> None:
    app = create_app(write_portal(tmp_path, deals=3), EmulatorConfig(rate_limit=False))
    with serve_in_thread(app) as base:
        assert httpx.post(f"{base}/_emulator/deal/add", json={}).status_code == 404


# -- cards ---------------------------------------------------------------------------------------


def test_cards_show_escaped_fields(server: tuple[str, Any]) -> None:
    base = server[0]
    page = httpx.get(f"{base}/crm/company/details/2/")
    assert page.status_code == 200
    assert "<h1>&lt;b&gt;Company&lt;/b&gt; 2 &amp; Co</h1>" in page.text
    assert '<span id="card-id">2</span>' in page.text and "<b>Company" not in page.text
    assert "Deal #7" in httpx.get(f"{base}/crm/deal/details/7/").text
    assert "User3 Last3" in httpx.get(f"{base}/company/personal/user/3/").text
    assert httpx.get(f"{base}/crm/deal/details/9999/").status_code == 404


FUZZ_METHODS = [
    "crm.deal.list",
    "crm.item.list",
    "crm.stagehistory.list",
    "crm.status.list",
    "crm.status.entity.items",
    "voximplant.statistic.get",
    "user.get",
    "department.get",
    "crm.category.list",
    "crm.deal.get",
    "crm.item.get",
    "batch",
    "crm.activity.list",
]
FUZZ_QUERIES = [
    "filter[]=x",
    "filter=abc",
    "select=123",
    "select[a][b]=c",
    "order=abc",
    "order[ID][x]=1",
    "start=abc",
    "start=99999999999999999999",
    "cmd=str",
    "cmd[a]=",
    "cmd[a][b]=c",
    "entityTypeId[]=1",
    "entityTypeId=2&filter[>id][]=1",
    "filter[><ID][]=1",
    "filter[@ID]=5",
    "filter[LOGIC]=OR&filter[0][ID]=1&filter[1][ID]=2",
    "FILTER=1",
    "sort=NOPE",
    "id=abc",
    "id[]=1",
    "filter[>DATE_CREATE]=notadate",
    "filter[0]=1",
    "filter[>=ID]=1e400",
    "filter[ID]=nan",
    "%ZZ=1",
    "a[[b]]=1",
]


def test_odd_parameters_never_break_the_server(hook: str) -> None:
    with httpx.Client() as client:
        for method in FUZZ_METHODS:
            for query in FUZZ_QUERIES:
                reply = client.get(f"{hook}{method}?{query}")
                assert reply.status_code < 500, (method, query, reply.text)
                body = reply.json()
                assert "result" in body or set(body) == {"error", "error_description"}
