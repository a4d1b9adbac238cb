"""The drill-down: the records behind one number, as a panel, a page, JSON or a file."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from rop.report.formatting import unknown_user_name
from rop.web import bidi, i18n
from rop.web.cache import data_version
from rop.web.context import PAGE_SIZE, Json, setup
from rop.web.download import file_response, stream_response
from rop.web.errors import BadInput
from rop.web.options import Options, names
from rop.web.params import WebFilter, parse_int


def _drill_args(request: Request, lang: str) -> dict[str, Any]:
    q = request.query_params
    figure = q.get("figure")
    if not figure:
        raise BadInput(i18n.text("missing", lang, field="figure"))
    return {
        "figure": figure,
        "user": parse_int(q["user"], "user", lang) if q.get("user") else None,
        "department": parse_int(q["dept"], "dept", lang) if q.get("dept") else None,
        "key": q.get("row") or None,
        "none": q.get("none") in ("1", "true"),
        "sort": q.get("sort") or None,
        "desc": q.get("desc") in ("1", "true"),
        "offset": _offset(q, lang),
    }


# Far beyond any list (50 records a page), and small enough for DuckDB's OFFSET.
MAX_PAGE = 10**9


def _offset(q: Any, lang: str) -> int:
    """The first record shown: ``offset``, or ``page`` (1, 2, ...) from the pager's jump."""
    if q.get("page"):
        page = parse_int(q["page"], "page", lang, minimum=1)
        if page > MAX_PAGE:
            raise BadInput(i18n.text("bad_number", lang, value=q["page"], field="page"), "page")
        return (page - 1) * PAGE_SIZE
    return parse_int(q["offset"], "offset", lang) if q.get("offset") else 0


def _pages(total: int, offset: int, link: Any) -> list[dict[str, Any]]:
    """Page links: the first, the last, and two either side of the current one."""
    count = max(1, -(-total // PAGE_SIZE))
    current = offset // PAGE_SIZE + 1
    shown = sorted({1, count, *range(max(1, current - 2), min(count, current + 2) + 1)})
    out: list[dict[str, Any]] = []
    for number in shown:
        if out and number - out[-1]["number"] > 1:
            out.append({"gap": True, "number": number - 1})
        out.append(
            {
                "number": number,
                "current": number == current,
                "url": link(offset=(number - 1) * PAGE_SIZE),
                "gap": False,
            }
        )
    return out


def _list_args(request: Request, args: dict[str, Any], portal: str | None) -> dict[str, Any]:
    """The list's own arguments of rop.report.drill.drill and drill_chunks: which
    records (row, department, key), their order and the quality thresholds."""
    from rop.web.quality_view import quality_settings

    return {
        "user_id": args["user"],
        "department_id": args["department"],
        "key": args["key"],
        "none_row": args["none"],
        "portal": portal,
        "sort": args["sort"],
        "desc": args["desc"],
        "quality": quality_settings(request),
    }


def drill_context(request: Request, limit: int = PAGE_SIZE, export: bool = False) -> dict[str, Any]:
    from rop.report.build import drill

    store, opts, wf = setup(request)
    args = _drill_args(request, wf.lang)
    if export:
        args["offset"] = 0  # an export lists every record, whatever page is shown
    flt = wf.to_report_filter()
    cache_key = (
        "drill",
        tuple(wf.pairs(lang=False)),
        (opts.portal, wf.viewer),
        tuple(sorted(args.items())),
        limit,
        wf.today or opts.today(),
        data_version(store, opts.portal),
    )

    def run() -> dict[str, Any]:
        return drill(
            store,
            flt,
            args["figure"],
            offset=args["offset"],
            limit=limit,
            **_list_args(request, args, opts.portal),
        )

    # A page of records is cached; an export's list can be huge, so not.
    result = run() if export else request.app.state.cache.get_or_build(cache_key, run)
    urls = request.app.state.urls
    pairs = wf.pairs()
    target = {
        "user": args["user"],
        "department": args["department"],
        "key": args["key"],
        "none": args["none"],
    }

    def link(fmt: str = "", **changes: Any) -> str:
        a = {"sort": args["sort"], "desc": args["desc"], "offset": args["offset"], **changes}
        return urls.drill(pairs, args["figure"], fmt=fmt, **target, **a)

    return {
        "filter": wf,
        "args": args,
        "sentence": flt.describe(wf.lang, names(opts)),
        "sentence_html": bidi.html(flt.describe(wf.lang, bidi.isolated_names(names(opts)))),
        # A drill-down outside the catalogue (the pipeline forecast) says what it is itself.
        "about": result.get(f"about_{wf.lang}") or _figure_about(result["figure"], wf.lang),
        "who": _who(opts, args, wf.lang, wf.by),
        "drill": result,
        "options": opts,
        "link": link,
        "links": {
            "json": link("json"),
            "csv": link("csv", offset=0),
            "xlsx": link("xlsx", offset=0),
            "report": urls.report(pairs),
        },
    }


def _figure_about(key: str, lang: str) -> str:
    """The figure's definition from the catalogue, shown under the panel title."""
    from rop.metrics.catalogue import figure

    fig = figure(key)
    return str(getattr(fig, f"description_{lang}", "") or "")


def _who(opts: Options, args: dict[str, Any], lang: str, by: str = "manager") -> str | None:
    """Whose records these are: a manager, a department, a row, or everyone."""
    if args["user"] is not None:
        name = next((u["name"] for u in opts.users if u["id"] == args["user"]), None)
        return bidi.isolate(name) if name else unknown_user_name(args["user"], lang)
    if args["department"] is not None:
        name = next((d["name"] for d in opts.departments if d["id"] == args["department"]), None)
        return f"{i18n.text('department', lang)}: {bidi.isolate(name or args['department'])}"
    if args["none"]:
        row = "department" if by == "manager" else by
        return f"{i18n.text(row, lang)}: {i18n.text('no_' + row, lang)}"
    if args["key"] is not None:
        names: dict[str, str] = {}
        if by == "pipeline":
            names = {str(p["id"]): p["name"] for p in opts.pipelines}
        elif by == "department":
            names = {str(d["id"]): d["name"] for d in opts.departments}
        return f"{i18n.text(by, lang)}: {bidi.isolate(names.get(str(args['key']), args['key']))}"
    return i18n.text("total", lang)


def drill_page(request: Request) -> Response:
    ctx = drill_context(request)
    wf: WebFilter = ctx["filter"]
    lang = wf.lang
    fragment = request.headers.get("hx-request") == "true"
    total = ctx["drill"].get("total_records", len(ctx["drill"].get("records", [])))
    offset = ctx["args"]["offset"]
    return request.app.state.templates.TemplateResponse(
        request,
        "drill_panel.html" if fragment else "drill_page.html",
        {
            **ctx,
            "lang": lang,
            "t": i18n.translator(lang),
            "unknown_name": lambda uid: unknown_user_name(uid, lang),
            # Every manager's name links to their profile, as in the table.
            "profile_base": ctx["options"].portal_url,
            "currency": ctx["options"].currency,
            "total": total,
            "records_word": i18n.records_after_of(total, lang),
            "offset": offset,
            "page_size": PAGE_SIZE,
            "pages": _pages(total, offset, ctx["link"]),
            "page_count": max(1, -(-total // PAGE_SIZE)),
            "page_number": offset // PAGE_SIZE + 1,
            "jump": _jump(ctx["link"](offset=0)),
            "prev_url": ctx["link"](offset=max(0, offset - PAGE_SIZE)) if offset > 0 else None,
            "next_url": ctx["link"](offset=offset + PAGE_SIZE)
            if offset + PAGE_SIZE < total
            else None,
            "lang_url": request.app.state.urls.with_lang(
                wf.pairs(), "en" if lang == "ru" else "ru"
            ),
        },
    )


def _jump(url: str) -> dict[str, Any]:
    """The jump form: the list's own URL as hidden fields (a GET form replaces
    its action's query), the page number typed by the reader."""
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "offset"]
    return {"action": parts.path, "pairs": pairs}


# The JSON twin may list more records a page (`limit`): the command line
# reads a long list through the server in few requests (rop.cli.remote).
MAX_JSON_PAGE = 1000


def drill_json(request: Request) -> Response:
    q = request.query_params
    lang = str(q.get("lang") or request.app.state.settings.language)
    lang = lang if lang in i18n.LANGS else "ru"
    limit = PAGE_SIZE
    if q.get("limit"):
        limit = parse_int(q["limit"], "limit", lang, minimum=1, maximum=MAX_JSON_PAGE)
    ctx = drill_context(request, limit=limit)
    return Json(
        {
            "filter": ctx["filter"].as_json(),
            "sentence": ctx["sentence"],
            **ctx["drill"],
            "links": ctx["links"],
        }
    )


# An XLSX is built whole in memory (xlsxwriter, one workbook): past this many
# records the download is refused with a pointer to the CSV, which streams
# (docs/WEB.md, "Exports").
XLSX_MAX_RECORDS = 50_000


def _drill_export(request: Request, fmt: str) -> Response:
    from rop.report import export

    if fmt == "xlsx":
        ctx = drill_context(request, limit=XLSX_MAX_RECORDS + 1, export=True)
        lang = ctx["filter"].lang
        total = ctx["drill"]["total_records"]
        if total > XLSX_MAX_RECORDS:
            raise BadInput(i18n.text("xlsx_too_long", lang, count=total, maximum=XLSX_MAX_RECORDS))
        body = export.drill_to_xlsx(ctx["drill"], lang=lang)
        return file_response(body, fmt, export.drill_file_name(ctx["drill"], fmt))
    head, chunks, lang = _export_chunks(request)
    return stream_response(
        export.drill_csv_parts(head, chunks, lang), fmt, export.drill_file_name(head, fmt)
    )


def _export_chunks(request: Request) -> tuple[dict[str, Any], Any, str]:
    """Every record of the list asked for, chunk by chunk (rop.report.drill.drill_chunks):
    the filter, the rights and the sort are checked before anything is sent."""
    from rop.report.drill import drill_chunks

    store, opts, wf = setup(request)
    args = _drill_args(request, wf.lang)
    head, chunks = drill_chunks(
        store, wf.to_report_filter(), args["figure"], **_list_args(request, args, opts.portal)
    )
    return head, chunks, wf.lang


def drill_csv(request: Request) -> Response:
    return _drill_export(request, "csv")


def drill_xlsx(request: Request) -> Response:
    return _drill_export(request, "xlsx")
