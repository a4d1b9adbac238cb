"""``batch``: up to 50 commands in one request, with ``$result[...]`` references.

Each command is ``"method?query-string"``. References are substituted after
the query string is parsed, so they work URL-encoded too (b24pysdk encodes
them). A reference that does not resolve (``$result[p1][49][ID]`` after a
short page) becomes an empty string; on an ID filter that matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rop.emulator.errors import ApiError
from rop.emulator.params import Params, as_dict, get, parse_query
from rop.emulator.registry import Reply

# Bitrix24 runs at most 50 commands of a batch; error-codes.md: it "returns
# ERROR_BATCH_LENGTH_EXCEEDED for every subquery beyond 50" (in result_error,
# the batch itself answers 200). Older docs listed it as a 400 for the batch.
MAX_COMMANDS = 50
_REF = re.compile(r"\$(result|result_error|result_total|result_next)\[([^\]]+)\]((?:\[[^\]]*\])*)")
_PART = re.compile(r"\[([^\]]*)\]")

# (method, params) -> (reply, time object); raises ApiError
Execute = Callable[[str, Params], tuple[Reply, dict[str, Any]]]


def _lookup(root: Any, path: list[str]) -> Any:
    node = root
    for part in path:
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                return None
        elif isinstance(node, dict):
            if part in node:
                node = node[part]
            else:
                return None
        else:
            return None
    return node


def _substitute(value: Any, maps: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, maps) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, maps) for v in value]
    if not isinstance(value, str) or "$result" not in value:
        return value

    def resolve(match: re.Match[str]) -> Any:
        root = maps[match.group(1)].get(match.group(2))
        found = _lookup(root, _PART.findall(match.group(3)))
        return "" if found is None else found

    whole = _REF.fullmatch(value)
    if whole:
        found = resolve(whole)
        return found if isinstance(found, list | dict) else str(found)
    return _REF.sub(lambda m: str(resolve(m)), value)


def _empty_as_list(mapping: dict[str, Any]) -> dict[str, Any] | list[Any]:
    # PHP's json_encode turns an empty array into [] (BITRIX24_API.md §2).
    return mapping if mapping else []


def run_batch(params: Params, execute: Execute) -> dict[str, Any]:
    commands = as_dict(get(params, "cmd"), "cmd")
    halt = str(get(params, "halt", "0")).strip().lower() in ("1", "true", "y")
    maps: dict[str, dict[str, Any]] = {
        "result": {},
        "result_error": {},
        "result_total": {},
        "result_next": {},
    }
    times: dict[str, Any] = {}
    for position, (key, command) in enumerate(commands.items()):
        key = str(key)
        if position >= MAX_COMMANDS:
            maps["result_error"][key] = ApiError(
                "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded", 400
            ).body()
            if halt:
                break
            continue
        text = str(command)
        name, _, query = text.partition("?")
        name = name.strip().lower()
        if name.endswith(".json"):
            name = name[:-5]
        try:
            if name == "batch":
                raise ApiError(
                    "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405
                )
            sub_params = _substitute(parse_query(query), maps)
            reply, timing = execute(name, sub_params)
        except ApiError as error:
            body = error.body()
            if error.code == "insufficient_scope":
                body["error_description"] = ""  # as in batch.md's error example
            maps["result_error"][key] = body
            if halt:
                break
            continue
        maps["result"][key] = reply.result
        times[key] = timing
        if reply.total is not None:
            maps["result_total"][key] = reply.total
        if reply.next is not None:
            maps["result_next"][key] = reply.next
    return {
        "result": _empty_as_list(maps["result"]),
        "result_error": _empty_as_list(maps["result_error"]),
        "result_total": _empty_as_list(maps["result_total"]),
        "result_next": _empty_as_list(maps["result_next"]),
        "result_time": _empty_as_list(times),
    }
