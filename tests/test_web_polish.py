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
    return TestClient(create_app(Settings(db=store.path), store), raise_server_exceptions=False)


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
        r'data-key="deal_stage:[^"]+".*?class="th-label">([^<]+)<.*?role="tooltip"[^>]*>([^<]+)<',
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
