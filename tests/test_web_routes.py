"""The web report's routes over a real DuckDB file loaded from the tiny portal."""

from __future__ import annotations

import html
import json
import re
import threading
import warnings
from urllib.parse import parse_qs, urlsplit

import pytest

from rop.config import Settings
from rop.store.holder import server_file
from rop.web import create_app
from rop.web.app import serve_in_thread
from tests.test_web_support import PERIOD, XSS, tiny_store
from tests.web_client import page_client

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = tiny_store(tmp_path_factory.mktemp("web"))
    yield s
    s.close()


def client(store, **settings) -> TestClient:
    app = create_app(Settings(db=store.path, **settings), store)
    return page_client(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def web(store):
    return client(store)


def drill_links(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'class="drill" href="([^"]+)"', page)]


# -- the report and its JSON twin ---------------------------------------------


def test_report_json_twin_matches_the_page(web):
    data = web.get("/report.json", params=PERIOD).json()
    total = data["report"]["total"]["figures"]
    assert total["deals_new"] == 7
    assert total["deals_won_amount"] == 340000.0
    page = web.get("/report", params=PERIOD)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # The total row shows the same figures, formatted the Russian way.
    tfoot = page.text.split("<tfoot>")[1]
    assert "340\u00a0000\u00a0₽" in tfoot
    assert "57\u00a0%" in tfoot  # deals_win_rate 4 / 7
    names = [r["name"] for r in data["report"]["rows"]]
    for name in names:
        assert html.escape(name) in page.text


def test_rows_grouped_by_department_with_subtotals(web):
    page = web.get("/report", params=PERIOD).text.split('id="report-table"')[1]
    assert page.count('class="subtotal"') == 2
    first = page.index("Отдел продаж 1")
    assert (
        first
        < page.index("Вера Петрова")
        < page.index("Отдел продаж 2")
        < page.index("Дина Орлова")
    )
    assert "уволен" in page  # Жанна is dismissed but owns a deal in the period


def test_every_column_header_has_its_definition(web):
    data = web.get("/report.json", params=PERIOD).json()
    page = web.get("/report", params=PERIOD).text
    for col in data["report"]["columns"]:
        header = re.search(
            rf'<th scope="col" data-key="{re.escape(col["key"])}"[^>]*>(.*?)</th>', page, re.S
        )
        assert header, col["key"]
        assert html.escape(col["description_ru"]) in header.group(1)


def test_deltas_show_the_previous_value(web):
    page = web.get("/report", params=PERIOD).text
    # Вера won 100 000 ₽ in October and 70 000 ₽ in September.
    assert "Прошлый период: 70\u00a0000\u00a0₽" in page
    assert "+30\u00a0000\u00a0₽" in page
    no_compare = web.get("/report", params={**PERIOD, "compare": "0"}).text
    assert "Прошлый период" not in no_compare


def test_each_number_drills_to_exactly_its_records(web):
    page = web.get("/report", params=PERIOD).text
    data = web.get("/report.json", params=PERIOD).json()
    rows = {r["user_id"]: r["figures"] for r in data["report"]["rows"]}
    kinds = {c["key"]: c["kind"] for c in data["report"]["columns"]}
    checked = 0
    for link in drill_links(page):
        q = parse_qs(urlsplit(link).query)
        fig = q["figure"][0]
        if "user" not in q or kinds[fig] != "count":
            continue
        user = int(q["user"][0])
        got = web.get(link.replace("/drill?", "/drill.json?")).json()
        assert got["total_records"] == rows[user][fig], (fig, user)
        assert len(got["records"]) == rows[user][fig]
        checked += 1
    assert checked >= 10
    # The department subtotal and the grand total drill too.
    total = web.get("/drill.json", params={**PERIOD, "figure": "deals_new"}).json()
    assert total["total_records"] == 7
    dept = web.get("/drill.json", params={**PERIOD, "figure": "deals_new", "dept": "20"}).json()
    assert [r["id"] for r in dept["records"]] == [5, 6]


def test_drill_panel_fragment_and_page(web):
    q = {**PERIOD, "figure": "deals_won", "user": "3"}
    frag = web.get("/drill", params=q, headers={"hx-request": "true"})
    assert frag.status_code == 200
    assert not frag.text.lstrip().startswith("<!doctype")
    assert 'href="https://tiny.bitrix24.ru/crm/deal/details/1/" target="_blank"' in frag.text
    assert "Период с 01.10.2026 по 31.10.2026" in frag.text
    full = web.get("/drill", params=q)
    assert full.text.lstrip().startswith("<!doctype")
    assert 'id="drill-records"' in full.text


def test_drill_sorts_and_pages(web):
    base = {**PERIOD, "figure": "deals_new"}
    asc = web.get("/drill.json", params={**base, "sort": "amount"}).json()
    desc = web.get("/drill.json", params={**base, "sort": "amount", "desc": "1"}).json()
    amounts = [r["amount"] for r in asc["records"]]
    assert amounts == sorted(amounts)
    assert [r["amount"] for r in desc["records"]] == sorted(amounts, reverse=True)
    page2 = web.get("/drill.json", params={**base, "offset": "5"}).json()
    assert page2["total_records"] == 7 and len(page2["records"]) == 2


def test_profile_links_point_at_the_portal(web):
    page = web.get("/report", params=PERIOD).text
    assert (
        'href="https://tiny.bitrix24.ru/company/personal/user/3/" target="_blank" rel="noopener"'
        in page
    )


def test_crm_strings_are_escaped(web):
    q = {**PERIOD, "figure": "deals_lost", "user": "3"}
    frag = web.get("/drill", params=q, headers={"hx-request": "true"}).text
    assert html.escape(XSS) in frag
    assert XSS not in frag
    data = web.get("/drill.json", params=q).json()
    assert data["records"][0]["title"] == XSS  # data stays data in JSON


def test_english_switch(web):
    ru = web.get("/report", params=PERIOD).text
    switch = re.search(r'id="lang-switch" href="([^"]+)"', ru).group(1)
    assert "lang=en" in switch and "from=2026-10-01" in html.unescape(switch)
    en = web.get("/report", params={**PERIOD, "lang": "en"}).text
    assert "Total" in en and "Won amount" in en
    assert "340,000 ₽" in en
    assert '<html lang="en">' in en


# -- bad input: one clear message, never a 500 -----------------------------------


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"period": "custom", "from": "2026-02-30", "to": "2026-03-01"}, "2026-02-30"),
        ({**PERIOD, "pipeline": "77"}, "77"),
        ({**PERIOD, "pipeline": "abc"}, "abc"),
        ({"period": "custom", "from": "0026-01-01", "to": "2026-01-01"}, "3700"),
        ({"period": "never"}, "never"),
        ({**PERIOD, "by": "planet"}, "planet"),
        ({**PERIOD, "key_stage": "NOPE"}, "NOPE"),
        ({**PERIOD, "min_call": "-5"}, "-5"),
        ({"period": "custom", "from": "2026-10-31", "to": "2026-10-01"}, "2026-10-01"),
    ],
)
def test_bad_filters_get_400_with_a_message(web, params, words):
    page = web.get("/report", params=params)
    assert page.status_code == 400
    assert html.escape(words) in page.text and 'role="alert"' in page.text
    data = web.get("/report.json", params=params)
    assert data.status_code == 400
    err = data.json()["error"]
    assert words in err["message"] and err["what_to_do"]


def test_bad_drill_input_is_400(web):
    assert web.get("/drill.json", params=PERIOD).status_code == 400  # no figure
    bad = web.get("/drill.json", params={**PERIOD, "figure": "no_such_figure"})
    assert bad.status_code == 400 and "no_such_figure" in bad.json()["error"]["message"]
    assert (
        web.get("/drill.json", params={**PERIOD, "figure": "deals_new", "user": "x"}).status_code
        == 400
    )
    sort = web.get("/drill.json", params={**PERIOD, "figure": "deals_new", "sort": "1;drop"})
    assert sort.status_code == 400


# -- the viewer's scope ------------------------------------------------------------


def test_viewer_sees_only_their_scope(store):
    # Глеб (4) is not a head: he sees himself only.
    data = client(store, viewer=4).get("/report.json", params=PERIOD).json()
    assert [r["user_id"] for r in data["report"]["rows"]] == [4]
    assert data["report"]["total"]["figures"]["deals_new"] == 2


def test_drill_outside_scope_is_403(store):
    web = client(store, viewer=4)
    resp = web.get("/drill", params={**PERIOD, "figure": "deals_new", "user": "3"})
    assert resp.status_code == 403
    assert "3" in resp.text and 'role="alert"' in resp.text
    assert (
        web.get("/drill.json", params={**PERIOD, "figure": "deals_new", "user": "4"}).status_code
        == 200
    )


def test_viewer_url_parameter_only_in_demo_mode(store):
    q = {**PERIOD, "viewer": "4", "figure": "deals_new", "user": "3"}
    assert client(store).get("/drill.json", params=q).status_code == 200
    demo = client(store, demo=True)
    assert demo.get("/drill.json", params=q).status_code == 403
    page = demo.get("/report", params={**PERIOD, "viewer": "2"}).text
    # The head of department 10 sees its people but not department 20, neither
    # in the table nor among the filter bar's choices.
    assert "Вера Петрова" in page and "Дина Орлова" not in page
    assert "Отдел продаж 2" not in page
    # Links on the page keep the viewer, so drilling stays in the same scope.
    assert all("viewer=2" in link for link in drill_links(page))


# -- remembered filter -------------------------------------------------------------


def test_last_filter_is_remembered(store):
    web = client(store)
    web.get("/report", params={**PERIOD, "pipeline": "1"})
    back = web.get("/", follow_redirects=False)
    assert back.status_code == 303
    assert (
        "pipeline=1" in back.headers["location"] and "from=2026-10-01" in back.headers["location"]
    )
    web.cookies.set("rop_last_filter", "garbage{")
    assert web.get("/", follow_redirects=False).headers["location"] == "/report"


# -- charts --------------------------------------------------------------------------


def test_chart_data(web):
    charts = web.get("/report.json", params=PERIOD).json()["charts"]
    general = charts["funnels"][0]
    assert [s["count"] for s in general["steps"]] == [5, 5, 3]
    assert general["steps"][2]["conversion"] == pytest.approx(0.6)
    trend = charts["trend"]
    assert sum(trend["new"]) == 7 and sum(trend["won"]) == 4 and sum(trend["lost"]) == 1
    assert trend["unit"] == "day" and len(trend["labels"]) == 31
    assert charts["bars"]["names"][0] == "Глеб Сидоров"


# -- sync --------------------------------------------------------------------------


def test_sync_api_runs_in_background_with_progress(store):
    gate = threading.Event()
    calls = []

    def fake_sync(cur, url, *, full=False, progress=None):
        calls.append((url, full))
        progress("deals", 5, 10)
        gate.wait(10)
        return {"deals": 10}

    app = create_app(
        Settings(db=store.path, webhook="http://127.0.0.1:1/rest/1/x/"), store, fake_sync
    )
    web = page_client(app)
    started = web.post("/api/sync", json={"full": True, "wait": False})
    assert started.status_code == 202
    status = web.get("/api/sync").json()
    assert status["state"] == "running"
    assert web.post("/api/sync", json={"wait": False}).status_code == 409
    gate.set()
    app.state.sync.wait(10)
    done = web.get("/api/sync").json()
    assert done["state"] == "done" and done["progress"] == {
        "entity": "deals",
        "done": 5,
        "total": 10,
    }
    assert calls == [("http://127.0.0.1:1/rest/1/x/", True)]
    # Without "wait": false the answer comes when the sync is over (rop sync forwards here).
    assert web.post("/api/sync", json={"full": False}).json()["state"] == "done"
    json_body = {"content-type": "application/json"}
    assert web.post("/api/sync", content=b"[1]", headers=json_body).status_code == 400


def test_sync_without_webhook_says_so(web):
    resp = web.post("/api/sync", json={"full": False})
    assert resp.status_code == 409
    assert (
        "webhook" in resp.json()["error"]["message"].lower()
        or "вебхук" in resp.json()["error"]["message"]
    )


def test_failed_sync_is_reported(store):
    def broken(cur, url, *, full=False, progress=None):
        raise RuntimeError("portal said no")

    app = create_app(Settings(db=store.path, webhook="http://127.0.0.1:1/rest/1/x/"), store, broken)
    resp = page_client(app).post("/api/sync", json={})
    assert resp.status_code == 502 and "portal said no" in resp.json()["message"]


# -- the server --------------------------------------------------------------------


def test_server_announces_itself_next_to_the_store(store):
    import httpx

    app = create_app(Settings(db=store.path), store)
    srv = serve_in_thread(app)
    try:
        info = json.loads(server_file(store.path).read_text())
        assert info["url"] == srv.url and isinstance(info["pid"], int)
        assert httpx.get(srv.url + "/report.json", params=PERIOD).status_code == 200
    finally:
        srv.stop()
    assert not server_file(store.path).exists()


def test_empty_store_says_what_to_do(tmp_path):
    from rop.store import open_store

    with open_store(tmp_path / "empty.duckdb") as empty:
        resp = client(empty).get("/report")
        assert resp.status_code == 404
        assert "rop sync" in resp.text


# -- exports ---------------------------------------------------------------------------


def test_report_exports_read_back(web):
    import csv
    import io

    import openpyxl

    resp = web.get("/report.xlsx", params=PERIOD)
    assert resp.status_code == 200 and "attachment" in resp.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(resp.content))
    cells = [c for row in book.worksheets[0].iter_rows(values_only=True) for c in row]
    assert "Вера Петрова" in cells and 340000 in cells
    text = web.get("/report.csv", params=PERIOD).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))  # Russian Excel's separator
    assert any("Дина Орлова" in r for r in rows)


def test_drill_exports_list_every_record(web):
    import csv
    import io

    import openpyxl

    q = {**PERIOD, "figure": "deals_new", "offset": "5"}  # paging does not cut exports
    book = openpyxl.load_workbook(io.BytesIO(web.get("/drill.xlsx", params=q).content))
    sheet = book.worksheets[0]
    head = next(r for r in range(1, 20) if sheet.cell(r, 1).value == "ID")  # under the facts
    assert sheet.max_row == head + 7
    ids = sorted(r[0] for r in sheet.iter_rows(min_row=head + 1, values_only=True))
    assert ids == [1, 2, 3, 4, 5, 6, 7]
    text = web.get("/drill.csv", params=q).content.decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(text), delimiter=";"))) == 1 + 7
    assert XSS in text  # data, unchanged, in the file


# -- the report cache ----------------------------------------------------------------


def test_reports_are_cached_until_the_data_changes(tmp_path, monkeypatch):
    import rop.report.build as engine

    built = []
    real = engine.build_report

    def counting(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "build_report", counting)
    store = tiny_store(tmp_path)
    try:
        web = page_client(create_app(Settings(db=store.path), store))
        first = web.get("/report.json", params=PERIOD).json()
        web.get("/report", params={**PERIOD, "lang": "en"})
        web.get("/report.xlsx", params=PERIOD)
        assert len(built) == 1
        # New data (a load or a sync) changes the data version: the report is rebuilt.
        store.execute("DELETE FROM deals WHERE id = 3")
        store.execute("UPDATE portals SET updated_at = updated_at + INTERVAL 1 SECOND")
        second = web.get("/report.json", params=PERIOD).json()
        assert len(built) == 2
        assert second["report"]["total"]["figures"]["deals_new"] == (
            first["report"]["total"]["figures"]["deals_new"] - 1
        )
        # Without a cache every view computes afresh.
        web = page_client(create_app(Settings(db=store.path), store, cache_size=0))
        web.get("/report.json", params=PERIOD)
        web.get("/report.json", params=PERIOD)
        assert len(built) == 4
    finally:
        store.close()


# -- other filter choices ----------------------------------------------------------


def test_rows_by_department_drill_by_row(web):
    data = web.get("/report.json", params={**PERIOD, "by": "department"}).json()
    rows = {r["key"]: r["figures"]["deals_new"] for r in data["report"]["rows"]}
    page = web.get("/report", params={**PERIOD, "by": "department"}).text
    assert "subtotal" not in page.split('id="report-table"')[1]
    links = [link for link in drill_links(page) if "figure=deals_new&" in link and "row=" in link]
    assert len(links) == len([v for v in rows.values() if v])
    for link in links:
        key = int(parse_qs(urlsplit(link).query)["row"][0])
        got = web.get(link.replace("/drill?", "/drill.json?")).json()
        assert got["total_records"] == rows[key]


def test_rows_by_source_and_pipeline_render(web):
    for by in ("source", "pipeline"):
        resp = web.get("/report", params={**PERIOD, "by": by})
        assert resp.status_code == 200
        assert drill_links(resp.text)


def test_sections_and_key_stages_are_columns(web):
    q = {**PERIOD, "section": ["deals", "calls"], "key_stage": "PREPARATION", "pipeline": "0"}
    data = web.get("/report.json", params=q).json()
    sections = {c["section"] for c in data["report"]["columns"]}
    assert sections == {"deals", "calls"}
    keys = [c["key"] for c in data["report"]["columns"]]
    assert "deal_stage:PREPARATION" in keys
    assert data["report"]["total"]["figures"]["deal_stage:PREPARATION"] == 3
    page = web.get("/report", params=q).text
    assert '<th scope="col" data-key="deal_stage:PREPARATION"' in page
    # The stage picker offers the chosen pipeline's stages only.
    picker = page.split('id="pick-stages"')[1].split("</details>")[0]
    assert 'value="PREPARATION" checked' in picker and "C1:NEW" not in picker
    assert "Лиды" not in page.split('id="report-table"')[1]


def test_call_bounds_filter_calls(web):
    data = web.get("/report.json", params={**PERIOD, "min_call": "100"}).json()
    assert data["report"]["total"]["figures"]["calls_total"] == 2
    data = web.get("/report.json", params={**PERIOD, "min_call": "100", "max_call": "200"}).json()
    assert data["report"]["total"]["figures"]["calls_total"] == 1


def test_errors_inside_the_panel_are_fragments(store):
    web = client(store, viewer=4)
    resp = web.get(
        "/drill",
        params={**PERIOD, "figure": "deals_new", "user": "3"},
        headers={"hx-request": "true"},
    )
    assert resp.status_code == 403
    assert 'role="alert"' in resp.text and "<html" not in resp.text


def test_scheduled_sync_runs_on_its_own(store):
    from rop.web.sync import Scheduler, SyncJob

    ran = threading.Event()

    def fake_sync(cur, url, *, full=False, progress=None):
        ran.set()

    job = SyncJob(store, "http://127.0.0.1:1/rest/1/x/", runner=fake_sync)
    scheduler = Scheduler(job, 1)
    scheduler.seconds = 0.05  # a minute is too long for a test
    scheduler.start()
    try:
        assert ran.wait(5)
    finally:
        scheduler.stop()
        job.wait(5)
    assert job.status()["state"] == "done" and job.status()["full"] is False


def test_sync_from_the_page_through_the_emulator(tmp_path):
    """The real run_sync, over loopback HTTP, into an empty store, started by the API."""
    from rop.emulator.app import create_app as emulator_app
    from rop.emulator.server import serve_in_thread as emulator_thread
    from rop.store import open_store
    from tests.test_web_support import write_portal

    folder = write_portal(tmp_path / "portal")
    with emulator_thread(emulator_app(folder)) as url, open_store(tmp_path / "s.duckdb") as store:
        app = create_app(Settings(db=store.path, webhook=f"{url}/rest/1/t/"), store)
        web = page_client(app, raise_server_exceptions=False)
        assert web.get("/report.json", params=PERIOD).status_code == 404  # nothing yet
        done = web.post("/api/sync", json={"full": True})
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "done"
        data = web.get("/report.json", params=PERIOD).json()
        assert data["report"]["total"]["figures"]["deals_new"] == 7
        assert data["report"]["data_as_of"] is not None


def test_default_page_is_built_at_startup(tmp_path, monkeypatch):
    import time

    import rop.report.build as engine

    built = []
    real = engine.build_report
    monkeypatch.setattr(engine, "build_report", lambda *a, **k: built.append(1) or real(*a, **k))
    store = tiny_store(tmp_path)
    try:
        with page_client(create_app(Settings(db=store.path), store)) as web:
            deadline = time.monotonic() + 20
            while not built and time.monotonic() < deadline:
                time.sleep(0.05)
            assert web.get("/report").status_code == 200
            assert len(built) == 1  # the first visit found the page ready
    finally:
        store.close()


def test_stages_of_unchosen_pipelines_are_dropped_unknown_refused(web):
    data = web.get("/report.json", params={**PERIOD, "pipeline": "1", "key_stage": "PREPARATION"})
    assert data.status_code == 200
    assert data.json()["filter"]["key_stages"] == []
    bad = web.get("/report.json", params={**PERIOD, "pipeline": "1", "key_stage": "NOPE"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("param", "value", "words"),
    [
        ("key_stage", "NOPE", "Стадии сделки «NOPE» нет"),
        ("key_status", "NOPE", "Статуса лида «NOPE» нет"),
        ("department", "99", "Отдела с номером 99 нет"),
    ],
)
def test_unknown_choices_are_named_in_the_page_language(web, param, value, words):
    resp = web.get("/report.json", params={**PERIOD, param: value})
    assert resp.status_code == 400 and words in resp.json()["error"]["message"]
    en = web.get("/report.json", params={**PERIOD, param: value, "lang": "en"})
    assert en.status_code == 400 and "There is no" in en.json()["error"]["message"]
