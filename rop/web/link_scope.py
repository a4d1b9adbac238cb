"""A link (a digest's, Bitrix24's REST_APP_URI) that names people outside the reader's rights.

A typed URL naming a manager or department the viewer may not see gets the
report's 403 (a viewer learns nothing outside their scope). A link someone
clicked is different: a digest forwarded to a colleague, or opened after
the reader's rights shrank. The reader still wants the report, so a link
marks itself (``via=link``: rop.digests.content.Links, and /app for the
params Bitrix24 hands over) and such a refusal turns into the report the
reader may see: the same period and pipelines without the people filters,
with a note saying why (``note=outside_rights``). Only the HTML page does
this; the JSON twin and exports keep their 403.
"""

from __future__ import annotations

from starlette.requests import Request

VIA = ("via", "link")
NOTE = ("note", "outside_rights")
# The filter's keys that name people (rop/web/params.py): what the reader may not see.
PEOPLE = ("manager", "department")


def narrowed_url(request: Request) -> str | None:
    """The report without the link's people filters, with the note; None: not a link's."""
    query = request.query_params
    if query.get(VIA[0]) != VIA[1] or not any(key in query for key in PEOPLE):
        return None
    # vt is added back by the URL builder (the viewer's token of this request).
    dropped = {*PEOPLE, VIA[0], NOTE[0], "vt"}
    pairs = [(k, v) for k, v in query.multi_items() if k not in dropped]
    return str(request.app.state.urls.report([*pairs, NOTE]))


def shows_note(request: Request) -> bool:
    return request.query_params.get(NOTE[0]) == NOTE[1]
