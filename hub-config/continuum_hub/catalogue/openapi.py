"""The catalogue service's OpenAPI 3.1 document, built from the handlers' route table.

``GET /services/catalogue/api/v1/openapi.json`` serves it.  Paths and methods come from
:data:`.api.ROUTES` (a route cannot be missing from the document); the schemas follow
:mod:`.model` (entries, replicas, sources' status) and :mod:`.store` (requests).
"""

from __future__ import annotations

import functools
from typing import Any

from ..service_api import openapi_document
from . import API_PREFIX
from .model import FACETS, KINDS, MAX_LIMIT, MAX_OFFSET, MAX_QUERY_CHARS, REPLICA_STATES

_TEXT = {"type": "string"}
_NULL_TEXT = {"type": ["string", "null"]}
_NULL_INT = {"type": ["integer", "null"]}
_PATH_NAMES = {
    "/entries/(.+)": "entry_id",
    "/requests/(q-[0-9a-f]{1,32})": "request_id",
    "/sources/([a-z][a-z0-9_-]{0,31})": "source_name",
}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["message"], "properties": {"message": _TEXT}},
    "Replica": {
        "type": "object",
        "properties": {
            "site": _TEXT,
            "location": _TEXT,
            "path": _TEXT,
            "state": {"enum": list(REPLICA_STATES)},
            "size": _NULL_INT,
        },
    },
    "Entry": {
        "type": "object",
        "required": ["id", "source", "identifier", "kind", "title"],
        "properties": {
            "id": {"type": "string", "description": "source:identifier (stable)"},
            "source": _TEXT,
            "identifier": _TEXT,
            "kind": {"enum": list(KINDS)},
            "title": _TEXT,
            "description": _TEXT,
            "vo": _TEXT,
            "visibility": {"enum": ["public", "vo"]},
            "vos": {"type": "array", "items": _TEXT, "description": "more VOs that may see it"},
            "format": _TEXT,
            "size": _NULL_INT,
            "time_start": _NULL_TEXT,
            "time_end": _NULL_TEXT,
            "sites": {"type": "array", "items": _TEXT},
            "replicas": {"type": "array", "items": {"$ref": "#/components/schemas/Replica"}},
            "metadata": {"type": "object"},
            "access": {"type": "object", "description": "{language, code} for Insert code"},
        },
    },
    "SourceStatus": {
        "type": "object",
        "properties": {
            "name": _TEXT,
            "kind": _TEXT,
            "label": _TEXT,
            "ok": {"type": "boolean"},
            "latency_ms": {"type": ["number", "null"]},
            "message": {"type": "string", "description": "e.g. 'timed out after 5 s'"},
        },
    },
    "SearchAnswer": {
        "type": "object",
        "properties": {
            "entries": {"type": "array", "items": {"$ref": "#/components/schemas/Entry"}},
            "total": _NULL_INT,
            "offset": {"type": "integer"},
            "limit": {"type": "integer"},
            "facets": {
                "type": "object",
                "description": f"facet ({', '.join(FACETS)}) → value → count",
                "additionalProperties": {"type": "object"},
            },
            "sources": {"type": "array", "items": {"$ref": "#/components/schemas/SourceStatus"}},
        },
    },
    "QueryAnswer": {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": _TEXT},
            "rows": {"type": "array", "items": {"type": "array"}},
            "truncated": {"type": "boolean", "description": "more rows than the source's bound"},
            "message": _TEXT,
        },
    },
    "Request": {
        "type": "object",
        "properties": {
            "id": _TEXT,
            "owner": _TEXT,
            "entry_id": _TEXT,
            "source": _TEXT,
            "site": _TEXT,
            "source_request": {"type": "string", "description": "the source's id (Rucio rule)"},
            "state": {"enum": list(REPLICA_STATES)},
            "message": _TEXT,
            "created": _TEXT,
            "updated": _TEXT,
        },
    },
}

_LIST = {"type": "array", "items": _TEXT}
SEARCH_PARAMETERS = [
    ("q", {"type": "string", "maxLength": MAX_QUERY_CHARS}, "free text"),
    ("source", _LIST, "only these sources (repeat the parameter)"),
    ("kind", {"type": "array", "items": {"enum": list(KINDS)}}, "kinds (repeat)"),
    ("vo", _LIST, "VOs (repeat)"),
    ("site", _LIST, "sites holding a replica (repeat)"),
    ("format", _LIST, "formats (repeat)"),
    ("time_from", _TEXT, "ISO 8601 date or time"),
    ("time_to", _TEXT, "ISO 8601 date or time"),
    ("size_min", {"type": "integer", "minimum": 0}, "bytes"),
    ("size_max", {"type": "integer", "minimum": 0}, "bytes"),
    ("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}, "into the merge"),
    ("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "page size"),
    ("facets", {"enum": ["0", "1"]}, "1: count facets"),
]
_ANSWERS = {
    ("/search", "get"): "SearchAnswer",
    ("/entries/{entry_id}", "get"): "Entry",
    ("/entries/{entry_id}/make-available", "post"): "Request",
    ("/requests/{request_id}", "get"): "Request",
    ("/sources/{source_name}/query", "post"): "QueryAnswer",
}
#: request bodies of the POST routes
_BODIES = {
    "/entries/{entry_id}/make-available": {
        "type": "object",
        "required": ["site"],
        "properties": {"site": _TEXT},
    },
    "/sources/{source_name}/query": {
        "type": "object",
        "description": "the source's own query: a TAP source takes {adql} or its cone/time/band "
        "form {table, ra, dec, radius_deg, time_from, time_to, band_min, band_max}",
    },
}


def _operation(path: str, method: str, summary: str) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _TEXT}
        for name in ("entry_id", "request_id", "source_name")
        if "{" + name + "}" in path
    ]
    if path == "/search":
        parameters += [
            {"name": name, "in": "query", "schema": schema, "description": text}
            for name, schema, text in SEARCH_PARAMETERS
        ]
    if parameters:
        operation["parameters"] = parameters
    if method == "post":
        body = _BODIES[path]
        operation["requestBody"] = {"content": {"application/json": {"schema": body}}}
    answer = _ANSWERS.get((path, method))
    schema = {"$ref": f"#/components/schemas/{answer}"} if answer else {"type": "object"}
    status = "201" if path.endswith("/make-available") else "200"
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    operation["responses"] = {
        status: {"description": "success", "content": {"application/json": {"schema": schema}}},
        "400": {"description": "refused input", "content": error},
        "401": {"description": "no valid hub token", "content": error},
        "403": {"description": "not allowed", "content": error},
        "404": {"description": "no such entry, request or route", "content": error},
        "503": {"description": "the source is unavailable", "content": error},
        "504": {"description": "the source did not answer in time", "content": error},
    }
    return operation


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route in :data:`.api.ROUTES`."""
    from .api import ROUTES

    paths: dict[str, Any] = {}
    for pattern, _, methods in ROUTES:
        path = pattern
        for regex, name in _PATH_NAMES.items():
            path = path.replace(regex, f"/{regex.split('/')[1]}/{{{name}}}")
        paths[path] = {m: _operation(path, m, summary) for m, summary in methods.items()}
    return openapi_document(
        "Continuum Hub catalogue",
        "Datasets and software from every configured source, searched at "
        "once; entries' ids are source:identifier (URL-encode them in paths).",
        API_PREFIX,
        SCHEMAS,
        paths,
    )
