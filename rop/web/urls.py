"""Every URL the pages link to is built here, never in templates.

A page's filter travels as its canonical query pairs (``WebFilter.pairs()``);
each builder appends its own parameters, so a drill-down URL is the page's
own filter plus a figure name and a row, never SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

Pairs = Sequence[tuple[str, str]]


class Urls:
    """URL builder, mounted at ``root`` (empty for a server at /)."""

    def __init__(self, root: str = "") -> None:
        self.root = root.rstrip("/")

    def _join(self, path: str, pairs: Pairs) -> str:
        query = urlencode(list(pairs))
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
        extra: list[tuple[str, str]] = [("figure", figure)]
        if user is not None:
            extra.append(("user", str(user)))
        if department is not None:
            extra.append(("dept", str(department)))
        if key is not None:
            extra.append(("row", str(key)))
        if sort:
            extra.append(("sort", sort))
            if desc:
                extra.append(("desc", "1"))
        if offset:
            extra.append(("offset", str(offset)))
        return self._join("/drill" + (f".{fmt}" if fmt else ""), [*pairs, *extra])

    def api_sync(self) -> str:
        return f"{self.root}/api/sync"
