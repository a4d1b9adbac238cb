"""`rop report`, `rop drill` and `rop rights show` while `rop serve` holds the store.

DuckDB lets one process open the file (even read-only opening is refused
while another process writes it), so these commands ask the server that
announced itself in ``<db>.server.json``: the report's JSON twin, the
drill-down's JSON (page by page) and ``/api/rights``. The token from that
file lets them read as the command line does: any viewer, or none
(rop.web.local). What they print is the same as from the store itself.
"""

from __future__ import annotations

from typing import Any

import click

from rop.cli.problems import UsageProblem
from rop.store.holder import LOCAL_TOKEN_HEADER, Holder

# A first report over a big store may take a while to build.
TIMEOUT_SECONDS = 600.0
# Records a drill-down page asks for (the server's MAX_JSON_PAGE).
PAGE = 1000


def _get(holder: Holder, path: str, params: list[tuple[str, str]]) -> Any:
    import httpx

    headers = {LOCAL_TOKEN_HEADER: holder.token} if holder.token else {}
    try:
        response = httpx.get(
            holder.url + path,
            params=tuple(params),
            headers=headers,
            timeout=httpx.Timeout(TIMEOUT_SECONDS, connect=5.0),
        )
    except httpx.HTTPError as exc:
        raise UsageProblem(
            f"the store is open in `rop serve` at {holder.url}, which did not answer "
            f"({exc}): try again, or stop the server"
        ) from None
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        message = (
            str(error.get("message"))
            if isinstance(error, dict)
            else response.text[:200] or response.reason_phrase
        )
        # The page's messages start with a capital; the CLI's lines do not.
        message = message[:1].lower() + message[1:]
        if response.status_code == 403:
            raise UsageProblem(f"access denied: {message}")
        if response.status_code < 500:
            raise UsageProblem(message)
        raise click.ClickException(f"the server at {holder.url} failed: {message}")
    return data


def filter_params(o: dict[str, Any]) -> list[tuple[str, str]]:
    """The CLI's filter options as the web report's query (docs/WEB.md)."""
    from rop.report.filter import ReportInputError

    if o["period"] is not None and (o["date_from"] or o["date_to"]):
        raise UsageProblem(str(ReportInputError("preset_and_dates")))
    if bool(o["date_from"]) != bool(o["date_to"]):
        raise UsageProblem(str(ReportInputError("half_period")))
    params: list[tuple[str, str]] = [("lang", "en")]  # messages in the CLI's language
    if o["date_from"]:
        params += [("period", "custom"), ("from", o["date_from"]), ("to", o["date_to"])]
    elif o["period"]:
        params.append(("period", o["period"]))
    for name, key in (
        ("pipeline", "pipelines"),
        ("key_stage", "key_stages"),
        ("key_status", "key_statuses"),
        ("section", "sections"),
        ("department", "departments"),
        ("manager", "managers"),
    ):
        params += [(name, str(v)) for v in o[key]]
    if o["viewer"] is not None:
        params.append(("viewer", str(o["viewer"])))
    if o.get("stuck_days", 14) != 14:
        params.append(("stuck_days", str(o["stuck_days"])))
    from rop.cli.report import stuck_days_by

    params += [(f"stuck_days.{p}", str(d)) for p, d in stuck_days_by(o)]
    if o["min_call_seconds"]:
        params.append(("min_call", str(o["min_call_seconds"])))
    if o["max_call_seconds"] is not None:
        params.append(("max_call", str(o["max_call_seconds"])))
    if o["by"] != "manager":
        params.append(("by", o["by"]))
    if o["no_compare"]:
        params.append(("compare", "0"))
    if o.get("previous", "to_date") != "to_date":
        params.append(("previous", o["previous"]))
    if o.get("today"):
        params.append(("today", o["today"]))
    return params


def _same_portal(holder: Holder, wanted: str | None, shown: str | None) -> None:
    if wanted and shown and wanted != shown:
        raise UsageProblem(
            f"the server at {holder.url} shows portal {shown}, not {wanted}: "
            "stop the server to read another portal of its store"
        )


def report(holder: Holder, o: dict[str, Any], *, stages: bool = True) -> dict[str, Any]:
    params = filter_params(o) + [("stages", "1" if stages else "0")]
    data = _get(holder, "/report.json", params)
    result: dict[str, Any] = data["report"]
    _same_portal(holder, o["portal"], (result.get("portal") or {}).get("key"))
    return result


def quality(holder: Holder, o: dict[str, Any]) -> dict[str, Any]:
    """The data-quality panel through the server holding the store."""
    data = _get(holder, "/quality.json", filter_params(o))
    result: dict[str, Any] = data["quality"]
    return result


def drill(
    holder: Holder,
    o: dict[str, Any],
    figure: str,
    *,
    user_id: int | None,
    department_id: int | None,
    row_key: str | None,
    none_row: bool = False,
    sort: str | None = None,
    desc: bool = False,
    offset: int = 0,
    limit: int | None = None,
) -> dict[str, Any]:
    """The drill-down's records, ``offset`` on, ``limit`` of them (None: all), page by page."""
    params = [*filter_params(o), ("figure", figure)]
    for name, value in (("user", user_id), ("dept", department_id), ("row", row_key)):
        if value is not None:
            params.append((name, str(value)))
    if none_row:
        params.append(("none", "1"))
    if sort:
        params.append(("sort", sort))
    if desc:
        params.append(("desc", "1"))
    first: dict[str, Any] | None = None
    records: list[Any] = []
    position = offset
    while True:
        want = PAGE if limit is None else min(PAGE, max(limit - len(records), 1))
        page = _get(
            holder, "/drill.json", [*params, ("offset", str(position)), ("limit", str(want))]
        )
        first = first or page
        got = page["records"] if limit != 0 else []
        records += got
        position += len(got)
        done = limit is not None and len(records) >= limit
        if done or len(got) < want or position >= int(page.get("total_records") or 0):
            break
    assert first is not None
    result = {k: v for k, v in first.items() if k not in ("filter", "sentence", "links")}
    result["records"] = records
    return result


def rights(holder: Holder, portal: str | None) -> dict[str, Any]:
    data: dict[str, Any] = _get(holder, "/api/rights", [])
    _same_portal(holder, portal, data.get("portal"))
    return data
