"""The workflow service's OpenAPI 3.1 document, built from the handlers' route table.

``GET /services/workflows/api/v1/openapi.json`` serves it.  Paths and methods come from
:data:`.api.ROUTES` (so a route cannot be missing from the document), the schemas of runs,
workflows and credentials from the contract the lab extension and the Python client share.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ..service_api import openapi_document
from . import API_PREFIX

_ID = re.compile(r"\(([rwc])-\[0-9a-f\]\{1,32\}\)")
_NAMES = {"r": "run_id", "w": "workflow_id", "c": "credential_id"}
_STATES = ["pending", "queued", "running", "done", "failed", "cancelled", "needs-sign-in"]

_NULLABLE_TEXT = {"type": ["string", "null"]}
SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}},
    },
    "Resources": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "site": {"type": "string"},
            "partition": {"type": "string"},
            "cores": {"type": "integer", "minimum": 1},
            "memory_gb": {"type": "integer", "minimum": 1},
            "gpus": {"type": "integer", "minimum": 0},
            "walltime": {"type": ["string", "integer"], "description": "H:MM or minutes"},
            "environment": {"type": "string"},
        },
    },
    "RunRequest": {
        "type": "object",
        "required": ["notebook"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "notebook": {
                "type": "object",
                "required": ["path", "content"],
                "properties": {
                    "path": {"type": "string", "description": "relative to your home"},
                    "content": {"type": "object", "description": "the notebook (nbformat 4)"},
                },
            },
            "parameters": {"type": "object"},
            "sweep": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["members"],
                        "properties": {"members": {"type": "array", "items": {"type": "object"}}},
                    },
                    {
                        "type": "object",
                        "required": ["grid"],
                        "properties": {"grid": {"type": "object"}},
                    },
                ]
            },
            "max_parallel": {"type": ["integer", "null"], "minimum": 1},
            "resources": {"$ref": "#/components/schemas/Resources"},
            "inputs": {"type": "array"},
            "outputs": {"type": "array", "items": {"type": "string"}},
            "retries": {"type": "integer", "minimum": 0, "maximum": 5},
            "allow_move": {"type": "boolean"},
        },
    },
    "Member": {
        "type": "object",
        "properties": {
            "index": {"type": "integer"},
            "parameters": {"type": "object"},
            "state": {"type": "string"},
            "reason": {"type": "string"},
            "node": {"type": "string"},
            "cell": {"type": ["integer", "null"]},
            "cells": {"type": ["integer", "null"]},
            "started": _NULLABLE_TEXT,
            "ended": _NULLABLE_TEXT,
        },
    },
    "Run": {
        "type": "object",
        "required": ["id", "owner", "state", "members"],
        "properties": {
            "id": {"type": "string", "pattern": "^r-[0-9a-f]{12}$"},
            "owner": {"type": "string"},
            "name": {"type": "string"},
            "workflow_id": _NULLABLE_TEXT,
            "step": _NULLABLE_TEXT,
            "state": {"enum": _STATES},
            "reason": {"type": "string"},
            "notebook": {"type": "object"},
            "parameters": {"type": "object"},
            "sweep": {"type": ["object", "null"]},
            "max_parallel": {"type": ["integer", "null"]},
            "resources": {"$ref": "#/components/schemas/Resources"},
            "inputs": {"type": "array"},
            "outputs": {"type": "array"},
            "retries": {"type": "integer"},
            "allow_move": {"type": "boolean"},
            "depends_on": {"type": "array", "items": {"type": "string"}},
            "members": {"type": "array", "items": {"$ref": "#/components/schemas/Member"}},
            "job_id": _NULLABLE_TEXT,
            "attempts": {"type": "array", "items": {"type": "object"}},
            "folder": _NULLABLE_TEXT,
            "created": {"type": "string"},
            "submitted": _NULLABLE_TEXT,
            "started": _NULLABLE_TEXT,
            "ended": _NULLABLE_TEXT,
            "based_on": _NULLABLE_TEXT,
            "credential_id": _NULLABLE_TEXT,
        },
    },
    "Workflow": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "owner": {"type": "string"},
            "name": {"type": "string"},
            "state": {"type": "string"},
            "reason": {"type": "string"},
            "yaml": {"type": "string"},
            "steps": {"type": "object", "additionalProperties": {"type": "string"}},
            "schedule": _NULLABLE_TEXT,
            "next_run": _NULLABLE_TEXT,
            "created": {"type": "string"},
        },
    },
    "WorkflowRequest": {
        "type": "object",
        "required": ["yaml"],
        "properties": {"yaml": {"type": "string"}, "notebooks": {"type": "object"}},
    },
    "Credential": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "owner": {"type": "string"},
            "run_id": _NULLABLE_TEXT,
            "workflow_id": _NULLABLE_TEXT,
            "created": {"type": "string"},
            "expires": _NULLABLE_TEXT,
            "revoked": {"type": "boolean"},
            "last_used": {"type": "string"},
        },
    },
}

# (path, method) → (request schema, status, response schema or media type)
_BODIES = {
    ("/runs", "post"): ("RunRequest", "201", "Run"),
    ("/runs/{run_id}/rerun", "post"): (None, "201", "Run"),
    ("/workflows", "post"): ("WorkflowRequest", "201", "Workflow"),
    ("/runs/{run_id}", "get"): (None, "200", "Run"),
    ("/runs/{run_id}/cancel", "post"): (None, "200", "Run"),
    ("/workflows/{workflow_id}", "get"): (None, "200", "Workflow"),
    ("/workflows/{workflow_id}/cancel", "post"): (None, "200", "Workflow"),
    ("/workflows/{workflow_id}/cwl", "get"): (None, "200", "text/yaml"),
    ("/runs/{run_id}/archive", "get"): (None, "200", "application/gzip"),
    ("/credentials/{credential_id}", "delete"): (None, "204", None),
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(path: str, method: str, summary: str) -> dict[str, Any]:
    request, status, response = _BODIES.get((path, method), (None, "200", "object"))
    operation: dict[str, Any] = {"summary": summary, "responses": {}}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", path)
    ]
    if parameters:
        operation["parameters"] = parameters
    if request:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(request)}},
        }
    if response is None:
        operation["responses"][status] = {"description": "done"}
    elif response == "text/yaml":
        content = {"text/yaml": {"schema": {"type": "string"}}}
        operation["responses"][status] = {"description": "CWL v1.2", "content": content}
    elif response == "application/gzip":
        content = {response: {"schema": {"type": "string", "contentMediaType": response}}}
        operation["responses"][status] = {
            "description": "the run folder as a tar.gz, without credentials (streamed; "
            "Content-Disposition names the file)",
            "content": content,
        }
    else:
        schema = _ref(response) if response in SCHEMAS else {"type": "object"}
        content = {"application/json": {"schema": schema}}
        operation["responses"][status] = {"description": "success", "content": content}
    error = {"application/json": {"schema": _ref("Error")}}
    for code, meaning in (
        ("400", "refused input"),
        ("401", "no valid hub token"),
        ("403", "not allowed"),
        ("404", "no such thing"),
        *((("409", "the folder cannot be archived"),) if response == "application/gzip" else ()),
    ):
        operation["responses"][code] = {"description": meaning, "content": error}
    return operation


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route in :data:`.api.ROUTES`."""
    from .api import ROUTES

    paths: dict[str, Any] = {}
    for pattern, _, methods in ROUTES:
        path = _ID.sub(lambda m: "{" + _NAMES[m.group(1)] + "}", pattern)
        paths[path] = {m: _operation(path, m, summary) for m, summary in methods.items()}
    return openapi_document(
        "Continuum Hub workflows",
        "Batch runs of notebooks on the sites: runs, sweeps, chains.",
        API_PREFIX,
        SCHEMAS,
        paths,
    )
