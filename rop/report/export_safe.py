"""CRM strings made safe for files: CSV fields, XLSX sheet names, download names.

Every CRM string is data. A spreadsheet reads a CSV field that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula, so such
a field gets a leading apostrophe (OWASP "CSV Injection"); a real number is
written as a number and never touched. Sheet names and file names are built
from CRM identifiers (a stage ``C3:СЧЁТ``), so they are cleaned here too.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

# What a spreadsheet takes as the start of a formula (OWASP CSV Injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Bidi controls reorder what follows them: a name with U+202E reads backwards.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")

# Excel refuses these in a sheet name, and more than 31 characters.
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
SHEET_NAME_MAX = 31


def csv_text(value: str) -> str:
    """A text field as a spreadsheet shows it: a formula-looking start is neutralised."""
    if value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def strip_bidi(text: str) -> str:
    return BIDI_CONTROLS.sub("", text)


def sheet_name(text: str, taken: set[str] | None = None) -> str:
    """A name Excel accepts: no ``[]:*?/\\``, at most 31 characters, not empty,
    no apostrophe at either end, and unique (case-insensitive) in ``taken``."""
    name = _SHEET_FORBIDDEN.sub("_", strip_bidi(text)).strip().strip("'")
    name = name[:SHEET_NAME_MAX].strip() or "Sheet"
    if name.lower() == "history":  # reserved by Excel
        name = "History_"
    taken_lower = {t.lower() for t in taken or set()}
    candidate, n = name, 1
    while candidate.lower() in taken_lower:
        n += 1
        suffix = f" ({n})"
        candidate = name[: SHEET_NAME_MAX - len(suffix)] + suffix
    if taken is not None:
        taken.add(candidate)
    return candidate


def _clean(text: str) -> str:
    """No bidi or other control characters, no path separators or quotes."""
    text = strip_bidi(text)
    text = "".join(
        "_" if unicodedata.category(ch).startswith("C") or ch in '/\\"<>|?*:;,' else ch
        for ch in text
    )
    return re.sub(r"_+", "_", text).strip(" ._")


# Russian letters spelled in Latin ones, so an ASCII file name still reads.
_LATIN = "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch _ y _ e yu ya"
_TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя", _LATIN.split(" "), strict=True))


def _transliterate(text: str) -> str:
    out = []
    for ch in text:
        latin = _TRANSLIT.get(ch.lower())
        if latin is None:
            out.append(ch)
        else:
            out.append(latin.capitalize() if ch.isupper() else latin)
    return "".join(out)


def ascii_file_name(name: str) -> str:
    """The file name for old clients: ASCII letters, digits, ``-_.``, nothing else."""
    latin = _transliterate(_clean(name))
    folded = unicodedata.normalize("NFKD", latin).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", folded)
    slug = re.sub(r"_+", "_", slug).strip("._") or "export"
    return slug


def unicode_file_name(name: str) -> str:
    """The file name as the reader should see it: the CRM's letters kept, controls gone."""
    return _clean(name) or "export"


def content_disposition(name: str) -> str:
    """An attachment header that is Latin-1 whatever ``name`` holds (RFC 6266):
    an ASCII ``filename`` for every client and the real one as ``filename*`` (RFC 5987)."""
    ascii_name = ascii_file_name(name)
    full = unicode_file_name(name)
    header = f'attachment; filename="{ascii_name}"'
    if full != ascii_name:
        header += f"; filename*=UTF-8''{quote(full, safe='')}"
    return header
