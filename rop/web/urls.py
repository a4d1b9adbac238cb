"""Every URL the pages link to is built here, never in templates.

A page's filter travels as its canonical query pairs (``WebFilter.pairs()``);
each builder appends its own parameters, so a drill-down URL is the page's
own filter plus a figure name and a row, never SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import quote, urlencode

Pairs = Sequence[tuple[str, str]]


@lru_cache(maxsize=256)
def _encode(pairs: tuple[tuple[str, str], ...]) -> str:
    # A report page links every cell with the same filter: encode it once.
    return urlencode(pairs)


class Urls:
    """URL builder, mounted at ``root`` (empty for a server at /)."""

    def __init__(self, root: str = "") -> None:
        self.root = root.rstrip("/")

    def _join(self, path: str, pairs: Pairs) -> str:
        query = _encode(tuple(pairs))
        return f"{self.root}{path}" + (f"?{query}" if query else "")

    def static(self, name: str) -> str:
        return f"{self.root}/static/{name}"

    def home(self, lang: str | None = None) -> str:
        return self._join("/report", [("lang", lang)] if lang else [])

    def report(self, pairs: Pairs, fmt: str = "") -> str:
        """The report page; ``fmt`` is "", "json", "csv" or "xlsx"."""
        return self._join("/report" + (f".{fmt}" if fmt else ""), pairs)

    def with_lang(self, pairs: Pairs, lang: str) -> str:
        kept = [(k, v) for k, v in pairs if k != "lang"]
        return self.report([*kept, ("lang", lang)])

    def drill(
        self,
        pairs: Pairs,
        figure: str,
        user: int | None = None,
        department: int | None = None,
        key: str | int | None = None,
        sort: str | None = None,
        desc: bool = False,
        offset: int = 0,
        fmt: str = "",
    ) -> str:
        """The records behind one figure of one row (or of the total)."""
        # Built by hand: this runs for every cell of the table.
        extra = [f"figure={quote(figure, safe='')}"]
        if user is not None:
            extra.append(f"user={int(user)}")
        if department is not None:
            extra.append(f"dept={int(department)}")
        if key is not None:
            extra.append(f"row={quote(str(key), safe='')}")
        if sort:
            extra.append(f"sort={quote(sort, safe='')}")
            if desc:
                extra.append("desc=1")
        if offset:
            extra.append(f"offset={int(offset)}")
        base = _encode(tuple(pairs))
        path = f"{self.root}/drill" + (f".{fmt}" if fmt else "")
        return f"{path}?{base}&{'&'.join(extra)}" if base else f"{path}?{'&'.join(extra)}"

    def drill_base(self) -> str:
        """The drill-down's path: the page keeps an open panel as ``drill=<its query>``."""
        return f"{self.root}/drill"

    def api_sync(self, viewer: int | None = None) -> str:
        """The sync API; ``viewer`` (demo mode) decides whether its counts are shown."""
        tail = f"?viewer={int(viewer)}" if viewer is not None else ""
        return f"{self.root}/api/sync{tail}"
