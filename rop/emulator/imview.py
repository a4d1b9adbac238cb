"""A user's notifications as Bitrix24's notification panel shows them (test API).

``GET /_emulator/im/<user_id>``: each live notification of ``inbox()`` with
its BB-code rendered the way the messenger renders it (b, i, u, s, color,
url, br; anything else stays text) and its ATTACH card (MESSAGE, GRID,
LINK, DELIMITER blocks). Every piece of text is escaped first, so what a
sender put in a message can only ever be text here.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

_SIMPLE = {"b": "strong", "i": "em", "u": "u", "s": "s"}
_URL = re.compile(r"\[url=([^\]\s]+)\](.*?)\[/url\]", re.IGNORECASE | re.DOTALL)
_BARE_URL = re.compile(r"\[url\](.*?)\[/url\]", re.IGNORECASE | re.DOTALL)
_COLOR = re.compile(r"\[color=(#[0-9a-fA-F]{3,6})\](.*?)\[/color\]", re.IGNORECASE | re.DOTALL)


def _href(url: str) -> str:
    return url if url.startswith(("http://", "https://", "/")) else "#"


def bb_html(text: str) -> str:
    """BB-code -> HTML, after escaping: tags become markup, nothing else does."""
    out = escape(str(text or ""), quote=True)
    out = re.sub(r"\[br\]", "<br>", out, flags=re.IGNORECASE).replace("\n", "<br>")
    for tag, html_tag in _SIMPLE.items():
        out = re.sub(rf"\[{tag}\](.*?)\[/{tag}\]", rf"<{html_tag}>\1</{html_tag}>", out,
                     flags=re.IGNORECASE | re.DOTALL)  # fmt: skip
    out = _COLOR.sub(r'<span style="color:\1">\2</span>', out)
    out = _URL.sub(lambda m: f'<a href="{_href(m.group(1))}">{m.group(2)}</a>', out)
    return _BARE_URL.sub(lambda m: f'<a href="{_href(m.group(1))}">{m.group(1)}</a>', out)


def _block(block: dict[str, Any]) -> str:
    kind, value = next(iter(block.items()))
    if kind == "MESSAGE":
        return f'<div class="att-msg">{bb_html(value)}</div>'
    if kind == "DELIMITER":
        return '<hr class="att-delim">'
    if kind == "LINK":
        name = escape(str(value.get("NAME") or value.get("LINK") or ""))
        return f'<div class="att-link"><a href="{escape(_href(str(value.get("LINK", ""))))}">{name}</a></div>'
    if kind == "GRID":
        rows = "".join(
            f'<tr class="{escape(str(item.get("COLOR_TOKEN") or ""))}"><td class="n">'
            f'{bb_html(item.get("NAME", ""))}</td><td class="v">{bb_html(item.get("VALUE", ""))}</td></tr>'
            for item in value
        )
        return f'<table class="att-grid">{rows}</table>'
    return f'<div class="att-other">{escape(kind)}</div>'


def attach_html(attach: Any) -> str:
    if not attach:
        return ""
    blocks = attach.get("BLOCKS", []) if isinstance(attach, dict) else attach
    token = attach.get("COLOR_TOKEN", "base") if isinstance(attach, dict) else "base"
    inner = "".join(_block(b) for b in blocks if isinstance(b, dict) and b)
    return f'<div class="attach {escape(str(token))}">{inner}</div>'


_CSS = """
body{margin:0;background:#eef2f4;font:14px/1.45 "Helvetica Neue",Arial,sans-serif;color:#333}
.panel{width:460px;margin:16px auto;background:#fff;border-radius:12px;box-shadow:0 2px 12px #0002}
.head{padding:14px 18px;border-bottom:1px solid #edf0f2;font-weight:bold;font-size:16px}
.note{display:flex;gap:12px;padding:14px 18px;border-bottom:1px solid #edf0f2}
.icon{flex:none;width:36px;height:36px;border-radius:50%;background:#2fc6f6;color:#fff;
 display:flex;align-items:center;justify-content:center;font-weight:bold}
.body{flex:1;min-width:0}.when{color:#a8adb4;font-size:12px;margin-top:6px}
.attach{margin-top:8px;padding-left:10px;border-left:3px solid #c6cdd3}
.attach.primary{border-left-color:#2fc6f6}.att-msg{margin:4px 0}
.att-grid{border-collapse:collapse;width:100%;margin:2px 0 6px}
.att-grid td{padding:2px 0;vertical-align:top}.att-grid td.n{color:#80868e;padding-right:10px;width:55%}
.att-grid tr.alert td.v{color:#d0361b;font-weight:bold}
.att-delim{border:0;border-top:1px solid #dfe3e6;margin:8px 0}
a{color:#2067b0;text-decoration:none}
"""


def page(user_id: int, notes: list[dict[str, Any]]) -> str:
    items = "".join(
        '<div class="note"><div class="icon">R</div><div class="body">'
        f'<div class="msg">{bb_html(n.get("message", ""))}</div>{attach_html(n.get("attach"))}'
        f'<div class="when">tag {escape(str(n.get("tag") or "—"))}</div></div></div>'
        for n in reversed(notes)
    )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>Notifications of {user_id}'
        f'</title><style>{_CSS}</style></head><body><div class="panel">'
        f'<div class="head">Notifications</div>{items or "<p>none</p>"}</div></body></html>'
    )
