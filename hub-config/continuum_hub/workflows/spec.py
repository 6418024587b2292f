"""The workflow file: a versionable YAML description of notebook steps, validated as a whole.

Example (the reference is the README's *Batch workflows* section and ``workflow.schema.json``
beside this module)::

    name: energy-scan
    steps:
      - name: simulate
        notebook: analysis/simulate.ipynb
        parameters: {n_events: 10000, label: "run A"}
        sweep: {energy: [1.0, 2.0, 4.0], seed: [1, 2]}   # grid: 6 members, one job array
        resources: {site: alpha, partition: batch, cores: 2, walltime: "1:00"}
      - name: summarize
        notebook: analysis/summarize.ipynb
        depends_on: [simulate]

:func:`load_workflow` checks the structure against the JSON schema, then what a schema cannot
say — parameter names and sizes (:mod:`.params`), paths (:mod:`.paths`), the dependency graph,
the sweep's size, the schedule (:mod:`.schedule`) — and names the first problem with its file,
line and column like the site registry (``wf.yaml:7:9: at steps/0/sweep: …``).  Resources are
only checked for shape here; the spawner's rules check them against the registry at submit.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from traitlets import Int
from traitlets.config import Configurable

from continuum_spawners.registry_schema import Where, position, read_yaml, schema_problem

from . import dag
from .params import ParameterError, check_name, check_parameters, check_value
from .paths import PathError, relative_path
from .schedule import ScheduleError, check_schedule


class WorkflowError(ValueError):
    """The workflow is refused; the message says where (``at steps/1/sweep: …``).

    Attributes
    ----------
    where
        Keys and indexes from the document's root to the problem, for :func:`load_workflow` to
        turn into a line and column.
    at_key
        Whether the problem is the key ``where[-1]`` itself rather than its value.
    """

    def __init__(self, message: str, where: Where = (), at_key: bool = False) -> None:
        super().__init__(message)
        self.where = where
        self.at_key = at_key


class WorkflowLimits(Configurable):
    """Bounds on what one workflow may ask for."""

    max_sweep_members = Int(
        1000,
        min=1,
        config=True,
        help="Most members of one step's sweep (one Slurm job array). Default 1000.",
    )
    min_schedule_minutes = Int(
        10,
        min=1,
        config=True,
        help="Shortest interval, in minutes, between two runs of a scheduled workflow. Default 10.",
    )
    max_credential_days = Int(
        7,
        min=1,
        config=True,
        help="Longest lifetime, in days, of a workflow's run credential. Default 7.",
    )


@dataclass(frozen=True)
class Resources:
    """What a step's job asks for (``None``: the site's default); the spawn form's fields."""

    site: str | None = None
    partition: str | None = None
    cores: int | None = None
    memory_gb: int | None = None
    gpus: int | None = None
    #: ``H:MM`` or whole minutes
    walltime: str | int | None = None
    environment: str | None = None
    #: sites holding the data the step reads (a ``soonest`` step runs at one of them unless
    #: ``transfer``; see continuum_spawners.locality), and catalogue ids of that data
    data_sites: list[str] | None = None
    datasets: list[str] | None = None
    transfer: bool | None = None

    def as_user_options(self) -> dict[str, Any]:
        """The fields that are set, as the spawner's ``user_options``."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


@dataclass(frozen=True)
class Input:
    """A file or folder (``…/``) the notebook reads, relative to the home folder."""

    path: str
    #: copied into the run's folder at submit, instead of read in place
    copy: bool = False


@dataclass(frozen=True)
class Step:
    """One notebook step: a Slurm job, or a job array when it has a sweep."""

    name: str
    notebook: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    #: as written: a list of parameter mappings, or a grid ``{name: [values]}``
    sweep: list[dict[str, Any]] | dict[str, list[Any]] | None = None
    max_parallel: int | None = None
    depends_on: tuple[str, ...] = ()
    resources: Resources = Resources()
    inputs: tuple[Input, ...] = ()
    outputs: tuple[str, ...] = ()
    retries: int = 0
    allow_move: bool = False

    @property
    def sweep_size(self) -> int:
        """Members of the sweep (1 without one)."""
        return sweep_size(self.sweep)


@dataclass(frozen=True)
class Workflow:
    """A validated workflow file."""

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    schedule: str | None = None
    max_credential_days: int | None = None

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)

    def order(self) -> list[Step]:
        """The steps, each after those it depends on (file order among independent steps)."""
        return [self.step(name) for name in dag.order({s.name: s.depends_on for s in self.steps})]


def sweep_size(sweep: list[Any] | dict[str, list[Any]] | None) -> int:
    """Members of a sweep as written (1 for none), computed without expanding a grid."""
    if sweep is None:
        return 1
    if isinstance(sweep, list):
        return len(sweep)
    return math.prod(len(values) for values in sweep.values())


def expand_sweep(step: Step) -> list[dict[str, Any]]:
    """Each member's parameters: the step's ``parameters`` updated with the member's values.

    A grid expands to every combination, in the order of the grid's keys (the last varies
    fastest); a step without a sweep has one member.
    """
    if step.sweep is None:
        return [dict(step.parameters)]
    if isinstance(step.sweep, list):
        members = step.sweep
    else:
        names = list(step.sweep)
        members = [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*step.sweep.values())
        ]
    return [{**step.parameters, **member} for member in members]


@functools.cache
def schema() -> dict[str, Any]:
    """The workflow file's JSON schema (``workflow.schema.json``)."""
    return json.loads(files(__package__).joinpath("workflow.schema.json").read_text())


def _schema_error(data: Any) -> WorkflowError | None:
    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return None
    message, where, at_key = schema_problem(error)
    return WorkflowError(message, where, at_key=at_key)


def _at(where: Where) -> str:
    return "at " + "/".join(str(part) for part in where)


def _name(where: Where, name: Any) -> None:
    try:
        check_name(name)
    except ParameterError as exc:
        raise WorkflowError(f"{_at(where)}: {exc}", (*where, name), at_key=True) from None


def _value(where: Where, name: str, value: Any) -> int:
    try:
        return check_value(name, value)
    except ParameterError as exc:
        raise WorkflowError(f"{_at(where)}: {exc}", where) from None


def _whole(where: Where, values: Mapping[str, Any]) -> None:
    try:
        check_parameters(values)
    except ParameterError as exc:
        raise WorkflowError(f"{_at(where)}: {exc}", where) from None


def _parameters(where: Where, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        _name(where, name)
        _value((*where, name), name, value)
    _whole(where, values)


def _sweep(where: Where, entry: dict[str, Any], limits: WorkflowLimits) -> None:
    sweep = entry.get("sweep")
    at = (*where, "sweep")
    size = sweep_size(sweep)
    if size > limits.max_sweep_members:
        raise WorkflowError(
            f"{_at(at)}: the sweep has {size} members, more than the limit of "
            f"{limits.max_sweep_members}",
            at,
        )
    base = entry.get("parameters", {})
    if isinstance(sweep, list):
        for index, member in enumerate(sweep):
            _parameters((*at, index), member)
            _whole((*at, index), {**base, **member})
    elif sweep is not None:
        # the member with each swept parameter's largest value bounds every member's size
        largest = dict(base)
        for name, values in sweep.items():
            _name(at, name)
            sizes = [_value((*at, name, i), name, value) for i, value in enumerate(values)]
            largest[name] = values[sizes.index(max(sizes))]
        _whole(at, largest)


def _path(where: Where, text: Any, what: str, base: str) -> str:
    try:
        return relative_path(text, what, base)
    except PathError as exc:
        raise WorkflowError(f"{_at(where)}: {exc}", where) from None


def _build_step(index: int, entry: dict[str, Any], limits: WorkflowLimits) -> Step:
    where: Where = ("steps", index)
    notebook = _path((*where, "notebook"), entry["notebook"], "notebook", "your home folder")
    _parameters((*where, "parameters"), entry.get("parameters", {}))
    _sweep(where, entry, limits)
    inputs = []
    for i, item in enumerate(entry.get("inputs", [])):
        item = {"path": item} if isinstance(item, str) else item
        path = _path((*where, "inputs", i), item["path"], "input", "your home folder")
        inputs.append(Input(path, item.get("copy", False)))
    outputs = tuple(
        _path((*where, "outputs", i), text, "output", "the run's folder")
        for i, text in enumerate(entry.get("outputs", []))
    )
    if "max_parallel" in entry and "sweep" not in entry:
        at = (*where, "max_parallel")
        raise WorkflowError(f"{_at(at)}: max_parallel needs a sweep", at, at_key=True)
    return Step(
        name=entry["name"],
        notebook=notebook,
        parameters=dict(entry.get("parameters", {})),
        sweep=entry.get("sweep"),
        max_parallel=entry.get("max_parallel"),
        depends_on=tuple(entry.get("depends_on", ())),
        resources=Resources(**entry.get("resources", {})),
        inputs=tuple(inputs),
        outputs=outputs,
        retries=entry.get("retries", 0),
        allow_move=entry.get("allow_move", False),
    )


def workflow_from_dict(data: Any, limits: WorkflowLimits | None = None) -> Workflow:
    """Validate a parsed workflow document and build the :class:`Workflow`.

    Raises
    ------
    WorkflowError
        The first problem, with its place in the document.
    """
    limits = limits or WorkflowLimits()
    error = _schema_error(data)
    if error is not None:
        raise error
    steps = tuple(_build_step(i, entry, limits) for i, entry in enumerate(data["steps"]))
    seen: set[str] = set()
    for index, step in enumerate(steps):
        if step.name in seen:
            at = ("steps", index, "name")
            raise WorkflowError(f"{_at(at)}: step name {step.name!r} is used twice", at)
        seen.add(step.name)
    try:
        dag.check({step.name: step.depends_on for step in steps})
    except dag.GraphError as exc:
        where: Where = ("steps", exc.index, *exc.where)
        raise WorkflowError(f"{_at(where)}: {exc}", where) from None
    schedule = data.get("schedule")
    if schedule is not None:
        try:
            schedule = check_schedule(schedule, limits.min_schedule_minutes)
        except ScheduleError as exc:
            raise WorkflowError(f"at schedule: {exc}", ("schedule",)) from None
    days = data.get("max_credential_days")
    if days is not None and days > limits.max_credential_days:
        raise WorkflowError(
            f"at max_credential_days: {days} days is more than the limit of "
            f"{limits.max_credential_days}",
            ("max_credential_days",),
        )
    return Workflow(data["name"], steps, data.get("description", ""), schedule, days)


def load_workflow(path: str | Path, limits: WorkflowLimits | None = None) -> Workflow:
    """Load and validate a workflow file.

    Raises
    ------
    WorkflowError
        ``FILE:LINE:COLUMN: at PLACE: problem`` (the line and column left out where the
        document has no such place), or ``FILE:LINE:COLUMN: not valid YAML: …``.
    """
    path = Path(path)
    text, data = read_yaml(path, WorkflowError, "workflow")
    try:
        return workflow_from_dict(data, limits)
    except WorkflowError as exc:
        where = position(path, text, exc.where or None, exc.at_key)
        raise WorkflowError(f"{where}: {exc}", exc.where, exc.at_key) from exc


def to_dict(workflow: Workflow) -> dict[str, Any]:
    """The workflow as the document :func:`workflow_from_dict` reads (defaults left out)."""
    document: dict[str, Any] = {"name": workflow.name}
    if workflow.description:
        document["description"] = workflow.description
    if workflow.schedule is not None:
        document["schedule"] = workflow.schedule
    if workflow.max_credential_days is not None:
        document["max_credential_days"] = workflow.max_credential_days
    document["steps"] = []
    for step in workflow.steps:
        entry: dict[str, Any] = {"name": step.name, "notebook": step.notebook}
        optional = {
            "parameters": dict(step.parameters) or None,
            "sweep": step.sweep,
            "max_parallel": step.max_parallel,
            "depends_on": list(step.depends_on) or None,
            "resources": step.resources.as_user_options() or None,
            "inputs": [{"path": i.path, "copy": True} if i.copy else i.path for i in step.inputs]
            or None,
            "outputs": list(step.outputs) or None,
            "retries": step.retries or None,
            "allow_move": step.allow_move or None,
        }
        entry.update({key: value for key, value in optional.items() if value is not None})
        document["steps"].append(entry)
    return document


def to_yaml(workflow: Workflow) -> str:
    """The workflow file's text (what the lab UI writes); :func:`load_workflow` reads it back."""
    return yaml.safe_dump(to_dict(workflow), sort_keys=False, allow_unicode=True, width=100)
