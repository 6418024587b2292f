"""Notebooks of the user's server as a batch run needs them: read safely, parameters inspected.

The *Run as batch job…* dialog names a notebook by its path relative to the server's root; the
notebook's content travels to the ``workflows`` service in the submit request (the service never
reads the user's files on the hub's host). :func:`read_notebook` refuses what must not be sent:
a path leaving the root (``..``), a path through a symbolic link (anywhere along it: a link
would let a path below the root name a file elsewhere), a notebook larger than
:data:`MAX_NOTEBOOK_BYTES`; it reads through the server's contents manager, which applies the
server's own rules (hidden files, format validation); :func:`read_workflow_file` reads a workflow
file (YAML) with the same checks. :func:`notebook_parameters` describes the
notebook's ``parameters`` cell with papermill's inspection (installed in the user's environment).
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import stat
import tempfile
from typing import Any

from jupyter_core.utils import ensure_async
from tornado import web

from .remote import ServiceError

#: the largest notebook a run may snapshot (the service's limit of a submit request too)
MAX_NOTEBOOK_BYTES = 16 * 1024 * 1024
#: the largest workflow file (YAML) *Run workflow* sends
MAX_WORKFLOW_BYTES = 1024 * 1024
WORKFLOW_SUFFIXES = (".yaml", ".yml")
#: the kernel assumed when inspecting a notebook that names none
DEFAULT_KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


class NotebookError(ServiceError):
    """A notebook cannot be used; ``status`` is the HTTP status to answer with."""


def api_path(path: object, suffixes: tuple[str, ...] = (".ipynb",), what: str = "notebook") -> str:
    """A notebook's path relative to the server's root, checked for shape (400/403 otherwise).

    Leading and trailing ``/`` are dropped (API paths are relative to the root); empty parts,
    ``.``, ``..``, backslashes and NUL characters are refused, and names not ending in one of
    ``suffixes`` (``what`` names such a file in messages).
    """
    if not isinstance(path, str) or not path.strip("/ "):
        raise NotebookError(400, f"path must name a {what} relative to your home folder")
    relative = path.strip().strip("/")
    parts = relative.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\\" in relative or "\x00" in relative:
        raise NotebookError(403, f"{path!r} is not a path below your home folder")
    if not relative.endswith(suffixes):
        raise NotebookError(400, f"{relative} is not a {what} ({', '.join(suffixes)})")
    return relative


def checked_file(
    root: str, relative: str, limit: int = MAX_NOTEBOOK_BYTES, what: str = "notebook"
) -> os.stat_result:
    """Walk ``relative`` below ``root`` without following any symbolic link; the file's stat.

    Raises
    ------
    NotebookError
        404 when a part is missing, 403 for a symbolic link, 400 for something not a regular
        file, 413 when larger than ``limit`` bytes (``what`` names the file in messages).
    """
    current = os.path.realpath(root)  # the root itself may sit behind a link (e.g. /home)
    info: os.stat_result | None = None
    for part in relative.split("/"):
        current = os.path.join(current, part)
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            raise NotebookError(404, f"{relative}: no such {what}") from None
        except OSError as exc:
            raise NotebookError(403, f"{relative}: cannot be read ({exc.strerror})") from None
        if stat.S_ISLNK(info.st_mode):
            raise NotebookError(403, f"{relative} goes through a symbolic link: refused")
    assert info is not None  # a relative path has at least one part
    if not stat.S_ISREG(info.st_mode):
        raise NotebookError(400, f"{relative} is not a file")
    if info.st_size > limit:
        raise NotebookError(
            413,
            f"{relative} has {info.st_size} bytes; a batch run takes {what}s of at most "
            f"{limit // 2**20} MiB",
        )
    return info


async def read_notebook(contents_manager: Any, path: object) -> tuple[str, dict[str, Any]]:
    """The notebook at ``path`` (relative to the server's root) as checked API path and JSON.

    Parameters
    ----------
    contents_manager
        The server's contents manager (its ``root_dir`` is the root of the checks).
    path
        The path the browser sent.

    Raises
    ------
    NotebookError
        As :func:`api_path` and :func:`checked_file`; the contents manager's refusals (hidden
        file, not a valid notebook) with their status.
    """
    relative = api_path(path)
    root = getattr(contents_manager, "root_dir", None)
    if not isinstance(root, str) or not root:
        raise NotebookError(501, "this server's contents are not files: cannot submit from it")
    checked_file(root, relative)
    try:
        model = await ensure_async(contents_manager.get(relative, content=True, type="notebook"))
    except web.HTTPError as exc:
        raise NotebookError(
            exc.status_code, f"{relative}: {exc.log_message or exc.reason}"
        ) from None
    # a NotebookNode is a dict; a round trip makes it plain JSON data
    notebook = json.loads(json.dumps(model["content"]))
    for cell in notebook.get("cells") or []:
        # the contents manager marks trust for the browser; the snapshot is the file's content
        (cell.get("metadata") or {}).pop("trusted", None)
    return relative, notebook


async def read_workflow_file(contents_manager: Any, path: object) -> tuple[str, str]:
    """The workflow file (YAML) at ``path`` as checked API path and text, with the checks of
    :func:`read_notebook` (at most :data:`MAX_WORKFLOW_BYTES`)."""
    relative = api_path(path, WORKFLOW_SUFFIXES, "workflow file")
    root = getattr(contents_manager, "root_dir", None)
    if not isinstance(root, str) or not root:
        raise NotebookError(501, "this server's contents are not files: cannot submit from it")
    checked_file(root, relative, MAX_WORKFLOW_BYTES, "workflow file")
    try:
        model = await ensure_async(
            contents_manager.get(relative, content=True, type="file", format="text")
        )
    except web.HTTPError as exc:
        raise NotebookError(
            exc.status_code, f"{relative}: {exc.log_message or exc.reason}"
        ) from None
    return relative, str(model["content"])


def literal_value(source: object) -> tuple[bool, Any]:
    """``(True, value)`` for a Python literal with a JSON value, else ``(False, None)``."""
    if not isinstance(source, str):
        return False, None
    try:
        value = ast.literal_eval(source.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False, None
    return True, value


def kind_of(value: Any) -> str:
    """The dialog's input kind for a JSON value: bool, int, float, str, list, dict or any."""
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(value, types):
            return kind
    if isinstance(value, list):
        return "list"
    return "dict" if isinstance(value, dict) else "any"


def describe(name: str, info: dict[str, Any]) -> dict[str, Any]:
    """One parameter of papermill's inspection as the dialog shows it.

    ``type`` is the annotation papermill read (``n: int = 3``), else the kind of the default's
    literal; ``value`` the default as JSON when it is a literal (``None`` otherwise, e.g. for
    ``np.arange(3)``), ``known`` whether it is.
    """
    known, value = literal_value(info.get("default"))
    annotated = str(info.get("inferred_type_name") or "None")
    kind = annotated if annotated in ("bool", "int", "float", "str", "list", "dict") else ""
    return {
        "name": name,
        "type": kind or (kind_of(value) if known else "any"),
        "default": str(info.get("default") or ""),
        "value": value,
        "known": known,
        "help": str(info.get("help") or ""),
    }


def has_parameters_cell(notebook: dict[str, Any]) -> bool:
    """Whether a code cell carries the ``parameters`` tag (papermill's convention)."""
    for cell in notebook.get("cells") or []:
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") == "code" and "parameters" in tags:
            return True
    return False


def _inspect(notebook: dict[str, Any]) -> dict[str, Any]:
    import papermill  # in the user's environment; imported on use: it is slow to import

    metadata = dict(notebook.get("metadata") or {})
    # papermill wants a kernel to know the language; a notebook never run in Lab has none
    metadata.setdefault("kernelspec", DEFAULT_KERNELSPEC)
    # papermill inspects files; the checked content goes to a private temporary one
    with tempfile.TemporaryDirectory(prefix="continuum-inspect-") as folder:
        path = os.path.join(folder, "notebook.ipynb")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({**notebook, "metadata": metadata}, handle)
        return papermill.inspect_notebook(path)


async def notebook_parameters(notebook: dict[str, Any]) -> dict[str, Any]:
    """``{"cell": bool, "parameters": [...]}``: the notebook's parameters (see :func:`describe`).

    Raises
    ------
    NotebookError
        501 when papermill is not installed in this environment, 400 when it cannot read the
        parameters cell.
    """
    if not has_parameters_cell(notebook):
        return {"cell": False, "parameters": []}
    try:
        found = await asyncio.to_thread(_inspect, notebook)
    except ImportError:
        raise NotebookError(501, "papermill is not installed in this environment") from None
    except Exception as exc:  # papermill raises plain exceptions for unreadable cells
        raise NotebookError(400, f"the parameters cell cannot be read: {exc}") from None
    return {"cell": True, "parameters": [describe(n, dict(i)) for n, i in found.items()]}
