"""PHP-style query strings, the form ``batch`` commands are written in.

``{"filter": {">ID": 5}, "select": ["ID"]}`` becomes
``filter[%3EID]=5&select[0]=ID``: keys nest in brackets, values are
percent-encoded. Bitrix24 decodes a command before it resolves ``$result[...]``
references, so references are encoded like any other value (as b24pysdk does).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "Y"
    if value is False:
        return "N"
    return str(value)


def php_query(params: dict[str, Any]) -> str:
    pairs: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                name = quote_plus(str(key))
                walk(f"{prefix}[{name}]" if prefix else name, item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        else:
            pairs.append(f"{prefix}={quote_plus(_scalar(value))}")

    walk("", params)
    return "&".join(pairs)
