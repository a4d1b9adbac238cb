"""A report or drill-down file as a download: one response for every export route."""

from __future__ import annotations

from starlette.responses import Response


def file_response(body: str | bytes | None, fmt: str, name: str) -> Response:
    """``body`` from rop.report.export (CSV text with its byte-order mark, or XLSX
    bytes); ``name`` may hold any CRM identifier: the header is built to be Latin-1
    (an ASCII ``filename`` and the real one as ``filename*``)."""
    from rop.report.export import MEDIA_TYPES, content_disposition

    if body is None:
        raise TypeError("an export without a body")
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return Response(
        data,
        media_type=MEDIA_TYPES[fmt],
        headers={"content-disposition": content_disposition(name)},
    )
