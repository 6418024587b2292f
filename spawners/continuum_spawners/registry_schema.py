"""The site registry's JSON schema, and where in the YAML file a problem is.

:data:`SCHEMA` checks the structure and every value's type and bounds; the cross-field rules
(walltime defaults, one default partition, a transport's fields only with that transport) are in
:mod:`continuum_spawners.sites`.  :func:`locate` turns a place in the document (keys and
indexes) into the line and column of the YAML text, through PyYAML's node API: the loaded
data has lost its positions, the composed node tree keeps them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .accounts import POLICY_SCHEMA
from .schedulers import ADAPTERS

Where = tuple[str | int, ...]

NAME = r"^[a-z][a-z0-9-]{0,30}$"
WALLTIME = r"^(?:(\d+)-)?(\d{1,3}):([0-5]\d)(?::([0-5]\d))?$"
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
# a DNS name or IPv4 address; never starts with '-', so ssh cannot read it as an option
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME = rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$"
# ssh splits UserKnownHostsFile on blanks and expands %-tokens and ~: allow none of them
ABSOLUTE_PATH = r"^/[A-Za-z0-9._@+/-]+$"
POSIX_USER = r"^[a-z_][a-z0-9_-]{0,31}$"
SSH_FIELDS = ("host", "port", "identity_file", "known_hosts", "service_user", "login_user")
# slurmrestd's base URL: scheme, host, optional port, nothing else (the API path is ours)
REST_URL = rf"^https?://{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?/?$"
REST_FIELDS = ("url", "token_file", "service_user")
ENVIRONMENT_NAME = r"^[a-z0-9][a-z0-9._-]{0,40}$"
# environment-modules / Lmod names such as "python/3.11" or "cuda/12.4-gcc"
MODULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,99}$"
# a Rucio storage element's name (Rucio's own rule: upper-case words joined by '_' or '-')
RSE_NAME = r"^[A-Z0-9]+(?:[_-][A-Z0-9]+)*$"
ACCESS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"groups": {"type": "array", "items": {"type": "string"}}},
}

# a monthly limit: positive, and no larger than any real allocation (a slip of the keyboard
# such as 1e12 would silently disable the budget)
BUDGET_LIMIT = {"type": "number", "exclusiveMinimum": 0, "maximum": 1e9}
BUDGETS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "oneOf": [{"required": ["vo"]}, {"required": ["user"]}],
        "anyOf": [
            {"required": ["core_hours"]},
            {"required": ["gpu_hours"]},
            {"required": ["co2e_kg"]},
        ],
        "properties": {
            "vo": {"type": "string", "minLength": 1, "maxLength": 200},
            "user": {"type": "string", "minLength": 1, "maxLength": 200},
            "core_hours": BUDGET_LIMIT,
            "gpu_hours": BUDGET_LIMIT,
            "co2e_kg": BUDGET_LIMIT,
            "contact": {"type": "string", "maxLength": 200},
        },
    },
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sites"],
    "properties": {
        "sites": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "scheduler", "partitions"],
                "properties": {
                    "name": {"type": "string", "pattern": NAME},
                    "display_name": {"type": "string", "maxLength": 100},
                    "description": {"type": "string", "maxLength": 500},
                    # the kinds there is an adapter for: adding one is adding its adapter
                    "scheduler": {"enum": sorted(ADAPTERS)},
                    "connection": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "transport": {"enum": ["local", "ssh", "slurmrestd"]},
                            "env": {
                                "type": "object",
                                "propertyNames": {"pattern": ENV_NAME},
                                "additionalProperties": {"type": "string"},
                            },
                            "host": {"type": "string", "pattern": HOST_NAME},
                            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                            "identity_file": {"type": "string", "pattern": ABSOLUTE_PATH},
                            "known_hosts": {"type": "string", "pattern": ABSOLUTE_PATH},
                            "service_user": {"type": "string", "pattern": POSIX_USER},
                            "login_user": {"type": "string", "pattern": POSIX_USER},
                            "url": {"type": "string", "pattern": REST_URL},
                            "token_file": {"type": "string", "pattern": ABSOLUTE_PATH},
                        },
                        "allOf": [
                            {
                                "if": {
                                    "required": ["transport"],
                                    "properties": {"transport": {"const": "ssh"}},
                                },
                                "then": {"required": ["host", "identity_file", "known_hosts"]},
                            },
                            {
                                "if": {
                                    "required": ["transport"],
                                    "properties": {"transport": {"const": "slurmrestd"}},
                                },
                                "then": {"required": ["url", "token_file"]},
                            },
                        ],
                    },
                    "node_address": {"type": "string", "pattern": r"^[A-Za-z0-9.:-]+$"},
                    "bind_address": {"type": "string", "pattern": r"^[0-9.:]+$"},
                    "access": ACCESS,
                    "account": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,64}$"},
                    "user_accounts": POLICY_SCHEMA,
                    # Lmod at the site: its module trees, searched by the software catalogue
                    "lmod": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["modulepath"],
                        "properties": {
                            "modulepath": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "string", "pattern": ABSOLUTE_PATH},
                            },
                            "lmod_dir": {"type": "string", "pattern": ABSOLUTE_PATH},
                        },
                    },
                    # the Rucio storage elements at this site (many RSEs lack Rucio's `site`
                    # attribute): the catalogue's Rucio source maps replicas to sites by it
                    "rse": {
                        "type": "array",
                        "uniqueItems": True,
                        "items": {"type": "string", "pattern": RSE_NAME, "maxLength": 255},
                    },
                    # false: the hub may not create Slurm reservations here (workshop events
                    # then name one the site made)
                    "reservations": {"type": "boolean"},
                    "partitions": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "max_cores", "max_memory_gb", "max_walltime"],
                            "properties": {
                                "name": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}$"},
                                "display_name": {"type": "string", "maxLength": 100},
                                "default": {"type": "boolean"},
                                "max_cores": {"type": "integer", "minimum": 1},
                                "max_memory_gb": {"type": "integer", "minimum": 1},
                                "max_gpus": {"type": "integer", "minimum": 0},
                                "gpu_type": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+$"},
                                "max_walltime": {"type": "string", "pattern": WALLTIME},
                                "default_walltime": {"type": "string", "pattern": WALLTIME},
                                "access": ACCESS,
                            },
                        },
                    },
                    "environments": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string", "pattern": ENVIRONMENT_NAME},
                                "display_name": {"type": "string", "maxLength": 100},
                                "default": {"type": "boolean"},
                                "modules": {
                                    "type": "array",
                                    "items": {"type": "string", "pattern": MODULE_NAME},
                                },
                                "launcher": {"type": "string", "pattern": ABSOLUTE_PATH},
                            },
                        },
                    },
                    # figures left out come from codecarbon's data or the model's defaults
                    # (continuum_spawners.impact); the bounds refuse typing slips
                    "power": {
                        "type": "object",
                        "additionalProperties": False,
                        "dependentRequired": {"cpu_model": ["cpu_cores"]},
                        "properties": {
                            "watts_per_core": {"type": "number", "minimum": 0, "maximum": 1000},
                            "watts_per_gpu": {"type": "number", "minimum": 0, "maximum": 5000},
                            "memory_watts_per_gb": {
                                "type": "number",
                                "minimum": 0,
                                "maximum": 100,
                            },
                            "pue": {"type": "number", "minimum": 1, "maximum": 10},
                            "grid_gco2e_per_kwh": {"type": "number", "minimum": 0, "maximum": 5000},
                            "country": {"type": "string", "pattern": r"^[A-Z]{3}$"},
                            "cpu_model": {"type": "string", "minLength": 1, "maxLength": 100},
                            "cpu_cores": {"type": "integer", "minimum": 1, "maximum": 1024},
                        },
                    },
                },
            },
        },
        "budgets": BUDGETS_SCHEMA,
    },
}


def unexpected_key(error: jsonschema.ValidationError) -> str | None:
    """The first unknown field of an ``additionalProperties`` error: the place to point at."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return None
    known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    return next((str(key) for key in error.instance if key not in known), None)


def schema_problem(error: jsonschema.ValidationError) -> tuple[str, Where, bool]:
    """What a schema error says and where: ``("at a/0/b: message", place, at_key)``.

    ``place`` points at the unknown key itself for an ``additionalProperties`` error
    (``at_key``), else at the offending value.
    """
    where: Where = tuple(error.absolute_path)
    text = "/".join(str(p) for p in where) or "(top level)"
    extra = unexpected_key(error)
    place = where if extra is None else (*where, extra)
    return f"at {text}: {error.message}", place, extra is not None


def position(path: Path | str, text: str, where: Where | None, at_key: bool = False) -> str:
    """``FILE:LINE:COL`` of the place ``where`` in the YAML ``text`` read from ``path``, or
    just ``FILE`` when the place cannot be found (or is ``None``)."""
    mark = None if where is None else locate(text, where, at_key)
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)


def locate(text: str, where: Where, at_key: bool = False) -> yaml.Mark | None:
    """The place in the YAML ``text`` of the value (or key) at ``where``.

    Follows ``where`` through the composed node tree (which keeps every node's position, unlike
    the loaded data) as far as it exists there, so a missing field points at its parent.

    Returns
    -------
    yaml.Mark or None
        Zero-based line and column, or ``None`` if ``text`` does not compose.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    mark = node.start_mark
    for depth, step in enumerate(where, 1):
        found = None
        if isinstance(node, yaml.MappingNode):
            found = next((kv for kv in node.value if kv[0].value == str(step)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if 0 <= step < len(node.value):
                found = (node.value[step], node.value[step])
        if found is None:
            break
        key_node, node = found
        mark = key_node.start_mark if at_key and depth == len(where) else node.start_mark
    return mark


def read_yaml(path: Path, error: type[Exception], what: str) -> tuple[str, Any]:
    """The text of the YAML file ``path`` and its data.

    Raises
    ------
    error
        ``cannot read <what> PATH: …`` or ``FILE:LINE:COL: not valid YAML: …``.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc}") from exc
    try:
        return text, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or exc
        raise error(f"{where}: not valid YAML: {problem}") from exc
