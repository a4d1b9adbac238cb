"""Every URL the pages link to is built here, never in templates.

A page's filter travels as its canonical query pairs (``WebFilter.pairs()``);
each builder appends its own parameters, so a drill-down URL is the page's
own filter plus a figure name and a row, never SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from functools import lru_cache
from urllib.parse import quote, urlencode

Pairs = Sequence[tuple[str, str]]

# Application mode: the viewer's signed token (rop/web/appmode/viewer_token.py)
# for this request. Third-party cookies are blocked in Bitrix24's frame, so
# every URL a page builds carries it; set per request by the app-mode gate.
VIEWER_TOKEN: ContextVar[str | None] = ContextVar("rop_viewer_token", default=None)
# Whether that viewer is a portal administrator: pages link the access settings for them.
VIEWER_ADMIN: ContextVar[bool] = ContextVar("rop_viewer_admin", default=False)


def _with_token(url: str) -> str:
    token = VIEWER_TOKEN.get()
    if not token:
        return url
    return url + ("&" if "?" in url else "?") + "vt=" + quote(token, safe="")


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
        return _with_token(f"{self.root}{path}" + (f"?{query}" if query else ""))

    @staticmethod
    def viewer_token() -> str | None:
        """The app-mode viewer token of this request (forms carry it as a hidden field)."""
        return VIEWER_TOKEN.get()

    def static(self, name: str) -> str:
        return f"{self.root}/static/{name}"

    def home(self, lang: str | None = None) -> str:
        return self._join("/report", [("lang", lang)] if lang else [])

    def report(self, pairs: Pairs, fmt: str = "") -> str:
        """The report page; ``fmt`` is "", "json", "csv" or "xlsx"."""
        return self._join("/report" + (f".{fmt}" if fmt else ""), pairs)

    def manager(self, pairs: Pairs, user_id: int, fmt: str = "") -> str:
        """One manager's page (issue 15) under the report's filter; ``fmt`` "" or "json"."""
        return self._join(f"/manager/{int(user_id)}" + (f".{fmt}" if fmt else ""), pairs)

    def quality(self, pairs: Pairs, fmt: str = "") -> str:
        """The data-quality panel (an HTML fragment); ``fmt`` "json" or "xlsx"."""
        return self._join("/quality" + (f".{fmt}" if fmt else ""), pairs)

    def stages(self, pairs: Pairs) -> str:
        """The report page's stage section alone (rop.web.stages_section)."""
        return self._join("/report/stages", pairs)

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
        none: bool = False,
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
        if none:
            # The "—" row (no department/source/pipeline): a flag, not a key value.
            extra.append("none=1")
        if sort:
            extra.append(f"sort={quote(sort, safe='')}")
            if desc:
                extra.append("desc=1")
        if offset:
            extra.append(f"offset={int(offset)}")
        base = _encode(tuple(pairs))
        path = f"{self.root}/drill" + (f".{fmt}" if fmt else "")
        url = f"{path}?{base}&{'&'.join(extra)}" if base else f"{path}?{'&'.join(extra)}"
        return _with_token(url)

    def drill_base(self) -> str:
        """The drill-down's path: the page keeps an open panel as ``drill=<its query>``."""
        # No viewer token here: the query the page keeps is a drill-down link's
        # own, which carries it already.
        return f"{self.root}/drill"

    def api_sync(self, viewer: int | None = None) -> str:
        """The sync API; ``viewer`` (demo mode) decides whether its counts are shown."""
        tail = f"?viewer={int(viewer)}" if viewer is not None else ""
        return _with_token(f"{self.root}/api/sync{tail}")

    def app_status(self, lang: str) -> str:
        """Application mode: the portal's state and its first copy's progress."""
        return _with_token(f"{self.root}/app/status?lang={quote(lang, safe='')}")

    def data_version(self) -> str:
        """Application mode: the fingerprint of the portal's data the page polls."""
        return _with_token(f"{self.root}/api/data-version")

    def app_page(self) -> str:
        """Application mode: the handler URL Bitrix24 opens (and placements point to)."""
        return f"{self.root}/app"

    def app_rights(self, lang: str) -> str:
        """Application mode: the access settings page (and its POST)."""
        return _with_token(f"{self.root}/app/rights?lang={quote(lang, safe='')}")

    def app_rights_link(self, lang: str) -> str | None:
        """The access settings page, for a portal administrator in the portal; else None."""
        return self.app_rights(lang) if VIEWER_TOKEN.get() and VIEWER_ADMIN.get() else None

    def plans(self, pairs: Pairs, fmt: str = "") -> str:
        """The plans page; ``fmt`` "json" (its grid) or "template.xlsx"/"template.csv"."""
        if fmt.startswith("template"):
            return self._join("/plans/" + fmt, pairs)
        return self._join("/plans" + (f".{fmt}" if fmt else ""), pairs)

    def digests(self, pairs: Pairs) -> str:
        """The digests settings page."""
        return self._join("/settings/digests", pairs)

    def api_digests(self, pairs: Pairs, action: str = "") -> str:
        """Adding (POST JSON) a digest, or ``action`` "<id>/remove"."""
        return self._join("/api/digests" + (f"/{action}" if action else ""), pairs)

    def api_plans(self, pairs: Pairs, action: str = "") -> str:
        """Saving plans (POST JSON); ``action`` "copy" or "import"."""
        return self._join("/api/plans" + (f"/{action}" if action else ""), pairs)
