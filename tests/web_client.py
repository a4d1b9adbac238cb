"""A Starlette TestClient that talks to the web report as its own page does.

The server answers only the host names it serves (ROP_ALLOWED_HOSTS: by
default the bound host and the loopback names, never TestClient's
"testserver") and takes state changes only from its own pages, which browsers
mark with ``Sec-Fetch-Site: same-origin`` (rop/web/security.py).
"""

from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BASE_URL = "http://127.0.0.1"


def page_client(app: Any, **kwargs: Any) -> TestClient:
    headers = {"sec-fetch-site": "same-origin", **kwargs.pop("headers", {})}
    return TestClient(app, base_url=BASE_URL, headers=headers, **kwargs)
