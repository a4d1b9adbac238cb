"""The digests settings page: subscriptions, a form to add one, the delivery log.

Thin: rop.digests does the work. A reader sees and manages their own
digests; a report administrator (or the local administrator, no viewer)
everyone's. Adding and removing are JSON POSTs (the page's static
digests.js sends them), so the same-origin guard applies; bad input is a
400 naming the problem, a refused one a 403.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from rop.web import i18n
from rop.web.context import Json, setup
from rop.web.errors import BadInput, WebError
from rop.web.jsonbody import json_object

MAX_BODY = 16 * 1024


def _sees_everyone(store: Any, portal: str, viewer: int | None) -> bool:
    from rop.report.scope import is_report_admin

    return viewer is None or is_report_admin(store, portal, viewer)


def _keep(request: Request, lang: str) -> list[tuple[str, str]]:
    viewer = request.query_params.get("viewer")
    return [("lang", lang)] + ([("viewer", viewer)] if viewer else [])


def digests_page(request: Request) -> Response:
    from rop.digests.sends import log_lines
    from rop.digests.subscriptions import CHANNELS, PERIODS, listed

    store, opts, wf = setup(request)
    portal, viewer, lang = str(opts.portal), wf.viewer, wf.lang
    everyone = _sees_everyone(store, portal, viewer)
    subs = listed(store, portal, None if everyone else viewer)
    users = {
        int(uid): " ".join(p for p in (name, last) if p) or f"#{uid}"
        for uid, name, last, active in store.query(
            "SELECT id, name, last_name, active FROM users WHERE portal = ? ORDER BY id", [portal]
        )
        if everyone and active is not False or uid == viewer
    }
    lines = [
        line for line in log_lines(store, portal, 200)
        if everyone or line["user_id"] == viewer
    ][:50]  # fmt: skip
    urls = request.app.state.urls
    keep = _keep(request, lang)
    template = request.app.state.templates.get_template("digests.html")
    body = template.render({
        "request": request, "lang": lang, "t": i18n.translator(lang),
        "lang_url": urls.digests([p for p in keep if p[0] != "lang"] +
                                 [("lang", "en" if lang == "ru" else "ru")]),
        "report_url": urls.report([*keep, ("period", "this_month")]),
        "add_url": urls.api_digests(keep),
        "remove_url": lambda sid: urls.api_digests(keep, f"{sid}/remove"),
        "subs": subs, "users": users, "everyone": everyone, "viewer": viewer,
        "periods": PERIODS, "channels": CHANNELS, "lines": lines,
        "vt": urls.viewer_token(),
    })  # fmt: skip
    return HTMLResponse(body)


async def _body(request: Request) -> dict[str, Any]:
    return await json_object(request, MAX_BODY)


def _text(data: dict[str, Any], name: str, default: str = "") -> str:
    value = data.get(name)
    return default if value is None or value == "" else str(value).strip()


def _problem(exc: Exception) -> WebError:
    from rop.digests.errors import DigestDenied

    if isinstance(exc, DigestDenied):
        return WebError(403, str(exc), "fix_filter")
    return BadInput(str(exc))


async def digests_add(request: Request) -> Response:
    """{"user_id", "frequency", "weekday", "month_day", "at_time", "period",
    "channels": [...], "xlsx", "any_day", "language"}; the viewer's rights decide."""
    from rop.digests.errors import DigestDenied, DigestInputError
    from rop.digests.subscriptions import add, make

    store, opts, wf = setup(request)
    portal, viewer = str(opts.portal), wf.viewer
    data = await _body(request)
    reader = _text(data, "user_id", str(viewer or ""))
    if not reader.isdigit():
        raise BadInput(f"user_id: {reader!r} is not a user ID", field="user_id", value=reader)
    channels = data.get("channels")
    if not isinstance(channels, list | str):
        raise BadInput("channels: a list of chat, email")
    try:
        sub = make(
            portal, int(reader), frequency=_text(data, "frequency", "weekly"),
            weekday=_text(data, "weekday") or None, month_day=_text(data, "month_day") or None,
            at_time=_text(data, "at_time", "09:00"), workdays_only=not data.get("any_day"),
            period=_text(data, "period") or None, channels=channels,
            xlsx=bool(data.get("xlsx")), language=_text(data, "language", wf.lang),
        )  # fmt: skip
        saved = add(store, sub, actor=viewer)
    except (DigestInputError, DigestDenied) as exc:
        raise _problem(exc) from None
    return Json({"subscription": saved.as_json()})


async def digests_remove(request: Request) -> Response:
    from rop.digests.errors import DigestDenied, DigestInputError
    from rop.digests.subscriptions import remove

    store, opts, wf = setup(request)
    raw = request.path_params["sid"]
    if not str(raw).isdigit():
        raise BadInput(f"digest {raw!r} is not a number")
    try:
        gone = remove(store, str(opts.portal), int(raw), actor=wf.viewer)
    except (DigestInputError, DigestDenied) as exc:
        raise _problem(exc) from None
    return Json({"removed": gone.as_json()})
