"""The provenance of a finished run: an RO-Crate (Workflow Run Crate 0.5) in its folder.

:func:`write_crate` writes ``ro-crate-metadata.json`` into the run's (or sweep member's) folder,
built with ``rocrate`` as RO-Crate 1.1 — the version the Workflow Run Crate 0.5, Process Run
Crate 0.5 and Workflow RO-Crate 1.0 profiles build on — and conforming to all three:

* the notebook snapshot is the crate's ``mainEntity``, typed ``File``, ``SoftwareSourceCode`` and
  ``ComputationalWorkflow`` (language: Jupyter notebook), with its size and SHA-256, its path at
  home, and the software environment it ran in (name, and the digest of its package list);
* every parameter, input and output is a ``FormalParameter`` of the notebook (``additionalType``
  and, through ``workExample``, this run's value or file: ``PropertyValue``, ``File``,
  ``Dataset``), files and folders' files with size and SHA-256;
* each attempt (Slurm job) is a ``CreateAction`` whose ``instrument`` is the notebook: the job
  id, site › partition › node(s) as ``location``, start and end, exit state, the person who ran
  it (hub user; ORCID when known) as ``agent``, and core-hours, GPU-hours, energy and CO2e as
  ``resourceUsage``; a retried run has one action per attempt, the outputs belong to the last;
* a re-run names the crate it repeats with ``isBasedOn``.

Times are written in UTC with ``+00:00`` (the profiles' validator refuses ``Z``).  File sizes and
digests are computed here, from the files in the crate's folder; inputs read in place (outside
the folder) come with theirs, taken when the run was submitted.
"""

from __future__ import annotations

import json
import mimetypes
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rocrate.model import ContextEntity
from rocrate.rocrate import ROCrate

from .paths import relative_path
from .snapshot import sha256_file

METADATA = "ro-crate-metadata.json"
PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": "Process Run Crate",
    "https://w3id.org/ro/wfrun/workflow/0.5": "Workflow Run Crate",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": "Workflow RO-Crate",
}
#: terms used here that the RO-Crate 1.1 context lacks
EXTRA_TERMS = {
    "sha256": "http://schema.org/sha256",
    "resourceUsage": "https://w3id.org/ro/terms/workflow-run#resourceUsage",
}
NOTEBOOK_FORMAT = "application/x-ipynb+json"
_KINDS = {bool: "Boolean", int: "Integer", float: "Float", str: "Text"}


@dataclass(frozen=True)
class Person:
    """Who ran the run: the hub user, and their ORCID iD when the provider gave one."""

    username: str
    name: str = ""
    orcid: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One Slurm job of the run; ``state`` is Slurm's (``COMPLETED``, ``NODE_FAIL``, …)."""

    job_id: str
    site: str
    partition: str
    start: datetime
    end: datetime
    state: str
    nodes: tuple[str, ...] = ()
    error: str = ""
    core_hours: float | None = None
    gpu_hours: float | None = None
    energy_kwh: float | None = None
    co2e_g: float | None = None


@dataclass(frozen=True)
class InputFile:
    """A declared input: copied into the crate's folder (``path`` in it), or read in place
    (``location``: its ``file://`` URI on the site, with the size and digest taken at submit)."""

    path: str
    location: str | None = None
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """What the crate of one run (or sweep member) says, besides what its files show.

    ``notebook``, ``executed`` and ``outputs`` are paths in the crate's folder; ``source`` is
    the notebook's path at home when submitted.
    """

    run_id: str
    workflow: str
    step: str
    notebook: str
    source: str
    parameters: Mapping[str, Any]
    person: Person
    attempts: tuple[Attempt, ...]
    environment: str
    environment_sha256: str
    executed: str = "output.ipynb"
    outputs: tuple[str, ...] = ()
    inputs: tuple[InputFile, ...] = ()
    member: int | None = None
    based_on: str | None = None
    license: str = "All rights reserved by the person who ran it"


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _ref(entities: list[Any]) -> Any:
    """References to ``entities``; one alone is not wrapped in a list (RO-Crate's style)."""
    refs = [{"@id": entity.id} for entity in entities]
    return refs[0] if len(refs) == 1 else refs


def _entity(crate: ROCrate, ident: str, kind: str, **properties: Any) -> Any:
    return crate.add(ContextEntity(crate, ident, properties={"@type": kind, **properties}))


def _file(crate: ROCrate, folder: Path, rel: str, **properties: Any) -> Any:
    rel = relative_path(rel, "crate file", "the crate's folder")
    size, digest = sha256_file(folder / rel)
    guessed = mimetypes.guess_type(rel)[0]
    if guessed:
        properties.setdefault("encodingFormat", guessed)
    return crate.add_file(
        dest_path=rel, properties={"contentSize": str(size), "sha256": digest, **properties}
    )


def _data(crate: ROCrate, folder: Path, rel: str) -> Any:
    """A file, or a folder (``…/``) with each file below it (no symbolic link followed)."""
    if not rel.endswith("/"):
        return _file(crate, folder, rel)
    dataset = crate.add_dataset(dest_path=rel)
    for top, dirs, names in os.walk(folder / rel, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = Path(top) / name
            if path.is_file() and not path.is_symlink():
                part = _file(crate, folder, path.relative_to(folder).as_posix())
                dataset.append_to("hasPart", part)
    return dataset


def _parameter(crate: ROCrate, ident: str, name: str, kind: str, example: Any) -> Any:
    """The notebook's formal parameter ``ident``, and ``example`` as this run's value of it."""
    formal = _entity(
        crate,
        ident,
        "FormalParameter",
        name=name,
        additionalType=kind,
        workExample={"@id": example.id},
    )
    example["exampleOfWork"] = {"@id": formal.id}
    return formal


def _notebook(crate: ROCrate, folder: Path, record: RunRecord) -> Any:
    jupyter = "https://jupyter.org/"
    language = _entity(crate, jupyter, "ComputerLanguage", name="Jupyter Notebook", url=jupyter)
    environment = _entity(
        crate,
        "#environment",
        "SoftwareApplication",
        name=record.environment,
        identifier=f"sha256:{record.environment_sha256}",
        description="The software environment; its identifier is the SHA-256 of its sorted "
        "package list (name==version lines).",
    )
    notebook = _file(
        crate,
        folder,
        record.notebook,
        **{"@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"]},
        name=Path(record.source).name,
        alternateName=record.source,
        encodingFormat=NOTEBOOK_FORMAT,
        programmingLanguage={"@id": language.id},
        softwareRequirements={"@id": environment.id},
    )
    # the notebook's version is its content: the snapshot's digest
    notebook["version"] = notebook["sha256"]
    return notebook


def _inputs(crate: ROCrate, folder: Path, record: RunRecord, notebook: Any) -> list[Any]:
    """The run's parameter values and input files (the actions' ``object``)."""
    objects = []
    for name, value in record.parameters.items():
        # lists, mappings and None travel as JSON text: schema.org values are scalars
        structured = value is None or isinstance(value, list | dict)
        value_entity = _entity(
            crate,
            f"#parameter-value-{name}",
            "PropertyValue",
            name=name,
            value=json.dumps(value) if structured else value,
        )
        kind = "PropertyValue" if structured else _KINDS[type(value)]
        formal = _parameter(crate, f"#parameter-{name}", name, kind, value_entity)
        notebook.append_to("input", formal)
        objects.append(value_entity)
    for index, item in enumerate(record.inputs):
        if item.location is None:
            entity = _data(crate, folder, item.path)
        else:
            properties = {"contentSize": str(item.size), "sha256": item.sha256}
            entity = crate.add_file(item.location, properties=properties)
        entity["alternateName"] = item.path
        kind = "Dataset" if item.path.endswith("/") else "File"
        notebook.append_to("input", _parameter(crate, f"#input-{index}", item.path, kind, entity))
        objects.append(entity)
    return objects


def _outputs(crate: ROCrate, folder: Path, record: RunRecord, notebook: Any) -> list[Any]:
    """The executed notebook and the declared outputs the notebook wrote."""
    executed = _file(crate, folder, record.executed, encodingFormat=NOTEBOOK_FORMAT)
    formal = _parameter(crate, "#executed-notebook", "executed notebook", "File", executed)
    notebook.append_to("output", formal)
    results = [executed]
    for index, path in enumerate(record.outputs):
        path = relative_path(path, "output", "the crate's folder")
        if not (folder / path).exists():
            continue  # not written by the notebook: the run's status.json says so
        entity = _data(crate, folder, path)
        kind = "Dataset" if path.endswith("/") else "File"
        notebook.append_to("output", _parameter(crate, f"#output-{index}", path, kind, entity))
        results.append(entity)
    return results


def _where(crate: ROCrate, attempt: Attempt) -> list[Any]:
    """The node(s) an attempt ran on, each inside its partition inside its site."""
    ident = f"#site-{attempt.site}"
    site = crate.get(ident) or _entity(crate, ident, "Place", name=attempt.site)
    ident = f"{site.id}-partition-{attempt.partition}"
    partition = crate.get(ident) or _entity(
        crate,
        ident,
        "Place",
        name=f"{attempt.site} › {attempt.partition}",
        containedInPlace={"@id": site.id},
    )
    nodes = []
    for node in attempt.nodes:
        ident = f"{site.id}-node-{node}"
        nodes.append(
            crate.get(ident)
            or _entity(crate, ident, "Place", name=node, containedInPlace={"@id": partition.id})
        )
    return nodes or [partition]


def _usage(crate: ROCrate, index: int, attempt: Attempt) -> list[Any]:
    figures = [
        ("core-hours", attempt.core_hours, "HUR"),
        ("GPU-hours", attempt.gpu_hours, "HUR"),
        ("energy", attempt.energy_kwh, "KWH"),
        ("CO2e", attempt.co2e_g, "GRM"),
    ]
    return [
        _entity(
            crate,
            f"#attempt-{index}-{name.lower()}",
            "PropertyValue",
            name=name,
            value=round(value, 6),
            unitCode=unit,
        )
        for name, value, unit in figures
        if value is not None
    ]


def _attempts(crate: ROCrate, record: RunRecord, run: dict[str, Any], results: list[Any]) -> None:
    """One ``CreateAction`` per attempt; ``run`` has what they share, the last gets ``results``."""
    last = len(record.attempts)
    for index, attempt in enumerate(record.attempts, 1):
        completed = attempt.state == "COMPLETED"
        status = "Completed" if completed else "Failed"
        properties: dict[str, Any] = {
            **run,
            "name": f"Attempt {index} of {last}: Slurm job {attempt.job_id} on {attempt.site}",
            "description": f"Slurm job {attempt.job_id} ended {attempt.state}.",
            "identifier": attempt.job_id,
            "startTime": _time(attempt.start),
            "endTime": _time(attempt.end),
            # a string, as the Process Run Crate profile's own examples write it
            "actionStatus": f"http://schema.org/{status}ActionStatus",
            "location": _ref(_where(crate, attempt)),
        }
        usage = _usage(crate, index, attempt)
        if usage:
            properties["resourceUsage"] = _ref(usage)
        if not completed:
            properties["error"] = (
                f"{attempt.state}: {attempt.error}" if attempt.error else attempt.state
            )
        if index == last:
            properties["result"] = _ref(results)
        action = _entity(crate, f"#attempt-{index}", "CreateAction", **properties)
        crate.root_dataset.append_to("mentions", action)


def build_crate(folder: str | os.PathLike[str], record: RunRecord) -> ROCrate:
    """The crate of ``record``, its files found in ``folder``."""
    folder = Path(folder)
    crate = ROCrate(version="1.1")
    crate.metadata.extra_terms.update(EXTRA_TERMS)
    crate.metadata["conformsTo"] = [
        {"@id": "https://w3id.org/ro/crate/1.1"},
        {"@id": "https://w3id.org/workflowhub/workflow-ro-crate/1.0"},
    ]
    member = "" if record.member is None else f" member {record.member}"
    crate.name = f"Run {record.run_id}: {record.workflow}/{record.step}{member}"
    crate.description = f"Provenance of a batch run of the notebook {record.source}."
    crate.license = record.license
    crate.datePublished = _time(max(a.end for a in record.attempts))
    for ident, name in PROFILES.items():
        profile = _entity(crate, ident, "CreativeWork", name=name)
        crate.root_dataset.append_to("conformsTo", profile)
    notebook = _notebook(crate, folder, record)
    crate.mainEntity = notebook
    objects = _inputs(crate, folder, record, notebook)
    results = _outputs(crate, folder, record, notebook)
    person = record.person
    agent = _entity(
        crate,
        person.orcid or f"#person-{person.username}",
        "Person",
        name=person.name or person.username,
        alternateName=person.username,
    )
    crate.root_dataset["author"] = {"@id": agent.id}
    run = {"instrument": {"@id": notebook.id}, "agent": {"@id": agent.id}}
    if objects:
        run["object"] = _ref(objects)
    _attempts(crate, record, run, results)
    if record.based_on:
        _entity(crate, record.based_on, "CreativeWork", name="The provenance of the run repeated")
        crate.root_dataset["isBasedOn"] = {"@id": record.based_on}
    return crate


def write_crate(folder: str | os.PathLike[str], record: RunRecord) -> Path:
    """Write ``ro-crate-metadata.json`` of ``record`` into ``folder`` (atomically); its path."""
    folder = Path(folder)
    document = build_crate(folder, record).metadata.generate()
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".crate-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(document, file, indent=2, ensure_ascii=False)
        os.replace(temporary, folder / METADATA)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return folder / METADATA
