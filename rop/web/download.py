"""A report or drill-down file as a download: one response for every export route."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.responses import Response, StreamingResponse


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


def stream_response(parts: Iterator[str], fmt: str, name: str) -> StreamingResponse:
    """A long export sent as it is written (a drill-down's CSV, chunk by chunk),
    with the same type and file name as :func:`file_response`; no length is
    known up front, so it goes chunked."""
    from rop.report.export import MEDIA_TYPES, content_disposition

    return StreamingResponse(
        (part.encode("utf-8") for part in parts),
        media_type=MEDIA_TYPES[fmt],
        headers={"content-disposition": content_disposition(name)},
    )
