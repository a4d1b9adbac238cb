"""The report's "stages" object as terminal tables (``rop report`` sections).

Each number's figure key is what ``rop drill`` takes to list its records.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rop.report.formatting import show


def _name(stages: dict[str, Any], p: dict[str, Any], sid: str, lang: str) -> str:
    marker = stages["markers"].get(sid)
    if marker:
        return marker["name_ru" if lang == "ru" else "name_en"]
    return next((s["name"] for s in p["stages"] if s["id"] == sid), sid)


def print_stages(console: Console, report: dict[str, Any], lang: str) -> None:
    stages = report.get("stages") or {}
    ru = lang == "ru"
    for kind, title in (("deals", ("Сделки", "Deals")), ("leads", ("Лиды", "Leads"))):
        for p in (stages.get(kind) or {}).get("pipelines", []):
            head = f"{title[0 if ru else 1]}" + (f": {p['name']}" if p["name"] else "")
            cells = {(c["from"], c["to"]): c["count"] for c in p["matrix"]["cells"]}
            if cells:
                used_rows = [r for r in p["matrix"]["rows"] if r in p["matrix"]["row_totals"]]
                used_cols = [c for c in p["matrix"]["columns"]
                             if any(k[1] == c for k in cells)]  # fmt: skip
                t = Table(title=("Движение по стадиям — " if ru else "Stage movement — ") + head)
                t.add_column("Было \\ Стало" if ru else "From \\ To")
                for c in used_cols:
                    t.add_column(Text(_name(stages, p, c, lang)), justify="right")
                t.add_column("Всего" if ru else "Total", justify="right")
                for r in used_rows:
                    t.add_row(
                        Text(_name(stages, p, r, lang)),
                        *[str(cells.get((r, c), "")) for c in used_cols],
                        str(p["matrix"]["row_totals"][r]),
                    )
                console.print(t)
            t = Table(title=("Время в стадии, дней — " if ru else "Time in stage, days — ") + head)
            for label in (("Стадия", "Stage"), ("Ушли", "Left"), ("Среднее", "Mean"),
                          ("Медиана", "Median"), ("Сейчас", "Now in"),
                          ("Среднее сейчас", "Mean now"), ("Дошли", "Reached"),
                          ("Дальше", "Went on")):  # fmt: skip
                t.add_column(
                    label[0 if ru else 1], justify="left" if label[1] == "Stage" else "right"
                )
            funnel = {f["stage"]: f for f in p["funnel"]}
            for s in p["time"]:
                f = funnel.get(s["stage"], {})
                mark = (" ◀ " + ("узкое место" if ru else "bottleneck")) if s["bottleneck"] else ""
                t.add_row(
                    Text(s["name"] + mark), str(s["count"]), show(s["mean_days"], "days"),
                    show(s["median_days"], "days"), str(s["open_count"]),
                    show(s["open_mean_days"], "days"), str(f.get("reached", "")),
                    show(f.get("share"), "share"),
                )  # fmt: skip
            console.print(t)
            stuck = p["stuck"]
            word = "Зависшие" if ru else "Stuck"
            console.print(
                Text(f"{word} (> {stuck['days']} d): {stuck['count']}  [{stuck['figure']}]")
            )
