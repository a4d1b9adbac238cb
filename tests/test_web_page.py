"""What the report page shows a reader, beyond the numbers: dates in the page's
language, section navigation, no delta for figures about the present, the
empty-period notice, the viewer's name, accessible names and headers."""

from __future__ import annotations

import html
import re
import time
import warnings

import pytest

from rop.config import Settings
from rop.web import create_app
from rop.web.charts import manager_bars
from rop.web.errors import BadInput
from rop.web.params import parse_date, show_date
from tests.test_web_support import PERIOD, tiny_store
from tests.web_client import page_client

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = tiny_store(tmp_path_factory.mktemp("web_page"))
    yield s
    s.close()


def client(store, **settings) -> TestClient:
    return page_client(
        create_app(Settings(db=store.path, **settings), store), raise_server_exceptions=False
    )


@pytest.fixture(scope="module")
def web(store):
    return client(store)


def test_dates_read_the_russian_way_and_both_forms_are_accepted(web):
    from datetime import date

    assert parse_date("01.10.2026", "from", "ru") == date(2026, 10, 1)
    assert parse_date("1.10.2026", "from", "ru") == date(2026, 10, 1)
    assert parse_date("2026-10-01", "from", "en") == date(2026, 10, 1)
    assert show_date(date(2026, 10, 1), "ru") == "01.10.2026"
    assert show_date(date(2026, 10, 1), "en") == "2026-10-01"
    for bad in ("30.02.2026", "2026-1-1", "01/10/2026", "1.10.26", ""):
        with pytest.raises(BadInput):
            parse_date(bad, "from", "ru")

    ru = web.get("/report", params=PERIOD).text
    box = re.search(r'<input type="text" name="from"[^>]*>', ru).group(0)
    assert 'value="01.10.2026"' in box and "pattern=" in box
    assert 'type="date" name=' not in ru  # the native input carries no name: it is only a picker
    en = web.get("/report", params={**PERIOD, "lang": "en"}).text
    assert 'value="2026-10-01"' in re.search(r'<input type="text" name="from"[^>]*>', en).group(0)

    # What the Russian form submits is the same filter as the ISO link.
    dotted = web.get(
        "/report.json", params={"period": "custom", "from": "01.10.2026", "to": "31.10.2026"}
    )
    iso = web.get("/report.json", params=PERIOD)
    assert dotted.status_code == 200
    assert dotted.json()["report"]["total"] == iso.json()["report"]["total"]
    # Links stay canonical (ISO) whatever was typed.
    page = web.get("/report", params={"period": "custom", "from": "01.10.2026", "to": "31.10.2026"})
    assert "from=2026-10-01" in html.unescape(
        re.search(r'id="lang-switch" href="([^"]+)"', page.text).group(1)
    )


def test_a_bad_date_names_the_field_by_its_label(web):
    page = web.get("/report", params={"period": "custom", "from": "30.02.2026", "to": "01.03.2026"})
    assert page.status_code == 400
    assert "30.02.2026" in page.text and html.escape("«Период: с» (from)") in page.text
    assert "ДД.ММ.ГГГГ" in page.text
    en = web.get(
        "/report.json", params={"period": "custom", "from": "2026-10-01", "to": "x", "lang": "en"}
    )
    assert en.status_code == 400 and "“Period: to” (to)" in en.json()["error"]["message"]


def test_sections_are_findable(web):
    page = web.get("/report", params=PERIOD).text
    nav = re.search(r'<nav class="section-nav".*?</nav>', page, re.S).group(0)
    for key, label in (("deals", "Сделки"), ("leads", "Лиды"), ("calls", "Звонки")):
        assert f'href="#section-{key}"' in nav and label in nav
        # The anchor is the section's header, a colgroup header.
        assert re.search(rf'<th colspan="\d+" scope="colgroup"[^>]*id="section-{key}"', page)
    # The first column of each section carries the heavier rule, and only it.
    data = web.get("/report.json", params=PERIOD).json()
    cols = data["report"]["columns"]
    starts = [
        c["key"] for i, c in enumerate(cols) if i == 0 or cols[i - 1]["section"] != c["section"]
    ]
    marked = re.findall(r'<th scope="col" data-key="([^"]+)" class="col[^"]*section-start', page)
    assert marked == starts
    # One section: no navigation needed.
    only = web.get("/report", params={**PERIOD, "section": "deals"}).text
    assert 'class="section-nav"' not in only


def test_department_titles_stay_in_the_sticky_column(web):
    page = web.get("/report", params=PERIOD).text
    row = re.search(r'<tr class="dept">(.*?)</tr>', page, re.S).group(1)
    assert re.match(
        r'<th class="first" scope="rowgroup"><bdi>Отдел продаж 1</bdi></th><td class="dept-fill" colspan="\d+"></td>',
        row,
    )


def test_figures_about_the_present_have_no_delta(web):
    page = web.get("/report", params=PERIOD).text
    tfoot = page.split("<tfoot>")[1]
    cell = re.search(
        r'<td class="num[^"]*" data-key="deals_in_progress">(.*?)</td>', tfoot, re.S
    ).group(1)
    assert 'class="drill"' in cell and "delta" not in cell
    won = re.search(
        r'<td class="num[^"]*" data-key="deals_won_amount">(.*?)</td>', tfoot, re.S
    ).group(1)
    assert "delta" in won  # a figure of the period still compares


def test_an_empty_period_says_so(web):
    quiet = web.get(
        "/report", params={"period": "custom", "from": "2020-01-01", "to": "2020-01-31"}
    )
    assert quiet.status_code == 200 and 'id="quiet"' in quiet.text
    assert "нет ни новых, ни закрытых записей" in quiet.text
    busy = web.get("/report", params=PERIOD).text
    assert 'id="quiet"' not in busy


def test_the_viewer_is_named_with_what_they_head(store):
    # Борис (2) heads «Отдел продаж 1».
    page = client(store, viewer=2).get("/report", params=PERIOD).text
    viewer = re.search(r'<span class="viewer" id="viewer">(.*?)</span>', page, re.S).group(1)
    assert "Борис Начальников" in viewer and "Отдел продаж 1" in viewer and "руководитель" in viewer
    plain = client(store, viewer=4).get("/report", params=PERIOD).text
    assert "Глеб Сидоров" in re.search(r'id="viewer">(.*?)</span>', plain, re.S).group(1)


def test_accessible_names_and_headers(web):
    page = web.get("/report", params=PERIOD).text
    # The panel is a labelled modal dialog, hidden from assistive tech until opened.
    assert re.search(r'<div id="drill-panel" class="slider" aria-hidden="true" inert[ >]', page)
    assert 'role="dialog" aria-modal="true" aria-labelledby="drill-title"' in page
    assert re.search(
        r'<button[^>]*id="drill-close"[^>]*>|<button[^>]*aria-label="Закрыть"[^>]*id="drill-close"',
        page,
    )
    assert 'aria-label="Закрыть"' in page
    # Every number link says what it is, for whom and how much.
    labels = re.findall(r'<a class="drill"[^>]*aria-label="([^"]+)"', page)
    assert labels and all(": " in html.unescape(a) and ", " in html.unescape(a) for a in labels)
    assert "Новые, Вера Петрова: 2" in [html.unescape(a) for a in labels]
    # Headers have scopes; column tooltips are reachable by keyboard.
    assert '<th class="first" rowspan="2" scope="col">' in page
    assert not re.search(r"<th(?![^>]*scope=)[^>]*>", page.split("<tbody")[0].split("<thead>")[1])
    assert re.search(r'tabindex="0" aria-describedby="tip-deals_new"', page)
    frag = web.get(
        "/drill", params={**PERIOD, "figure": "deals_new"}, headers={"hx-request": "true"}
    ).text
    assert 'id="drill-title" tabindex="-1"' in frag
    assert frag.count('<th scope="col"') >= 3


def test_unknown_users_in_the_bars_are_named_by_the_page():
    report = {
        "rows": [
            {
                "user_id": 3,
                "name": "Вера Петрова",
                "figures": {"deals_won_amount": 10, "deals_win_rate": 0.5},
            },
            {
                "user_id": 29,
                "name": "user #29",
                "unknown": True,
                "figures": {"deals_won_amount": 5},
            },
        ]
    }
    bars = manager_bars(report)
    assert bars["names"] == ["Вера Петрова", None] and bars["user_ids"] == [3, 29]
    assert bars["names_ru"] == ["Вера Петрова", "Пользователь #29"]
    assert bars["names_en"] == ["Вера Петрова", "user #29"]
    assert bars["win_rate"] == [50.0, None]


def test_report_errors_speak_the_page_language(store, web):
    q = {**PERIOD, "figure": "no_such_figure"}
    ru = web.get("/drill", params=q)
    assert ru.status_code == 400 and "Нет показателя" in ru.text
    en = web.get("/drill.json", params={**q, "lang": "en"}).json()["error"]
    assert en["message"].startswith("Unknown figure") and en["title"] == "Bad filter"
    # Outside the viewer's scope: 403, said in Russian on a Russian page.
    glebs = client(store, viewer=4)
    denied = glebs.get("/drill", params={**PERIOD, "figure": "deals_new", "user": "5"})
    assert denied.status_code == 403 and "вне вашей области видимости" in denied.text
    assert 'href="/report?lang=ru"' in denied.text.split('role="alert"')[1]  # a page: a link back
    # In the panel (htmx), the way back is closing the panel.
    panel = glebs.get(
        "/drill",
        params={**PERIOD, "figure": "deals_new", "user": "5"},
        headers={"hx-request": "true"},
    ).text
    assert "<html" not in panel and "data-close-panel>Закрыть</button>" in panel


def test_the_sentence_names_what_was_chosen(store):
    # Борис (2) looks; pipeline 1 and department 20 are named, not numbered.
    page = client(store, viewer=2).get(
        "/report", params={**PERIOD, "pipeline": "1", "department": "10"}
    )
    sentence = re.search(r'<span id="sentence">(.*?)</span>', page.text, re.S).group(1)
    sentence = html.unescape(sentence)
    assert "Борис Начальников" in sentence and "Отдел продаж 1" in sentence
    assert "глазами: 2" not in sentence


def test_managers_are_offered_by_department(web):
    page = web.get("/report", params=PERIOD).text
    box = re.search(r'<details class="multi" id="pick-managers">.*?</details>', page, re.S).group(0)
    groups = re.findall(r'<div class="options-group"><bdi>([^<]+)</bdi></div>', box)
    assert groups == ["Отдел продаж 1", "Отдел продаж 2"]
    first, second = box.split("Отдел продаж 2</bdi></div>")
    assert "Вера Петрова" in first and "Дина Орлова" in second and "Вера Петрова" not in second
    assert 'name="manager" value="7"' in first and "(уволен)" in first  # Жанна, dismissed


def _accessible_names(page: str) -> list[tuple[str, str]]:
    """(tag, name) of every link and button: its aria-label, else its text."""
    out = []
    for tag, attrs, body in re.findall(r"<(a|button)\b([^>]*)>(.*?)</\1>", page, re.S):
        label = re.search(r'aria-label="([^"]*)"', attrs)
        text = re.sub(r"<[^>]+>", "", body).strip()
        out.append((tag, (label.group(1) if label else text).strip()))
    return out


def test_every_link_and_button_has_a_name(web):
    for params in (PERIOD, {**PERIOD, "lang": "en"}):
        page = web.get("/report", params=params).text
        names = _accessible_names(page)
        assert len(names) > 50
        assert all(name for _, name in names), [n for n in names if not n[1]]
        frag = web.get(
            "/drill", params={**params, "figure": "deals_new"}, headers={"hx-request": "true"}
        ).text
        assert all(name for _, name in _accessible_names(frag))


def test_drill_down_names_link_to_profiles(web):
    # Everyone's new deals: the manager column links each name to its profile.
    frag = web.get(
        "/drill", params={**PERIOD, "figure": "deals_new"}, headers={"hx-request": "true"}
    ).text
    cells = re.findall(r'<td class="kind-[^"]*" data-key="manager">(.*?)</td>', frag, re.S)
    assert len(cells) == 7
    links = [
        re.fullmatch(
            r'<a class="profile" href="https://tiny\.bitrix24\.ru/company/personal/user/(\d+)/" '
            r'target="_blank" rel="noopener"><bdi>([^<]+)</bdi></a>',
            c.strip(),
        )
        for c in cells
    ]
    assert all(links), cells
    assert ("3", "Вера Петрова") in {m.groups() for m in links if m}
    # One manager's records: the name is the panel's subtitle, not a column.
    one = web.get(
        "/drill",
        params={**PERIOD, "figure": "deals_new", "user": "3"},
        headers={"hx-request": "true"},
    ).text
    assert 'data-key="manager"' not in one and "Вера Петрова" in one


def test_filter_summaries_read_as_words(web):
    page = web.get("/report", params=PERIOD).text
    assert "Ключевые стадии: нет" in page and "Разделы: все" in page
    some = web.get("/report", params={**PERIOD, "section": ["deals", "calls"]}).text
    assert "Разделы: 2/5" in some


def test_pages_are_compressed_and_numbers_carry_one_url(web):
    page = web.get("/report", params=PERIOD, headers={"accept-encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"
    assert int(page.headers["content-length"]) * 4 < len(page.content)
    # The drill-down URL is written once per number (the page's script opens it in the panel).
    assert 'class="drill" href=' in page.text and "hx-get" not in page.text.split("<tbody")[1]


def test_rows_without_a_group_say_so():
    from rop.web.table import row_name

    nobody = {"key": None, "name": "—", "figures": {}}
    assert row_name(nobody, "ru", "department") == "Без отдела"
    assert row_name(nobody, "en", "source") == "No source"
    assert row_name({"key": "WEB", "name": "Веб-сайт"}, "ru", "source") == "Веб-сайт"
    assert row_name({"user_id": 29, "unknown": True, "name": "user #29"}, "ru") == (
        "Пользователь #29"
    )


def test_one_choice_is_named_in_its_picker(web):
    page = web.get("/report", params={**PERIOD, "pipeline": "1", "department": "20"}).text
    # Each name is isolated (issue 9, bidi).
    summaries = [
        s.replace("<bdi>", "").replace("</bdi>", "")
        for s in re.findall(r"<summary>(.*?)</summary>", page, re.S)
    ]
    assert "Воронки: Опт" in summaries and "Отделы: Отдел продаж 2" in summaries
    two = web.get("/report", params={**PERIOD, "department": ["10", "20"]}).text
    assert "Отделы: 2" in re.findall(r"<summary>(.*?)</summary>", two, re.S)
    one = web.get("/report", params={**PERIOD, "manager": "3"}).text
    assert "Менеджеры: <bdi>Вера Петрова</bdi>" in re.findall(
        r"<summary>(.*?)</summary>", one, re.S
    )
    # Someone the store does not know is refused, naming the number (issue 9:
    # not an empty report), and the page keeps its filter bar.
    unknown = web.get("/report", params={**PERIOD, "manager": "9999"})
    assert unknown.status_code == 400
    assert "9999" in unknown.text and "<summary>" in unknown.text


def test_drill_counts_read_naturally(web):
    from rop.web.i18n import records_after_of

    assert [records_after_of(n, "ru") for n in (1, 2, 5, 11, 21, 101)] == [
        "записи", "записей", "записей", "записей", "записи", "записи",
    ]  # fmt: skip
    assert records_after_of(1, "en") == "record" and records_after_of(3, "en") == "records"
    one = web.get(
        "/drill",
        params={**PERIOD, "figure": "deals_lost", "user": "3"},
        headers={"hx-request": "true"},
    ).text
    assert re.search(r'из <b id="drill-total">1</b> записи', one)
    # A list with nothing in it says so (an amount of 0 ₽ still links).
    empty = web.get(
        "/drill",
        params={**PERIOD, "figure": "deals_won_amount", "user": "6"},
        headers={"hx-request": "true"},
    ).text
    assert "Записей нет" in empty and 'class="no-rows"' in empty


def test_the_page_says_what_the_deltas_compare_with(web):
    page = web.get("/report", params=PERIOD).text
    compared = re.search(r'<span id="compared-with" class="compared">(.*?)</span>', page).group(1)
    assert compared.endswith("01.09.2026 – 30.09.2026")
    en = web.get("/report", params={**PERIOD, "lang": "en"}).text
    assert "2026-09-01 – 2026-09-30" in en
    off = web.get("/report", params={**PERIOD, "compare": "0"}).text
    assert 'id="compared-with"' not in off


def test_the_trend_says_its_step(web):
    page = web.get("/report", params=PERIOD).text
    assert "Новые, успешные и неуспешные сделки · по дням" in page
    year = web.get("/report", params={"period": "custom", "from": "2026-01-01", "to": "2026-10-31"})
    assert "· по неделям (с понедельника)" in year.text


def test_rows_use_the_engines_name_in_the_page_language():
    from rop.web.table import row_name

    row = {"key": None, "name": "—", "name_ru": "Без отдела", "name_en": "No department"}
    assert row_name(row, "en", "department") == "No department"
    src = {"key": "X1", "name": "X1", "name_ru": "Источник X1", "name_en": "Source X1"}
    assert row_name(src, "ru", "source") == "Источник X1"


def test_unknown_badge_only_for_people():
    from datetime import date

    from rop.web.params import WebFilter
    from rop.web.table import build_table
    from rop.web.urls import Urls

    cols = [{"key": "deals_new", "section": "deals", "kind": "count", "label_ru": "Новые"}]
    wf = WebFilter(
        lang="ru", period="custom", date_from=date(2026, 10, 1), date_to=date(2026, 10, 31)
    )
    by_source = {
        "columns": cols,
        "rows": [{"key": "X1", "name": "X1", "unknown": True, "figures": {"deals_new": 2}}],
        "total": {"figures": {"deals_new": 2}},
    }
    table = build_table(by_source, wf.narrowed(by="source"), Urls(), "ru", "RUB")
    assert table.blocks[0].lines[0].unknown is False
    by_manager = {
        "columns": cols,
        "rows": [
            {
                "user_id": 29,
                "key": 29,
                "name": "user #29",
                "unknown": True,
                "figures": {"deals_new": 1},
            }
        ],
        "total": {"figures": {"deals_new": 1}},
    }
    line = build_table(by_manager, wf, Urls(), "ru", "RUB").blocks[0].lines[0]
    assert line.unknown is True and line.name == "Пользователь #29"


def test_no_sections_says_what_to_do(web):
    page = web.get("/report", params={**PERIOD, "section": "none"})
    assert page.status_code == 200 and 'id="no-sections"' in page.text
    assert 'id="report-table"' not in page.text and 'id="charts"' not in page.text
    calls = web.get("/report", params={**PERIOD, "section": "calls"}).text
    assert 'id="report-table"' in calls and 'id="charts"' not in calls  # pictures are of deals


def test_the_tab_title_names_the_period_and_a_skip_link_leads_to_the_table(web):
    page = web.get("/report", params=PERIOD).text
    assert "<title>Отчёт РОПа · 01.10.2026 – 31.10.2026</title>" in page
    assert '<a class="skip" href="#report-table-wrap">К таблице</a>' in page
    assert 'id="report-table-wrap" tabindex="-1"' in page


def test_zeros_are_muted_and_only_zeros(web):
    page = web.get("/report", params=PERIOD).text
    cells = re.findall(r'<td class="num([^"]*)" data-key="[^"]+">\s*(?:<a[^>]*>)?([^<]*)', page)
    assert cells
    zeros = [c for c, text in cells if text.strip() in ("0", "0\u00a0₽", "0\u00a0%")]
    others = [c for c, text in cells if text.strip() and text.strip()[0] in "123456789"]
    assert zeros and all("zero" in c for c in zeros)
    assert others and not any("zero" in c for c in others)


def test_startup_warms_the_static_steps_not_the_list_texts(tmp_path):
    # The warm-up builds what drill-downs read beside the stored facts (the stage
    # directory); not the list texts: a page names its own rows
    # (tests/test_report_cache.py, tests/test_drill_texts.py).
    store = tiny_store(tmp_path)
    try:
        app = create_app(Settings(db=store.path), store)
        sql = "SELECT table_name FROM duckdb_tables() WHERE database_name = 'rop_cache'"
        names: list[str] = []
        with page_client(app):
            # The warm-up runs in a build slot after the start; a shutdown
            # before it got one skips it, so wait for it (not for ever) here.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                cursor = store.cursor()
                try:
                    names = [t for (t,) in cursor.query(sql)]
                finally:
                    cursor.close()
                if any(n.startswith("lead_order_base") for n in names):
                    break
                time.sleep(0.1)
        assert any(n.startswith("lead_order_base") for n in names), names
    finally:
        store.close()


def test_no_section_chosen_reads_as_words_in_the_sentence(web):
    ru = web.get("/report.json", params={**PERIOD, "section": "none"}).json()["sentence"]
    assert ru.endswith("разделы: не выбраны")
    en = web.get("/report.json", params={**PERIOD, "section": "none", "lang": "en"}).json()
    assert en["sentence"].endswith("sections: none chosen")
    one = web.get("/report.json", params={**PERIOD, "section": "calls"}).json()["sentence"]
    assert one.endswith("разделы: звонки")


def test_call_duration_fields_say_a_minimum_leaves_out_missed_calls(web):
    for lang, words in (("ru", "убирает и пропущенные звонки"), ("en", "also leaves out missed")):
        page = web.get("/report", params={**PERIOD, "lang": lang}).text
        hint = re.search(r'<small class="hint" id="calls-hint">([^<]*)</small>', page)
        assert hint and words in hint.group(1)
        # Both fields point at the hint, so a screen reader reads it with them.
        for name in ("min_call", "max_call"):
            box = re.search(rf'<input type="number"[^>]*name="{name}"[^>]*>', page).group(0)
            assert 'aria-describedby="calls-hint"' in box and "aria-label=" in box


def _field(page: str, name: str) -> str:
    return re.search(rf'<input [^>]*name="{name}"[^>]*>', page).group(0)


def test_a_bad_value_keeps_the_filter_bar_and_shows_the_message_in_place_of_the_table(web):
    bad = {
        "period": "custom",
        "from": "2026-02-30",
        "to": "2026-03-05",
        "pipeline": "1",
        "key_status": "JUNK",
        "min_call": "30",
        "by": "source",
    }
    page = web.get("/report", params=bad)
    assert page.status_code == 400
    text = page.text
    # The message stands where the table would be ...
    problem = re.search(r'<div id="filter-problem">.*?</div>', text, re.S).group(0)
    assert 'role="alert"' in problem and "2026-02-30" in problem
    assert 'id="report-table"' not in text and 'id="charts"' not in text
    assert 'id="export-json"' not in text and 'id="sentence"' not in text
    # ... under the filter bar with the reader's values: the bad date as typed.
    assert 'id="filter"' in text
    assert 'value="2026-02-30"' in _field(text, "from")
    # The readable date is shown the page's way, so only the bad one needs fixing.
    assert 'value="05.03.2026"' in _field(text, "to")
    assert re.search(r'<option value="custom"\s+selected>', text)
    assert re.search(r'name="pipeline" value="1"\s+checked', text)
    assert re.search(r'name="key_status" value="JUNK"\s+checked', text)
    assert 'value="30"' in _field(text, "min_call")
    # The bad field is marked; the others are not.
    assert 'aria-invalid="true"' in _field(text, "from")
    assert text.count('aria-invalid="true"') == 1
    # The top bar says the same "data as of" as the report page.
    as_of = re.compile(r'<span class="asof" id="data-as-of">(.*?)</span>', re.S)
    good = web.get("/report", params=PERIOD).text
    assert as_of.search(text).group(1) == as_of.search(good).group(1)
    assert re.search(r'<option value="source"\s+selected>', text)
    # The JSON twin stays the plain error.
    data = web.get("/report.json", params=bad)
    assert data.status_code == 400 and set(data.json()) == {"error"}


@pytest.mark.parametrize(
    ("params", "words", "kept"),
    [
        # An unknown pipeline goes; the known one next to it stays ticked.
        ({**PERIOD, "pipeline": ["1", "77"]}, "77", r'name="pipeline" value="1"\s+checked'),
        # One bad value among several in one pair.
        ({**PERIOD, "department": "20,99"}, "99", r'name="department" value="20"\s+checked'),
        # A minimum above the maximum: both shown as typed.
        ({**PERIOD, "min_call": "60", "max_call": "10"}, "60", r'name="max_call" value="10"'),
        # Two bad values: the first is named, the page still stands.
        ({**PERIOD, "by": "planet", "section": "moon"}, "moon", r'value="2026-10-01"'),
        # A bad language: the page falls back to the configured one.
        ({**PERIOD, "lang": "xx"}, "xx", r'<html lang="ru">'),
        # A range too long: the year as typed, not "01.01.26".
        (
            {"period": "custom", "from": "0026-01-01", "to": "2026-01-01"},
            "3700",
            r'value="0026-01-01"',
        ),
        # Only "from": "to" is missing and marked, "from" kept the page's way.
        (
            {"period": "custom", "from": "2026-10-01"},
            "(to)",
            r'name="from"[^>]*value="01.10.2026".*name="to"[^>]*aria-invalid="true"',
        ),
        ({"period": "never", "lang": "en"}, "never", r'<html lang="en">'),
    ],
)
def test_bad_values_are_left_out_and_named(web, params, words, kept):
    page = web.get("/report", params=params)
    assert page.status_code == 400
    assert 'id="filter-problem"' in page.text and html.escape(words) in page.text
    assert re.search(kept, page.text, re.S), kept


def test_problem_pages_are_not_cached_and_do_not_become_the_last_filter(web):
    bad = {"period": "custom", "from": "2026-02-30", "to": "2026-03-05"}
    first = web.get("/report", params=bad)
    assert "rop_last_filter" not in first.headers.get("set-cookie", "")
    fixed = web.get("/report", params={**bad, "from": "2026-02-27"})
    assert fixed.status_code == 200 and 'id="report-table"' in fixed.text
    # A drill-panel request keeps its fragment (no page inside the panel).
    frag = web.get("/report", params=bad, headers={"hx-request": "true"})
    assert frag.status_code == 400 and "<html" not in frag.text and 'role="alert"' in frag.text


def test_a_filter_the_report_refuses_keeps_the_page_too(store, monkeypatch):
    from rop.report import build
    from rop.report.filter import ReportInputError

    def refuse(*args, **kwargs):
        raise ReportInputError("unknown_user", user=3, portal="tiny.bitrix24.ru")

    monkeypatch.setattr(build, "build_report", refuse)
    web = client(store)  # a fresh cache: nothing built before
    page = web.get("/report", params={**PERIOD, "manager": "3", "lang": "en"})
    assert page.status_code == 400
    problem = re.search(r'<div id="filter-problem">.*?</div>', page.text, re.S).group(0)
    assert "No user 3 on portal" in problem and "Bad filter" in problem
    assert re.search(r'name="manager" value="3"\s+checked', page.text)
    assert web.get("/report.json", params=PERIOD).json()["error"]["status"] == 400
