"""Request parameters the way PHP sees them.

Bitrix24 is PHP: a query string or form body ``filter[>ID]=5&select[]=ID``
becomes nested arrays. We build nested dicts (list keys stay strings "0",
"1", ...) and read them back with :func:`as_list`, so a JSON list, a PHP
"list" and a single value all work where Bitrix24 takes an array.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from rop.emulator.errors import ApiError, invalid_arg, invalid_request

Params = dict[str, Any]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def parse_query(text: str) -> Params:
    """A PHP-style query string (or form body) -> nested dict."""
    out: Params = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        _put(out, key, value)
    return out


def _put(out: Params, key: str, value: Any) -> None:
    match = _KEY.match(key)
    if not match:
        out[key] = value
        return
    path = [match.group(1), *_PART.findall(match.group(2))]
    node: Any = out
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if part == "":  # "select[]": PHP appends with the next integer key
            part = str(sum(1 for k in node if k.isdigit()))
        if last:
            node[part] = value
        else:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child


def parse_body(body: bytes, content_type: str) -> Params:
    """A POST body: JSON, or form-encoded with PHP brackets. Bad input -> ApiError."""
    if not body.strip():
        return {}
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" or (not kind and body.lstrip()[:1] in (b"{", b"[")):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise invalid_request("Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise invalid_request("Request body must be a JSON object")
        return data
    if kind in ("application/x-www-form-urlencoded", "") or kind.startswith("text/"):
        try:
            return parse_query(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise invalid_request("Request body is not valid UTF-8") from None
    raise invalid_request(f"Unsupported content type {kind!r}")


def get(params: Params, name: str, default: Any = None) -> Any:
    """A top-level parameter, case-insensitively (Bitrix24 takes FILTER and filter)."""
    if name in params:
        return params[name]
    lowered = name.lower()
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return default


def as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def as_dict(value: Any, what: str) -> dict[str, Any]:
    if value is None or value == "" or value == []:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    # The CRM list methods answer this with an empty code (crm-deal-list.md).
    raise ApiError("", f"Parameter '{what}' must be array.", 400)


def as_int(value: Any, what: str, default: int = 0) -> int:
    if value is None or value == "":
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise invalid_arg(f"Parameter '{what}' must be integer.") from None
