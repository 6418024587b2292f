"""The end of a run in its job: the member's job facts, and the run's provenance crate.

Each member (a single run is one) records in its ``status.json`` which Slurm job ran it
(:func:`job_facts`: ``SLURM_ARRAY_JOB_ID`` or ``SLURM_JOB_ID``, the task, ``SLURMD_NODENAME``).
When it ends, :func:`finish` takes the run folder's lock (``.crate.lock``, ``fcntl.flock``) and,
if every member has ended and no crate exists yet, writes ``ro-crate-metadata.json`` with
:func:`~.crate.write_crate`: so the member that ends last writes it, once, whatever the order in
which a job array's tasks end.

A sweep's crate is one attempt (its job array): the members' parameter files are its inputs,
their executed notebooks (and declared outputs) its results, core-hours and the energy estimate
summed over members.  The facts the job cannot know — the person, site, partition, resources,
the site's power data, earlier attempts, the crate a re-run repeats — come from ``run.json``,
written by the workflow service at submit.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from continuum_spawners.impact import PowerModel, estimate

from .crate import METADATA, Attempt, InputFile, Person, RunRecord, write_crate

FINAL = frozenset({"done", "failed"})
LOCK = ".crate.lock"


def job_facts(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The Slurm job, task and node running this process (empty outside Slurm)."""
    env = os.environ if environ is None else environ
    facts = {
        "job_id": env.get("SLURM_ARRAY_JOB_ID") or env.get("SLURM_JOB_ID", ""),
        "task": env.get("SLURM_ARRAY_TASK_ID", ""),
        "node": env.get("SLURMD_NODENAME", ""),
    }
    return {k: v for k, v in facts.items() if v}


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text).astimezone(UTC) if text else None
    except (TypeError, ValueError):
        return None


def _statuses(folder: Path, members: int | None) -> list[dict[str, Any]]:
    """Every member's status.json (an empty mapping where there is none yet)."""
    paths = (
        [folder / "status.json"]
        if members is None
        else [folder / "members" / str(i) / "status.json" for i in range(members)]
    )
    statuses = []
    for path in paths:
        try:
            statuses.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            statuses.append({})
    return statuses


def _attempt(run: dict[str, Any], statuses: list[dict[str, Any]]) -> Attempt:
    """This attempt (the job, or job array) from the members' status files."""
    starts = [t for t in (_when(s.get("started")) for s in statuses) if t]
    ends = [t for t in (_when(s.get("ended")) for s in statuses) if t]
    start = min(starts, default=datetime.now(UTC))
    end = max(ends, default=datetime.now(UTC))
    hours = sum(
        max(0.0, (e - b).total_seconds()) / 3600
        for b, e in ((_when(s.get("started")), _when(s.get("ended"))) for s in statuses)
        if b and e
    )
    cores, gpus = int(run.get("cores") or 1), int(run.get("gpus") or 0)
    energy = co2e = None
    power = run.get("power") or None
    if power:
        # the model of the estimate before submit and of the usage views, over the time used
        model = PowerModel(
            watts_per_core=power.get("watts_per_core") or 0.0,
            watts_per_gpu=power.get("watts_per_gpu") or 0.0,
            memory_watts_per_gb=power.get("memory_watts_per_gb") or 0.0,
            pue=power.get("pue") or 1.0,
            grid_gco2e_per_kwh=power.get("grid_gco2e_per_kwh") or 0.0,
            source=str(power.get("source") or "registry"),
        )
        use = estimate(model, cores, gpus, float(run.get("memory_gb") or 0), hours)
        energy, co2e = use.energy_kwh, use.co2e_kg * 1000
    failed = [s for s in statuses if s.get("state") != "done"]
    error = ""
    if failed:
        problem = failed[0].get("error") or {}
        error = f"{problem.get('name', '')}: {problem.get('message', '')}".strip(": ")
    job = next((s.get("job") for s in statuses if s.get("job")), {}) or {}
    nodes = sorted({s.get("job", {}).get("node") for s in statuses} - {None, ""})
    return Attempt(
        job_id=str(job.get("job_id") or run.get("job_id") or "unknown"),
        site=str(run.get("site", "")),
        partition=str(run.get("partition", "")),
        start=start,
        end=end,
        state="FAILED" if failed else "COMPLETED",
        nodes=tuple(nodes),
        error=error[:500],
        core_hours=hours * cores,
        gpu_hours=hours * gpus if gpus else None,
        energy_kwh=energy,
        co2e_g=co2e,
    )


def attempt_times(folder: Path) -> dict[str, tuple[datetime, datetime, list[str]]]:
    """Earlier attempts' own job times, by job id, from what they left in ``attempts/<n>/``:
    the members' first start and last end, and their nodes (as their ``status.json`` say)."""
    found: dict[str, tuple[datetime, datetime, list[str]]] = {}
    paths = [
        *folder.glob("attempts/*/status.json"),
        *folder.glob("attempts/*/members/*/status.json"),
    ]
    for path in paths:
        try:
            status = json.loads(path.read_text()) if not path.is_symlink() else {}
        except (OSError, ValueError):
            continue
        job = status.get("job") if isinstance(status, dict) else None
        start, end = _when(status.get("started")), _when(status.get("ended"))
        if not (isinstance(job, dict) and job.get("job_id") and start and end):
            continue
        key = str(job["job_id"])
        first, last, nodes = found.get(key, (start, end, []))
        node = job.get("node")
        found[key] = (min(first, start), max(last, end), nodes + ([node] if node else []))
    return found


def _previous(run: dict[str, Any], folder: Path | None = None) -> list[Attempt]:
    """The earlier attempts of ``run.json``, with the jobs' own start, end and nodes where
    their files in ``folder`` tell them (the service's times otherwise)."""
    attempts = []
    own = attempt_times(folder) if folder is not None else {}
    for item in run.get("previous_attempts") or []:
        start, end = _when(item.get("start")), _when(item.get("end"))
        nodes = item.get("nodes") or ()
        if str(item.get("job_id")) in own:
            start, end, found = own[str(item.get("job_id"))]
            nodes = sorted(set(found)) or nodes
        if start and end:
            attempts.append(
                Attempt(
                    str(item.get("job_id", "unknown")),
                    str(item.get("site", "")),
                    str(item.get("partition", "")),
                    start,
                    end,
                    str(item.get("state", "FAILED")),
                    tuple(nodes),
                    str(item.get("error", "")),
                )
            )
    return attempts


def previous_attempts(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's earlier attempts that reached the scheduler, as its crate records them.

    The workflow service's side of :func:`_previous`: ``run`` is its stored run (with its
    ``attempts``), the result goes to ``run.json``'s ``previous_attempts``.  ``start``/``end``
    are when the service submitted the job and saw it end; the crate prefers the job's own
    times from the files that attempt left in ``attempts/<n>/`` (:func:`attempt_times`), where
    the folder has them (not after a move to a site without the same home); ``state`` in
    Slurm's words.
    """
    resources = run.get("resources") or {}
    found = []
    for attempt in run["attempts"]:
        if not attempt.get("job_id"):
            continue  # never submitted (a service stopped before sbatch)
        entry = {k: attempt.get(k) for k in ("site", "job_id", "reason", "submitted", "ended")}
        state = str(attempt.get("state") or "failed")
        entry.update(
            state="FAILED" if state == "failed" else state.upper(),
            error=attempt.get("reason") or "",
            start=attempt.get("submitted"),
            end=attempt.get("ended") or datetime.now(UTC).isoformat(),
        )
        if attempt["site"] == resources.get("site") and resources.get("partition"):
            entry["partition"] = resources["partition"]
        found.append(entry)
    return found


def record(folder: Path, run: dict[str, Any], statuses: list[dict[str, Any]]) -> RunRecord | None:
    """The crate's record of the run in ``folder``; ``None`` when no notebook was executed."""
    members = run.get("members")
    prefixes = [""] if members is None else [f"members/{i}/" for i in range(members)]
    executed = [f"{p}output.ipynb" for p in prefixes if (folder / p / "output.ipynb").is_file()]
    if not executed:
        return None
    declared = [str(path) for path in run.get("outputs", [])]
    outputs = [*executed[1:], *(f"{p}{path}" for p in prefixes for path in declared)]
    inputs = [
        InputFile(item["path"], item.get("location"), item.get("size"), item.get("sha256"))
        for item in run.get("inputs", [])
        if isinstance(item, dict) and item.get("location") and item.get("sha256")
    ]
    # inputs copied into the folder at submit (.inputs): described from their copies there
    inputs += [
        InputFile(item["path"])
        for item in run.get("inputs", [])
        if isinstance(item, dict) and item.get("copy") is True and (folder / item["path"]).exists()
    ]
    if members is not None:
        inputs += [InputFile(f"{p}parameters.json") for p in prefixes]
    person = run.get("person") or {}
    environment = next((s["environment"] for s in statuses if s.get("environment")), {})
    return RunRecord(
        run_id=str(run.get("run_id", folder.name)),
        workflow=str(run.get("workflow") or run.get("name") or "run"),
        step=str(run.get("step") or "notebook"),
        notebook=run["notebook"],
        source=str(run.get("source") or run.get("name") or run["notebook"]),
        parameters=run.get("parameters") or run.get("common_parameters") or {},
        person=Person(
            str(person.get("username", "")), str(person.get("name", "")), person.get("orcid")
        ),
        attempts=(*_previous(run, folder), _attempt(run, statuses)),
        environment=str(run.get("environment") or "default"),
        environment_sha256=str(environment.get("packages_sha256") or "0" * 64),
        executed=executed[0],
        outputs=tuple(outputs),
        inputs=tuple(inputs),
        based_on=run.get("based_on"),
    )


def finish(folder: str | os.PathLike[str]) -> Path | None:
    """Write the run's crate if every member has ended and none exists yet (under the lock);
    its path, or ``None`` when it is not (yet) this member's to write."""
    folder = Path(folder)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(folder / LOCK, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if (folder / METADATA).exists():
            return None
        run = json.loads((folder / "run.json").read_text())
        statuses = _statuses(folder, run.get("members"))
        if not all(s.get("state") in FINAL for s in statuses):
            return None
        described = record(folder, run, statuses)
        return None if described is None else write_crate(folder, described)
    finally:
        os.close(fd)  # releases the lock
