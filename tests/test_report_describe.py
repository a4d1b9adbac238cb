"""The filter's sentence names things by their names in the store; errors speak ru and en."""

from __future__ import annotations

import re
import string
from datetime import date

import pytest

from rop.metrics.errors import MESSAGES, AccessDenied, ReportInputError
from rop.report.build import build_report, drill
from rop.report.context import describe_filter
from rop.report.filter import ReportFilter
from tests.fixtures.portals import load

FLT = ReportFilter(
    date(2026, 11, 1),
    date(2026, 11, 30),
    pipelines=(0, 1),
    key_stages=("C1:PREP",),
    key_statuses=("JUNK",),
    departments=(3,),  # Вера's own: a department above it would be refused
    managers=(4,),
    min_call_seconds=10,
    max_call_seconds=600,
    viewer=3,
    today=date(2026, 11, 27),
)


@pytest.fixture(scope="module")
def store():
    s = load("tricky")
    yield s
    s.close()


def test_report_and_drill_sentences_use_the_stores_names(store):
    ru = (
        "Период с 01.11.2026 по 30.11.2026; воронки: Общая, Опт; "
        "ключевые стадии: Предложение принято; ключевые статусы: Некачественный лид; "
        "отделы: Продажи Москва; менеджеры: Ирина Петрова; звонки от 10 до 600 с; "
        "глазами: Вера Москвина"
    )
    en = (
        "Period from 2026-11-01 to 2026-11-30; pipelines: Общая, Опт; "
        "key stages: Предложение принято; key statuses: Некачественный лид; "
        "departments: Продажи Москва; managers: Ирина Петрова; calls of 10 to 600 s; "
        "as seen by Вера Москвина"
    )
    report = build_report(store, FLT)
    assert (report["description_ru"], report["description_en"]) == (ru, en)
    d = drill(store, FLT, "deals_won", user_id=4)
    assert (d["description"], d["description_en"]) == (ru, en)
    assert describe_filter(store, FLT, "en") == en


def test_sentence_without_names_and_with_other_rows():
    flt = ReportFilter(
        date(2026, 11, 1), date(2026, 11, 30), pipelines=(0,), sections=("deals",), by="source"
    )
    assert flt.describe("en") == (
        "Period from 2026-11-01 to 2026-11-30; pipelines: General; sections: deals; rows by source"
    )
    assert flt.describe("ru") == (
        "Период с 01.11.2026 по 30.11.2026; воронки: Общая; разделы: сделки; строки по источникам"
    )


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_error_has_both_languages_with_the_same_params():
    for code, (ru, en) in MESSAGES.items():
        assert placeholders(ru) == placeholders(en), code
        assert re.search("[а-я]", ru), code
        assert not re.search("[а-я]", en), code


def test_errors_from_the_store_speak_both_languages(store):
    with pytest.raises(ReportInputError) as caught:
        build_report(store, ReportFilter(date(2026, 11, 1), date(2026, 11, 30), pipelines=(7,)))
    exc = caught.value
    assert (exc.code, exc.params) == ("unknown_pipeline", {"pipeline": 7, "choices": "0, 1"})
    assert str(exc) == "unknown pipeline 7; choose from 0, 1" == exc.message("en")
    assert exc.message("ru") == "нет воронки 7; есть: 0, 1"
    with pytest.raises(ReportInputError) as caught:
        ReportFilter(date(2026, 11, 30), date(2026, 11, 1)).validate()
    assert caught.value.message("ru") == (
        "период начинается позже, чем кончается: 2026-11-30 > 2026-11-01"
    )
    viewer = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), viewer=3)
    with pytest.raises(AccessDenied) as denied:
        drill(store, viewer, "deals_won", user_id=6)
    assert denied.value.code == "outside_scope"
    assert "вне" in denied.value.message("ru") and "outside" in str(denied.value)


def test_free_text_errors_stay_as_given():
    exc = ReportInputError("something odd")
    assert (exc.code, str(exc), exc.message("ru")) == ("other", "something odd", "something odd")
