"""Minimal record cards at the portal's UI paths, so report links open something.

Every value is CRM data and goes through html.escape.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from rop.emulator.data import Portal

# URL segment -> (kind, how to title the card)
CARD_KINDS = {"deal": "deal", "lead": "lead", "company": "company", "contact": "contact"}


def _title(kind: str, record: dict[str, Any]) -> str:
    if kind in ("deal", "company") or (kind == "lead" and record.get("TITLE")):
        return str(record.get("TITLE") or f"{kind} #{record.get('ID')}")
    name = " ".join(str(record.get(k) or "") for k in ("NAME", "LAST_NAME")).strip()
    return name or f"{kind} #{record.get('ID')}"


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def render_card(portal: Portal, kind: str, rid: int) -> str | None:
    record = portal.get(kind, rid)
    if record is None:
        return None
    title = _title(kind, record)
    rows = "\n".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(_value(v))}</td></tr>" for k, v in record.items()
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} - {escape(portal.domain)}</title></head>\n<body>\n"
        f'<p class="kind">{escape(kind)}</p>\n<h1>{escape(title)}</h1>\n'
        f'<p>ID <span id="card-id">{rid}</span></p>\n'
        f'<table class="fields">\n{rows}\n</table>\n</body></html>\n'
    )
