"""One guard for the metrics, operational and admin APIs: no NUL character reaches a query.

PostgreSQL text cannot hold ``\\x00`` (the driver raises ``DataError`` and the request would answer
500), and no id, filter, cursor or name of BeaZap ever needs one. :func:`reject_nul_characters` is a
router dependency (``api/app.py`` puts it on every API router) that checks the path, the query
string, the headers and the JSON body before any other dependency runs, and answers 422 naming
where the character was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

NUL = "\x00"
MESSAGE = "NUL characters (\\u0000) are not allowed"


def _json_locations(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, str):
        if NUL in value:
            yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield (*loc, key)
            yield from _json_locations(item, (*loc, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_locations(item, (*loc, i))


async def _body_locations(request: Request) -> list[tuple[str | int, ...]]:
    raw = await request.body()  # FastAPI has read (and cached) it already
    if b"\\u0000" not in raw and b"\x00" not in raw:
        return []
    try:
        doc = json.loads(raw)
    except ValueError:
        return [("body",)] if b"\x00" in raw else []  # other malformed JSON: FastAPI's own 422
    return list(_json_locations(doc, ("body",)))


async def reject_nul_characters(request: Request) -> None:
    """422 when any part of the request carries a NUL character (see the module docstring)."""
    where: list[tuple[str | int, ...]] = []
    where += [("path", name) for name, value in request.path_params.items() if NUL in str(value)]
    if NUL in request.url.path and not where:
        where.append(("path",))
    where += [("query", name) for name, value in request.query_params.multi_items() if NUL in name + value]
    where += [("header", name) for name, value in request.headers.items() if NUL in name + value]
    if request.method in ("POST", "PUT", "PATCH"):
        where += await _body_locations(request)
    if where:
        raise RequestValidationError([{"loc": loc, "msg": MESSAGE, "type": "nul_character"} for loc in where])
