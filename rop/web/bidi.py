"""CRM strings isolated from the text around them (Unicode bidi).

A user named "Анна\u202e" (RIGHT-TO-LEFT OVERRIDE) would otherwise turn the
rest of a sentence around. Every CRM string the page shows sits in a
``<bdi>`` element: a plain value through the ``bdi`` template filter; a
sentence built around names (the filter sentence, "Итого: <отдел>") has its
names wrapped in FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE by
:func:`isolate` when composed, and :func:`html` turns each pair into
``<bdi>...</bdi>`` after escaping. Text outside HTML (JSON, exports) keeps
the plain names.
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

FSI = "\u2068"
PDI = "\u2069"
# The isolate controls themselves: removed from a name so that its pair stays balanced.
_ISOLATES = re.compile("[\u2066-\u2069]")


def isolate(name: Any) -> str:
    """``name`` between FSI and PDI, for a sentence that :func:`html` will show."""
    return FSI + _ISOLATES.sub("", str(name)) + PDI


def isolated_names(names: dict[Any, str]) -> dict[Any, str]:
    return {key: isolate(value) for key, value in names.items()}


def plain(text: str) -> str:
    """The text without our isolate marks (for JSON and exports)."""
    return text.replace(FSI, "").replace(PDI, "")


def html(text: Any) -> Markup:
    """Escaped text with each FSI...PDI pair as ``<bdi>...</bdi>``; text whose
    marks do not pair up is isolated whole instead."""
    value = "" if text is None else str(text)
    if value.count(FSI) != value.count(PDI) or _unbalanced(value):
        return bdi(plain(value))
    out = str(escape(value)).replace(FSI, "<bdi>").replace(PDI, "</bdi>")
    return Markup(out)  # noqa: S704 - escaped above; only our own tags are added


def bdi(value: Any) -> Markup:
    """One CRM value, escaped, in its own ``<bdi>``."""
    if value is None:
        return Markup("")
    return Markup("<bdi>") + escape(value) + Markup("</bdi>")


def _unbalanced(value: str) -> bool:
    depth = 0
    for ch in value:
        if ch == FSI:
            depth += 1
        elif ch == PDI:
            depth -= 1
            if depth < 0:
                return True
    return depth != 0
