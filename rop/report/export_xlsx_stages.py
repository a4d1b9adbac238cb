"""The report's "stages" object as XLSX sheets: the movement matrix (one line per
cell, with its figure key for ``rop drill``) and time in stage with the funnel and
stuck counts. CRM names are written as text, never as formulas."""

from __future__ import annotations

from typing import Any

from rop.report.export_safe import sheet_name

_HEAD = {
    "matrix": (
        ("Воронка", "Было", "Стало", "Сделок", "Направление", "Ключ"),
        ("Pipeline", "From", "To", "Records", "Direction", "Key"),
    ),
    "time": (
        ("Воронка", "Стадия", "Ушли", "Среднее, дней", "Медиана, дней", "Сейчас в стадии",
         "Среднее сейчас, дней", "Медиана сейчас, дней", "Узкое место", "Дошли",
         "Пошли дальше", "Конверсия", "Ключ"),
        ("Pipeline", "Stage", "Left", "Mean, days", "Median, days", "In stage now",
         "Mean now, days", "Median now, days", "Bottleneck", "Reached", "Went on",
         "Conversion", "Key"),
    ),
}  # fmt: skip


def _name(stages: dict, p: dict, sid: str, lang: str) -> str:
    marker = stages["markers"].get(sid)
    if marker:
        return str(marker["name_ru" if lang == "ru" else "name_en"])
    return str(next((s["name"] for s in p["stages"] if s["id"] == sid), sid))


def _num(sheet: Any, r: int, c: int, value: Any, fmt: Any) -> None:
    if value is None:
        sheet.write_blank(r, c, None, fmt)
    else:
        sheet.write_number(r, c, value, fmt)


def stage_sheets(book: Any, report: dict, lang: str, st: Any, taken: set[str]) -> None:
    """Two sheets per entity (deals, leads) that the report has stage analytics for."""
    stages = report.get("stages") or {}
    ru = lang == "ru"
    for kind, (kru, ken) in (("deals", ("Стадии", "Stages")), ("leads", ("Статусы", "Statuses"))):
        pipes = (stages.get(kind) or {}).get("pipelines") or []
        if not pipes:
            continue
        base = kru if ru else ken
        m = book.add_worksheet(sheet_name(f"{base} — {'матрица' if ru else 'matrix'}", taken))
        t = book.add_worksheet(sheet_name(f"{base} — {'время' if ru else 'time'}", taken))
        for sheet, key in ((m, "matrix"), (t, "time")):
            for c, text in enumerate(_HEAD[key][0 if ru else 1]):
                sheet.write_string(0, c, text, st.head)
            sheet.freeze_panes(1, 0)
            sheet.set_column(0, 2, 24)
        r = 1
        for p in pipes:
            for cell in p["matrix"]["cells"]:
                m.write_string(r, 0, str(p["name"]))
                m.write_string(r, 1, _name(stages, p, cell["from"], lang))
                m.write_string(r, 2, _name(stages, p, cell["to"], lang))
                m.write_number(r, 3, cell["count"], st.number["count"])
                m.write_string(r, 4, cell["direction"])
                m.write_string(r, 5, cell["figure"])
                r += 1
        r = 1
        days, share = st.number["days"], st.number["share"]
        for p in pipes:
            funnel = {f["stage"]: f for f in p["funnel"]}
            for s in p["time"]:
                f = funnel.get(s["stage"], {})
                t.write_string(r, 0, str(p["name"]))
                t.write_string(r, 1, str(s["name"]))
                _num(t, r, 2, s["count"], st.number["count"])
                _num(t, r, 3, s["mean_days"], days)
                _num(t, r, 4, s["median_days"], days)
                _num(t, r, 5, s["open_count"], st.number["count"])
                _num(t, r, 6, s["open_mean_days"], days)
                _num(t, r, 7, s["open_median_days"], days)
                t.write_string(r, 8, ("да" if ru else "yes") if s["bottleneck"] else "")
                _num(t, r, 9, f.get("reached"), st.number["count"])
                _num(t, r, 10, f.get("went_on"), st.number["count"])
                _num(t, r, 11, f.get("share"), share)
                t.write_string(r, 12, s["figure"])
                r += 1
            t.write_string(r, 1, ("Зависшие" if ru else "Stuck") + f" > {p['stuck']['days']}")
            _num(t, r, 2, p["stuck"]["count"], st.number["count"])
            t.write_string(r, 0, str(p["name"]))
            t.write_string(r, 12, p["stuck"]["figure"])
            r += 1
