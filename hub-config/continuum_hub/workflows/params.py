"""Notebook parameters: the rules every value obeys, and the notebook's own ``parameters`` cell.

A run's parameters reach the job as a JSON file that papermill injects into the notebook; they
never pass through a shell, so a value may hold any text (quotes, ``;``, newlines) and arrives
verbatim.  What is bounded is the shape: names are Python identifiers (not keywords, not
dunders: they become variables of the user's kernel), values are JSON — scalars, or short lists
and mappings of them — each at most :data:`MAX_VALUE_BYTES` serialized, all of a run's together
at most :data:`MAX_TOTAL_BYTES`, with no NUL character anywhere.

:func:`inspect` reads a notebook's ``parameters`` cell through ``papermill.inspect_notebook``
(names, types from annotations — or, without one, from the default's literal —, defaults and
the comment as help) for the submit dialog; :func:`coerce` turns submitted values (typed JSON
from the REST API, or text from a command line) into the declared types, with errors such as
``parameter 'n_events': expected int, got 'abc'``.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: largest serialized (UTF-8 JSON) size of one value
MAX_VALUE_BYTES = 4096
#: largest serialized size of all of one run's parameters together
MAX_TOTAL_BYTES = 64 * 1024
#: most items of a list or mapping value
MAX_ITEMS = 100
#: deepest nesting of lists and mappings (``[[1, 2], [3]]`` is 2)
MAX_DEPTH = 2
#: the types :func:`coerce` knows; ``"None"`` (papermill's name for "not annotated") takes any value
TYPES = ("int", "float", "str", "bool", "list", "dict", "None")
_OPTIONAL = re.compile(r"^(?:typing\.)?Optional\[(.+)\]$|^(.+?)\s*\|\s*None$|^None\s*\|\s*(.+)$")
_ALIASES = {"List": "list", "Sequence": "list", "tuple": "list", "Dict": "dict", "Mapping": "dict"}
_INTEGER = re.compile(r"^[+-]?[0-9]+$")


class ParameterError(ValueError):
    """A parameter's name or value is refused; the message names the parameter."""


@dataclass(frozen=True)
class NotebookParameter:
    """One variable of a notebook's ``parameters`` cell.

    Attributes
    ----------
    type
        One of :data:`TYPES`; ``"None"`` when neither an annotation nor the default tells.
    default
        The default's value when it is a literal, else ``None`` (see ``default_text``).
    default_text
        The default as written in the cell.
    nullable
        Whether ``None`` is accepted (``Optional[int]``, ``int | None``, or a ``None`` default).
    """

    name: str
    type: str
    default: Any
    default_text: str
    help: str = ""
    nullable: bool = False


def check_name(name: Any) -> str:
    """``name`` if it may name a parameter, else :class:`ParameterError` saying why."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ParameterError(f"parameter name {name!r} is not a Python identifier")
    if not name.isascii():
        raise ParameterError(f"parameter name {name!r} must be ASCII")
    if keyword.iskeyword(name):
        raise ParameterError(f"parameter name {name!r} is a Python keyword")
    if name.startswith("__") and name.endswith("__"):
        raise ParameterError(f"parameter name {name!r} is reserved (dunder names are Python's)")
    return name


def _check_shape(name: str, value: Any, depth: int) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ParameterError(f"parameter {name!r}: {value} is not a JSON number")
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise ParameterError(f"parameter {name!r}: the value contains a NUL character")
        return
    if isinstance(value, list | tuple | dict):
        if depth >= MAX_DEPTH:
            raise ParameterError(
                f"parameter {name!r}: lists and mappings nest at most {MAX_DEPTH} deep"
            )
        if len(value) > MAX_ITEMS:
            raise ParameterError(
                f"parameter {name!r}: {len(value)} items, more than the limit of {MAX_ITEMS}"
            )
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise ParameterError(f"parameter {name!r}: mapping keys must be strings")
                _check_shape(name, key, depth + 1)
            value = list(value.values())
        for item in value:
            _check_shape(name, item, depth + 1)
        return
    raise ParameterError(
        f"parameter {name!r}: {value!r} is not a JSON value (quote it to pass a string)"
    )


def check_value(name: str, value: Any) -> int:
    """Check one value; return its serialized size in bytes.

    Raises
    ------
    ParameterError
        Not JSON (a date, NaN, a set), nested too deep, too many items, a NUL character, or more
        than :data:`MAX_VALUE_BYTES` serialized.
    """
    _check_shape(name, value, 0)
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > MAX_VALUE_BYTES:
        raise ParameterError(
            f"parameter {name!r}: the value is {size} bytes as JSON, "
            f"more than the limit of {MAX_VALUE_BYTES}"
        )
    return size


def check_parameters(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check a run's parameters (names, values, total size); return them as a plain dict."""
    if not isinstance(values, Mapping):
        raise ParameterError(f"parameters must be a mapping of names to values, not {values!r}")
    total = 0
    for name, value in values.items():
        total += check_value(check_name(name), value)
    if total > MAX_TOTAL_BYTES:
        raise ParameterError(
            f"the parameters are {total} bytes as JSON together, "
            f"more than the limit of {MAX_TOTAL_BYTES}"
        )
    return dict(values)


def _declared_type(annotation: str, default: Any, has_default: bool) -> tuple[str, bool]:
    nullable = has_default and default is None
    match = _OPTIONAL.match(annotation.strip())
    if match:
        annotation, nullable = next(g for g in match.groups() if g), True
    base = annotation.strip().removeprefix("typing.").split("[", 1)[0]
    base = _ALIASES.get(base, base)
    if base in TYPES and base != "None":
        return base, nullable
    if has_default and default is not None:
        literal = {bool: "bool", int: "int", float: "float", str: "str", list: "list"}
        kind = literal.get(type(default)) or ("dict" if isinstance(default, dict) else "None")
        return kind, nullable
    return "None", True


def inspect(notebook: str | Path) -> list[NotebookParameter]:
    """The variables of ``notebook``'s cell tagged ``parameters``, in the cell's order.

    Raises
    ------
    ParameterError
        The file is not a notebook papermill can read.
    """
    import papermill  # imported here: papermill pulls in nbclient/IPython machinery

    try:
        found = papermill.inspect_notebook(str(notebook))
    except Exception as exc:  # papermill raises many kinds for unreadable files
        raise ParameterError(f"cannot read the parameters of {notebook}: {exc}") from exc
    result = []
    for name, info in found.items():
        text = info.get("default") or ""
        try:
            default, has_default = ast.literal_eval(text), True
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            default, has_default = None, False
        kind, nullable = _declared_type(
            info.get("inferred_type_name") or "None", default, has_default
        )
        result.append(
            NotebookParameter(name, kind, default, text, (info.get("help") or "").strip(), nullable)
        )
    return result


def _coerce_one(parameter: NotebookParameter, value: Any) -> Any:
    name, kind = parameter.name, parameter.type
    wrong = ParameterError(f"parameter {name!r}: expected {kind}, got {value!r}")
    if value is None:
        if parameter.nullable or kind == "None":
            return None
        raise wrong
    if kind == "None":
        return value
    if isinstance(value, str) and kind != "str":
        text = value.strip()
        if kind == "int" and _INTEGER.match(text):
            return int(text)
        if kind == "float":
            try:
                number = float(text)
            except ValueError:
                raise wrong from None
            if math.isfinite(number):
                return number
            raise wrong
        if kind == "bool" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind in ("list", "dict"):
            try:
                value = json.loads(text)
            except ValueError:
                raise wrong from None
    checks = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "list": lambda v: isinstance(v, list | tuple),
        "dict": lambda v: isinstance(v, dict),
    }
    if not checks[kind](value):
        raise wrong
    if kind == "float":
        return float(value)
    return list(value) if kind == "list" else value


def coerce(
    values: Mapping[str, Any],
    declared: Sequence[NotebookParameter],
    allow_unknown: bool = False,
) -> dict[str, Any]:
    """``values`` converted to the types the notebook declares, then checked as a whole.

    Text is converted where the declared type says how (``"5"`` for an ``int``, ``"true"`` for a
    ``bool``, JSON for a ``list`` or ``dict``); anything else must already have the type.

    Parameters
    ----------
    values
        Submitted values by name.
    declared
        The notebook's parameters (:func:`inspect`).
    allow_unknown
        Accept names the notebook does not declare (papermill injects them anyway); refused by
        default, since they are mostly typing mistakes.

    Raises
    ------
    ParameterError
        ``parameter 'n_events': expected int, got 'abc'``, an unknown name, or a rule of
        :func:`check_parameters`.
    """
    by_name = {parameter.name: parameter for parameter in declared}
    result = {}
    for name, value in values.items():
        parameter = by_name.get(name)
        if parameter is None:
            if not allow_unknown:
                known = ", ".join(by_name) or "none"
                raise ParameterError(
                    f"parameter {name!r} is not in the notebook's parameters cell (it has: {known})"
                )
            result[name] = value
        else:
            result[name] = _coerce_one(parameter, value)
    return check_parameters(result)
