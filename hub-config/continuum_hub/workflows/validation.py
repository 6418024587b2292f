"""A run request checked as a whole before anything is stored or submitted.

``POST api/v1/runs`` (and each step of ``POST api/v1/workflows``) arrives as JSON that a user
wrote: every field is hostile input.  :func:`check_request` refuses, with a 4xx and a reason
naming the field, unknown fields, a notebook path that could leave the home folder (absolute,
``~``, ``..``), notebook content that is not a notebook or too large, parameter names that are
not Python identifiers (shell metacharacters included), values that are not JSON, too large or
of the wrong type for the notebook's ``parameters`` cell, sweeps over
:attr:`~.spec.WorkflowLimits.max_sweep_members`, output paths with ``..``, and resources the
spawn form would refuse (:func:`continuum_spawners.options.validate_options`: one validation
path, one :class:`~continuum_spawners.options.JobRequest`).  The notebook's path is checked in
the text only: the caller (the lab's server extension, ``continuum-hub run``) read the file below
the user's home without following symbolic links; the service never reads the user's files.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from continuum_spawners.accounts import AccountResolver, NoAccountError
from continuum_spawners.options import SOONEST, JobRequest, OptionsError, validate_options
from continuum_spawners.sites import SiteRegistry

from ..workshops.usable import usable_registry
from . import params
from .paths import PathError, relative_path
from .snapshot import check_notebook
from .spec import WorkflowLimits

#: largest notebook accepted in a request (bytes, as stored)
MAX_NOTEBOOK_BYTES = 16 * 2**20
#: most retries a run may ask for
MAX_RETRIES = 5
FIELDS = (
    "name",
    "notebook",
    "parameters",
    "sweep",
    "max_parallel",
    "resources",
    "inputs",
    "outputs",
    "retries",
    "allow_move",
)


class RequestError(ValueError):
    """A request is refused; ``status`` is the HTTP status to answer with (400, 403, 404)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RunRequest:
    """A checked run request: what the manager stores and the executor runs."""

    name: str
    notebook_path: str
    notebook: bytes
    parameters: dict[str, Any]
    #: as given (``{"members": […]}`` or ``{"grid": {…}}``), or ``None``
    sweep: dict[str, Any] | None
    #: each member's full parameters (one for a run without a sweep)
    members: list[dict[str, Any]]
    max_parallel: int | None
    request: JobRequest
    account: str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    retries: int = 0
    allow_move: bool = False

    @property
    def resources(self) -> dict[str, Any]:
        """The validated resources in the spawn form's canonical fields."""
        return self.request.as_user_options()


def _notebook(value: Any) -> tuple[str, bytes]:
    if not isinstance(value, Mapping) or set(value) - {"path", "content"}:
        raise RequestError('notebook must be {"path": "…", "content": <notebook JSON>}')
    try:
        path = relative_path(value.get("path"), "notebook", "your home folder")
    except PathError as exc:
        raise RequestError(str(exc)) from None
    if not path.endswith(".ipynb"):
        raise RequestError(f"notebook {path!r} is not a .ipynb file")
    content = value.get("content")
    if not isinstance(content, Mapping):
        raise RequestError(f"notebook {path!r}: content must be the notebook's JSON object")
    data = (json.dumps(content, indent=1, ensure_ascii=False) + "\n").encode()
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise RequestError(
            f"notebook {path!r} is {len(data)} bytes, more than the limit of {MAX_NOTEBOOK_BYTES}"
        )
    try:
        check_notebook(data, path)
    except PathError as exc:
        raise RequestError(str(exc)) from None
    return path, data


def _sweep(value: Any, limits: WorkflowLimits) -> list[dict[str, Any]] | None:
    """Each member's swept values, or ``None`` for no sweep; the size is checked first."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or len(value) != 1 or not set(value) <= {"members", "grid"}:
        raise RequestError('sweep must be {"members": [{…}, …]} or {"grid": {"name": [values]}}')
    if "members" in value:
        found = value["members"]
        if not isinstance(found, list) or not found:
            raise RequestError("sweep members must be a non-empty list of parameter mappings")
        size = len(found)
    else:
        grid = value["grid"]
        if not isinstance(grid, Mapping) or not grid:
            raise RequestError("a sweep grid must map parameter names to lists of values")
        for name, values in grid.items():
            if not isinstance(values, list) or not values:
                raise RequestError(f"sweep grid {str(name)[:40]!r} must be a non-empty list")
        size = math.prod(len(values) for values in grid.values())
    if size > limits.max_sweep_members:
        raise RequestError(
            f"the sweep has {size} members, more than the limit of {limits.max_sweep_members}"
        )
    if "members" in value:
        for member in found:
            if not isinstance(member, Mapping):
                raise RequestError("each sweep member must be a mapping of parameter names")
        return [dict(member) for member in found]
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _paths(value: Any, what: str, base: str) -> list[str]:
    if not isinstance(value, list):
        raise RequestError(f"{what}s must be a list of paths")
    try:
        return [relative_path(item, what, base) for item in value]
    except PathError as exc:
        raise RequestError(str(exc)) from None


def _inputs(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise RequestError("inputs must be a list")
    result = []
    for item in value:
        item = {"path": item} if isinstance(item, str) else item
        if not isinstance(item, Mapping) or set(item) - {"path", "copy"}:
            raise RequestError('each input must be a path or {"path": "…", "copy": false}')
        copy = item.get("copy", False)
        if not isinstance(copy, bool):
            raise RequestError("an input's copy must be true or false")
        try:
            path = relative_path(item.get("path"), "input", "your home folder")
        except PathError as exc:
            raise RequestError(str(exc)) from None
        result.append({"path": path, "copy": copy})
    return result


def _whole_number(value: Any, what: str, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{what} must be a whole number")
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise RequestError(f"{what} must be {limit}, not {value}")
    return value


def _declared(notebook: bytes) -> list[params.NotebookParameter]:
    """The notebook's parameters cell, read by papermill from a private temporary file."""
    with tempfile.TemporaryDirectory(prefix="workflows-inspect-") as folder:
        path = os.path.join(folder, "notebook.ipynb")
        with open(path, "wb") as file:
            file.write(notebook)
        return params.inspect(path)


def check_shape(body: Any, limits: WorkflowLimits) -> dict[str, Any]:
    """Everything that needs neither the registry nor the user; the checked fields."""
    if not isinstance(body, Mapping):
        raise RequestError("the request must be a JSON object")
    unknown = sorted(str(key)[:40] for key in body if key not in FIELDS)
    if unknown:
        raise RequestError(f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
    path, data = _notebook(body.get("notebook"))
    name = body.get("name") or os.path.basename(path)
    if not isinstance(name, str) or len(name) > 200 or not name.isprintable():
        raise RequestError("name must be printable text of at most 200 characters")
    try:
        base = params.check_parameters(body.get("parameters") or {})
        swept = _sweep(body.get("sweep"), limits)
        members = [params.check_parameters({**base, **m}) for m in swept or [{}]]
    except params.ParameterError as exc:
        raise RequestError(str(exc)) from None
    max_parallel = body.get("max_parallel")
    if max_parallel is not None:
        if swept is None:
            raise RequestError("max_parallel needs a sweep")
        max_parallel = _whole_number(max_parallel, "max_parallel", 1, None)
    resources = body.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise RequestError("resources must be an object")
    allow_move = body.get("allow_move", False)
    if not isinstance(allow_move, bool):
        raise RequestError("allow_move must be true or false")
    return {
        "name": name,
        "notebook_path": path,
        "notebook": data,
        "parameters": base,
        "sweep": dict(body["sweep"]) if swept is not None else None,
        "members": members,
        "max_parallel": max_parallel,
        "resources": dict(resources),
        "inputs": _inputs(body.get("inputs") or []),
        "outputs": _paths(body.get("outputs") or [], "output", "the run's folder"),
        "retries": _whole_number(body.get("retries", 0), "retries", 0, MAX_RETRIES),
        "allow_move": allow_move,
    }


def resolve_resources(
    resources: Mapping[str, Any],
    username: str,
    groups: frozenset[str],
    registry: SiteRegistry,
    resolver: AccountResolver,
) -> tuple[JobRequest, str]:
    """The spawn form's rules for ``resources``, and the user's account at the chosen site.

    ``site: "soonest"`` is checked against all the user's sites; the run is placed when it is
    submitted (:mod:`.placement`), so its account is ``""`` until then.
    """
    if resources.get("site") in (None, ""):
        raise RequestError(f'resources: choose a site for a batch run (or "{SOONEST}")')
    # a running event's site is its participants' too (its partition, its profiles' limits)
    registry = usable_registry(registry, groups)
    unavailable = resolver.unavailable(username, registry.for_groups(groups))
    try:
        request = validate_options(resources, registry, groups, unavailable)
    except OptionsError as exc:
        raise RequestError(f"resources: {exc}", exc.status) from None
    if request.site == SOONEST:
        return request, ""
    assert request.site_entry is not None  # a named site's request carries its registry entry
    try:
        account = resolver.require(username, request.site_entry)
    except NoAccountError as exc:
        raise RequestError(f"resources: {exc}", 403) from None
    return request, account


async def check_request(
    body: Any,
    username: str,
    groups: frozenset[str],
    registry: SiteRegistry,
    resolver: AccountResolver,
    limits: WorkflowLimits,
) -> RunRequest:
    """Check a run request completely (see the module's docstring).

    Raises
    ------
    RequestError
        The first problem found, with its HTTP status.
    """
    fields = check_shape(body, limits)
    try:
        declared = await asyncio.to_thread(_declared, fields["notebook"])
    except params.ParameterError as exc:
        raise RequestError(f"notebook {fields['notebook_path']!r}: {exc}") from None
    if declared:
        try:
            fields["members"] = [params.coerce(m, declared) for m in fields["members"]]
            fields["parameters"] = params.coerce(fields["parameters"], declared)
        except params.ParameterError as exc:
            raise RequestError(str(exc)) from None
    request, account = resolve_resources(
        fields.pop("resources"), username, groups, registry, resolver
    )
    return RunRequest(request=request, account=account, **fields)
