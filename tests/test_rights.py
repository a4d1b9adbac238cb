"""The viewer's scope limits rows, totals and drill-downs alike (METRICS.md "Who may see what").

Portal `tricky`: departments 1 Компания (head 1) > 2 Продажи (head 2) > 3 Москва
(head 3) and 4 Регионы (head 6). Users 4 (dept 3), 5 dismissed (dept 4),
7 (depts 4 and 3); 99 is unknown to user.get; 1 is a portal admin.
"""

from __future__ import annotations

from datetime import date

import pytest

from rop.report.build import build_report, drill
from rop.report.filter import AccessDenied, ReportFilter, ReportInputError
from rop.report.scope import (
    clear_override,
    list_rights,
    set_override,
    set_report_admin,
    viewer_scope,
)
from tests.conftest import ENGINES, store_target
from tests.fixtures.portals import load

P = "tricky.bitrix24.ru"


def nov(viewer):
    return ReportFilter(
        date(2026, 11, 1), date(2026, 11, 30), viewer=viewer, today=date(2026, 11, 27)
    )


@pytest.fixture(params=ENGINES)
def store(request, tmp_path):
    s = load("tricky", store_target(request.param, tmp_path, request))
    yield s
    s.close()


def visible(store, viewer):
    scope = viewer_scope(store, P, viewer)
    return {u for u in (1, 2, 3, 4, 5, 6, 7, 99) if scope.sees(u)}


def test_scopes_by_role(store):
    assert visible(store, 1) == {1, 2, 3, 4, 5, 6, 7, 99}  # portal admin
    assert visible(store, 2) == {2, 3, 4, 5, 6, 7}  # head of Продажи and its sub-departments
    assert visible(store, 3) == {3, 4, 7}  # head of one sub-department (7 is also in it)
    assert visible(store, 6) == {5, 6, 7}
    assert visible(store, 4) == {4}  # a manager sees themselves


def test_head_of_one_sub_department_sees_only_its_rows_and_totals(store):
    r = build_report(store, nov(3))
    assert {row["user_id"] for row in r["rows"]} == {4, 7}
    assert r["total"]["figures"]["deals_new"] == 3  # D2, D9 of 4 and D5 of 7; not D7, D8
    assert {d["department_id"] for d in r["departments"]} == {3, 4}
    assert sorted(x["id"] for x in drill(store, nov(3), "deals_new")["records"]) == [2, 5, 9]


def test_drill_outside_scope_is_refused_not_emptied(store):
    with pytest.raises(AccessDenied):
        drill(store, nov(3), "deals_new", user_id=5)
    with pytest.raises(AccessDenied):
        drill(store, nov(4), "deals_overdue", user_id=99)
    # Inside the scope the same drill answers.
    assert drill(store, nov(6), "deals_overdue", user_id=5)["total_records"] == 1


def test_unknown_viewer_is_bad_input(store):
    with pytest.raises(ReportInputError, match="no user 42"):
        build_report(store, nov(42))


def test_overrides_widen_and_narrow(store):
    set_override(store, P, 4, 7, True)
    set_override(store, P, 3, 4, False)
    assert visible(store, 4) == {4, 7}
    assert visible(store, 3) == {3, 7}
    with pytest.raises(AccessDenied):
        drill(store, nov(3), "deals_new", user_id=4)
    rights = list_rights(store, P)
    assert {"viewer_id": 4, "user_id": 7, "allow": True} in rights["overrides"]
    assert clear_override(store, P, 3, 4) == 1
    assert visible(store, 3) == {3, 4, 7}
    # An admin can be narrowed too.
    set_override(store, P, 1, 99, False)
    assert 99 not in visible(store, 1)
    with pytest.raises(ReportInputError):
        set_override(store, P, 4, 12345, True)


def test_report_admin_sees_everyone(store):
    set_report_admin(store, P, 4, True)
    assert visible(store, 4) == {1, 2, 3, 4, 5, 6, 7, 99}
    assert list_rights(store, P)["report_admins"] == [4]
    set_report_admin(store, P, 4, False)
    assert visible(store, 4) == {4}


def test_filter_managers_cannot_escape_the_scope(store):
    # A manager outside the scope is refused (issue 9), not silently dropped:
    # the filter's sentence would otherwise name them.
    outside = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), viewer=4, managers=(4, 7))
    with pytest.raises(AccessDenied, match="user 7"):
        build_report(store, outside)
    flt = ReportFilter(date(2026, 11, 1), date(2026, 11, 30), viewer=4, managers=(4,))
    r = build_report(store, flt)
    assert {row["user_id"] for row in r["rows"]} == {4}
    assert r["total"]["figures"]["deals_new"] == 2
