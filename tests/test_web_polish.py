"""What a first-time head of sales tripped over (issue 9): Russian words,
minus signs, time zones by name, bidi isolation of CRM strings, same-named
key stages, calls that read like calls. Pages over a real store file through
the real app; the browser side is in tests/test_web_browser_polish.py."""

from __future__ import annotations

import json
import re
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rop.config import Settings
from rop.web import create_app
from tests.test_web_support import PERIOD, write_portal
from tests.web_client import page_client

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

MINUS = "\u2212"


def _edit(folder: Path, name: str, change) -> None:
    path = folder / name
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


# -- Russian text ---------------------------------------------------------------


def test_client_figures_are_named_in_good_russian():
    from rop.metrics.catalogue import figure

    assert figure("companies_new").label_ru == "Новые компании"
    assert figure("contacts_new").label_ru == "Новые контакты"
    assert figure("companies_total").label_ru == "Всего компаний"
    assert figure("contacts_total").description_ru.startswith("Все контакты менеджера")


def test_every_negative_number_and_delta_has_one_minus_sign():
    from rop.web.formatting import delta, fmt_cell, fmt_value

    cases = [
        delta("deals_won", "count", 3, 8).text,
        delta("deals_win_rate", "share", 0.4, 0.55).text,
        delta("deals_won_amount", "amount", 1000.0, 3500.0).text,
        delta("deals_sale_cycle_days", "days", 2.0, 4.5).text,
        delta("calls_talk_seconds", "seconds", 10, 80).text,
        fmt_value("count", -5),
        fmt_value("count", -2.5),
        fmt_value("share", -0.25),
        fmt_value("days", -1.5),
        fmt_value("seconds", -70),
        fmt_value("amount", -1234.0),
        fmt_cell("amount", -10.0, "amount"),
    ]
    for text in cases:
        assert "-" not in text, text
        assert text.count(MINUS) == 1, text
    assert delta("deals_win_rate", "share", 0.4, 0.55).text == f"{MINUS}15\u00a0п.п."


def test_the_cli_russian_table_writes_decimal_commas():
    from rop.report.table import drill_to_table, report_to_table

    report = {
        "portal": {"key": "p"}, "period": {"from": "a", "to": "b", "timezone": "Etc/GMT-3"},
        "currency": "RUB", "description_ru": "x", "description_en": "x",
        "columns": [
            {"key": "deals_win_rate", "section": "deals", "label_ru": "Доля", "label_en": "Rate",
             "kind": "share"},
            {"key": "deals_won_amount", "section": "deals", "label_ru": "Сумма",
             "label_en": "Amount", "kind": "amount"},
        ],
        "rows": [{"name": "Мария", "dismissed": False,
                  "figures": {"deals_win_rate": 0.125, "deals_won_amount": 1234.5}}],
        "departments": [], "total": {"figures": {"deals_win_rate": 0.125,
                                                 "deals_won_amount": 1234.5}},
    }  # fmt: skip
    ru = report_to_table(report, "ru")
    assert "12,5 %" in ru and "1 234,50" in ru and "12.5" not in ru
    en = report_to_table(report, "en")
    assert "12.5 %" in en and "1 234.50" in en
    # The zone by its offset, the way people read it: never "Etc/GMT-3".
    assert "UTC+3" in ru and "Etc/GMT" not in ru
    drill = {"label_ru": "Цикл", "label_en": "Cycle", "value": 2.5, "kind": "days",
             "columns": [{"key": "value", "label_ru": "Дней", "label_en": "Days",
                          "kind": "days"}],
             "records": [{"value": 3.25}], "description": "", "description_en": ""}  # fmt: skip
    text = drill_to_table(drill, "ru")
    assert "2,5" in text and "3,2" in text and "2.5" not in text


def test_time_zones_are_named_by_city_and_offset():
    from rop.report.zones import zone_label

    winter = datetime(2026, 1, 15, tzinfo=UTC)
    assert zone_label("Europe/Moscow", "ru", winter) == "Москва, UTC+3"
    assert zone_label("Europe/Moscow", "en", winter) == "Moscow, UTC+3"
    assert zone_label("Etc/GMT-3", "ru", winter) == "UTC+3"
    assert zone_label("Etc/GMT+5", "ru", winter) == f"UTC{MINUS}5"
    assert zone_label("Europe/Berlin", "en", datetime(2026, 7, 1, tzinfo=UTC)) == "Berlin, UTC+2"
    assert zone_label("Asia/Kolkata", "en", winter) == "Kolkata, UTC+5:30"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from rop.bitrix.snapshot import load_snapshot
    from rop.store import open_store

    tmp = tmp_path_factory.mktemp("polish")
    store = open_store(tmp / "tiny.duckdb")
    load_snapshot(store, write_portal(tmp / "portal"))
    yield store
    store.close()


def _client(store) -> TestClient:
    # The served host name, not TestClient's "testserver" (rop/web/security.py).
    return page_client(create_app(Settings(db=store.path), store), raise_server_exceptions=False)


def test_the_page_names_the_portals_time_zone(tiny):
    page = _client(tiny).get("/report", params=PERIOD).text
    zone = re.search(r'id="time-zone"[^>]*>([^<]*)<', page).group(1)
    assert zone == "(Москва, UTC+3)"
    assert "Etc/" not in page


# -- key stages with the same name -------------------------------------------------


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """The tiny portal where both pipelines have a stage called "Новая"."""
    from rop.bitrix.snapshot import load_snapshot
    from rop.store import open_store

    tmp = tmp_path_factory.mktemp("twins")
    folder = write_portal(tmp / "portal")

    def rename(rows):
        for r in rows:
            if r["STATUS_ID"] == "C1:NEW":
                r["NAME"] = "Новая"

    _edit(folder, "crm.status.list.json", rename)
    store = open_store(tmp / "twins.duckdb")
    load_snapshot(store, folder)
    yield store
    store.close()


def test_same_named_key_stages_carry_their_pipeline(twins):
    web = _client(twins)
    params = {**PERIOD, "key_stage": ["NEW", "C1:NEW"]}
    cols = {c["key"]: c for c in web.get("/report.json", params=params).json()["report"]["columns"]}
    assert cols["deal_stage:NEW"]["label_ru"] == "Новая (Общая)"
    assert cols["deal_stage:C1:NEW"]["label_ru"] == "Новая (Опт)"
    assert "Опт" in cols["deal_stage:C1:NEW"]["description_ru"]
    page = web.get("/report", params=params).text
    heads = re.findall(
        r'data-key="deal_stage:[^"]+".*?class="th-label"><bdi>([^<]+)<.*?role="tooltip"[^>]*><bdi>([^<]+)<',
        page,
    )
    assert [h[0] for h in heads] == ["Новая (Общая)", "Новая (Опт)"]
    assert "Опт" in heads[1][1]
    # The filter sentence tells them apart too.
    sentence = web.get("/report.json", params=params).json()["sentence"]
    assert "Новая (Общая)" in sentence and "Новая (Опт)" in sentence
    # A stage name used once stays as it is.
    one = web.get("/report.json", params={**PERIOD, "key_stage": "PREPARATION"}).json()
    assert any(c["label_ru"] == "Подготовка" for c in one["report"]["columns"])


# -- charts drill down ---------------------------------------------------------------


def test_every_chart_element_drills_down_to_exactly_its_records(tiny):
    """Each funnel step, manager's bar and trend point links the drill-down that
    lists the very records it counts (the browser test clicks one of them)."""
    web = _client(tiny)
    charts = web.get("/report.json", params=PERIOD).json()["charts"]
    checked = 0

    def total(url: str) -> dict:
        got = web.get(url.replace("/drill?", "/drill.json?"))
        assert got.status_code == 200, got.text
        return got.json()

    for funnel in charts["funnels"]:
        for step in funnel["steps"]:
            body = total(step["drill"])
            assert body["total_records"] == step["count"], (funnel["name"], step)
            checked += 1
    # The default pipeline: 5 deals created in October, all got to "Подготовка"
    # (the lost one through it), 3 won.
    assert [s["count"] for s in charts["funnels"][0]["steps"]] == [5, 5, 3]
    bars = charts["bars"]
    for amount, url in zip(bars["won_amount"], bars["drill"], strict=True):
        assert url is not None
        assert total(url)["value"] == pytest.approx(amount)
        checked += 1
    trend = charts["trend"]
    for kind in ("new", "won", "lost"):
        for count, url in zip(trend[kind], trend["drill"][kind], strict=True):
            if count:
                assert total(url)["total_records"] == count, (kind, url)
                checked += 1
    assert checked > 15
    # The funnel step's list is titled by its stage.
    step = total(charts["funnels"][0]["steps"][1]["drill"])
    assert step["label_ru"] == "Воронка: Подготовка"


# -- bidi spoofing ------------------------------------------------------------------

RLO = "\u202e"


@pytest.fixture(scope="module")
def spoofed(tmp_path_factory):
    """The tiny portal where a manager, a department and a stage carry U+202E."""
    from rop.bitrix.snapshot import load_snapshot
    from rop.store import open_store

    tmp = tmp_path_factory.mktemp("bidi")
    folder = write_portal(tmp / "portal")

    def users(rows):
        for r in rows:
            if r["ID"] == "3":
                r["LAST_NAME"] = f"Петрова{RLO}evil"

    def depts(rows):
        rows[0]["NAME"] = f"Отдел{RLO}1"

    def stages(rows):
        for r in rows:
            if r["STATUS_ID"] == "PREPARATION":
                r["NAME"] = f"Подготовка{RLO}x"

    _edit(folder, "user.get.json", users)
    _edit(folder, "department.get.json", depts)
    _edit(folder, "crm.status.list.json", stages)
    store = open_store(tmp / "bidi.duckdb")
    load_snapshot(store, folder)
    yield store
    store.close()


def _outside_bdi(page: str) -> str:
    """The page's text with every <bdi>...</bdi> (and every tag attribute) removed."""
    text = re.sub(r"<bdi>.*?</bdi>", "", page, flags=re.S)
    return re.sub(r"<[^>]*>", "", text)


def test_every_crm_string_is_isolated_in_the_html(spoofed):
    web = _client(spoofed)
    params = {**PERIOD, "manager": "3", "department": "10", "key_stage": "PREPARATION"}
    page = web.get("/report", params=params).text
    assert RLO in page
    # No RLO outside an isolating element: it cannot turn the text after it.
    assert RLO not in _outside_bdi(page)
    # The filter sentence names the manager in a <bdi>, the rest of it stays outside.
    sentence = re.search(r'<span id="sentence">(.*?)</span>', page, re.S).group(1)
    assert f"<bdi>Вера Петрова{RLO}evil</bdi>" in sentence
    assert sentence.count("<bdi>") == sentence.count("</bdi>") >= 3
    # The JSON twin keeps the plain sentence (no isolate marks).
    plain = web.get("/report.json", params=params).json()["sentence"]
    assert "\u2068" not in plain and f"Петрова{RLO}evil" in plain

    # The table by department (subtotal "Итого: <отдел>"), and the drill-down panel.
    table = web.get("/report", params=PERIOD).text
    assert RLO not in _outside_bdi(table)
    drill = web.get(
        "/drill",
        params={**PERIOD, "figure": "deals_new", "user": "3"},
        headers={"hx-request": "true"},
    ).text
    assert RLO in drill and RLO not in _outside_bdi(drill)
    assert f'<p class="drill-who" id="drill-who"><bdi>Вера Петрова{RLO}evil</bdi></p>' in drill
    dept = web.get("/drill", params={**PERIOD, "figure": "deals_new", "dept": "10"}).text
    assert RLO in dept and RLO not in _outside_bdi(dept)


def test_isolate_marks_cannot_unbalance_the_markup():
    from rop.web import bidi

    # A name carrying its own isolate controls loses them; the pair stays ours.
    text = "Менеджер: " + bidi.isolate("A\u2069</bdi><b>x") + ", всё."
    out = str(bidi.html(text))
    assert out == "Менеджер: <bdi>A&lt;/bdi&gt;&lt;b&gt;x</bdi>, всё."
    # Stray marks: the whole text is isolated, escaped.
    assert str(bidi.html("a\u2069<b>")) == "<bdi>a&lt;b&gt;</bdi>"


# -- calls read like calls ------------------------------------------------------------


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    """The tiny portal with recordings, a lead's call and a company's phone."""
    from rop.bitrix.snapshot import load_snapshot
    from rop.store import open_store

    tmp = tmp_path_factory.mktemp("calls")
    folder = write_portal(tmp / "portal")

    def more_calls(rows):
        rows[0]["CALL_RECORD_URL"] = "https://records.example/1.mp3"
        rows[0]["PHONE_NUMBER"] = "74957770101"
        rows[1].update({"CRM_ENTITY_TYPE": "LEAD", "CRM_ENTITY_ID": "1", "RECORD_FILE_ID": "55",
                        "PHONE_NUMBER": "+79161234567"})  # fmt: skip
        rows.append(
            {"ID": "4", "CALL_ID": "c4", "PORTAL_USER_ID": "3", "CALL_TYPE": "3",
             "CALL_DURATION": "0", "CALL_START_DATE": "2026-10-08T10:00:00+03:00",
             "CALL_FAILED_CODE": "486", "PHONE_NUMBER": "88126660011",
             "CRM_ENTITY_TYPE": "CONTACT", "CRM_ENTITY_ID": "1",
             "CALL_RECORD_URL": "javascript:alert(1)"}
        )  # fmt: skip

    def phones(rows):
        rows[1]["PHONE"] = [
            {"ID": "1", "VALUE_TYPE": "WORK", "VALUE": "+74951234567", "TYPE_ID": "PHONE"}
        ]

    _edit(folder, "voximplant.statistic.get.json", more_calls)
    _edit(folder, "crm.company.list.json", phones)
    store = open_store(tmp / "calls.duckdb")
    load_snapshot(store, folder)
    yield store
    store.close()


def _rows(page: str) -> dict[str, dict[str, str]]:
    """Drill rows by record ID: column key -> the cell's inner HTML."""
    out = {}
    for rid, body in re.findall(r'<tr data-id="(\d+)">(.*?)</tr>', page, re.S):
        out[rid] = dict(
            re.findall(r'<td class="kind-[^"]*" data-key="([^"]+)">(.*?)</td>', body, re.S)
        )
    return out


def test_the_missed_calls_list_reads_like_calls(calls):
    web = _client(calls)
    page = web.get("/drill", params={**PERIOD, "figure": "calls_missed"}).text
    rows = _rows(page)
    assert set(rows) == {"2", "4"}
    lead, contact = rows["2"], rows["4"]
    # Type and result in words, not codes.
    assert "Входящий" in lead["call_type"] and "Пропущен" in lead["failed_code"]
    assert (
        "Входящий с переадресацией" in contact["call_type"] and "Занято" in contact["failed_code"]
    )
    # The phone as the country writes it (libphonenumber), whatever the portal sent.
    assert "+7 916 123-45-67" in lead["phone"]
    assert "+7 812 666-00-11" in contact["phone"]
    # The client by name, linked to its card.
    assert re.search(
        r'href="https://tiny\.bitrix24\.ru/crm/lead/details/1/"[^>]*><bdi>Лид с сайта</bdi>',
        lead["client"],
    )
    assert re.search(
        r'href="https://tiny\.bitrix24\.ru/crm/contact/details/1/"[^>]*><bdi>Иван Клиентов</bdi>',
        contact["client"],
    )
    assert "Лид" in lead["crm_entity_type"] and "Контакт" in contact["crm_entity_type"]
    # The recording: a Drive file opens on the portal; a non-web URL is not a link.
    assert (
        'href="https://tiny.bitrix24.ru/bitrix/tools/disk/focus.php?objectId=55&amp;'
        in lead["record"]
    )
    assert "javascript" not in page and "<a" not in contact["record"]
    english = web.get("/drill", params={**PERIOD, "figure": "calls_missed", "lang": "en"}).text
    assert "Incoming, redirected" in english and "Busy" in english and "Missed" in english
    # Every call: the portal's own recording URL.
    every = _rows(web.get("/drill", params={**PERIOD, "figure": "calls_total"}).text)
    assert 'href="https://records.example/1.mp3"' in every["1"]["record"]
    assert "+7 495 777-01-01" in every["1"]["phone"]
    assert "ООО «Окна»" in every["1"]["client"]


def test_clients_not_called_or_not_sold_show_last_call_last_sale_and_a_phone(calls):
    web = _client(calls)
    sold = web.get("/drill.json", params={**PERIOD, "figure": "companies_not_sold"}).json()
    keys = [c["key"] for c in sold["columns"]]
    assert {"last_call", "last_won", "phone"} <= set(keys)
    by_id = {r["id"]: r for r in sold["records"]}
    # АО Бумага: its card's phone; never called, never bought.
    assert by_id[2]["phone"] == "+74951234567"
    assert by_id[2]["last_call"] is None and by_id[2]["last_won"] is None
    called = web.get("/drill.json", params={**PERIOD, "figure": "companies_not_called",
                                            "min_call": "3000"}).json()  # fmt: skip
    windows = {r["id"]: r for r in called["records"]}[1]
    # ООО «Окна»: no card phone, so the last number called (directly or via its
    # contact); its last call (the contact's, 8 Oct) and last sale (deal 4, 20 Oct).
    assert windows["phone"] in ("74957770101", "88126660011")
    assert windows["last_call"].startswith("2026-10-08T10:00")
    assert windows["last_won"].startswith("2026-10-20")
    page = web.get(
        "/drill", params={**PERIOD, "figure": "companies_not_called", "min_call": "3000"}
    ).text
    cells = {k: re.sub(r"<[^>]+>", "", v).strip() for k, v in _rows(page)["1"].items()}
    assert cells["last_call"] == "08.10.2026 10:00" and cells["last_won"].startswith("20.10.2026")
    assert cells["phone"] in ("+7 495 777-01-01", "+7 812 666-00-11")
    contacts = web.get("/drill.json", params={**PERIOD, "figure": "contacts_not_sold"}).json()
    assert contacts["records"][0]["phone"] == "88126660011"
    assert contacts["records"][0]["last_call"].startswith("2026-10-08")


def test_a_company_phone_is_copied_by_the_sync_from_the_multi_field(tmp_path):
    from rop.bitrix.records import COMPANIES, CONTACTS, to_rows
    from rop.bitrix.sync import run_sync
    from rop.emulator import EmulatorConfig, serve_in_thread
    from rop.emulator import create_app as emulator
    from rop.store.db import open_store
    from tests.sync_portal import TOKEN, make_portal

    folder = make_portal(tmp_path / "portal", deals=5)
    phone = [{"ID": "9", "VALUE_TYPE": "WORK", "VALUE": "+74951234567", "TYPE_ID": "PHONE"}]
    _edit(folder, "crm.company.list.json", lambda rows: rows[0].update(PHONE=phone))
    first = json.loads((folder / "crm.company.list.json").read_text(encoding="utf-8"))[0]["ID"]
    app = emulator(folder, EmulatorConfig(rate_limit=False))
    with serve_in_thread(app) as base, open_store(tmp_path / "rop.duckdb") as store:
        result = run_sync(store, f"{base}/rest/1/{TOKEN}/")
        got = store.scalar(
            "SELECT phone FROM companies WHERE portal = ? AND id = ?", [result.portal, int(first)]
        )
    assert got == "+74951234567"
    assert "PHONE" in COMPANIES.select and "PHONE" in CONTACTS.select
    row = to_rows(
        COMPANIES, "p", [{"ID": "1", "PHONE": [{"VALUE": "+7 495 1", "VALUE_TYPE": "WORK"}]}]
    )[0]
    assert row["phone"] == "+7 495 1"
    assert to_rows(CONTACTS, "p", [{"ID": "2"}])[0]["phone"] is None
