"""The in-job entry point: ``continuum-workflow-run RUN_FOLDER [--member INDEX]``.

(The same command's subcommands ``prepare``, ``report``, ``cat`` and ``archive``, which the
workflow service runs as the user to make and read run folders, are in :mod:`.runfolder` and
:mod:`.archive`; a folder literally named like one of them is given as ``./prepare``.)

A run's Slurm job runs this command and nothing else of the user's choosing: everything it does
is read from the run's folder, which the workflow service prepared at submit::

    RUN_FOLDER/
      run.json                      {"version": 1, "notebook": "snapshots/<sha256>.ipynb",
                                     "kernel": "python3", "parameters": {...},
                                     "outputs": ["results/"]}
      snapshots/<sha256>.ipynb      the notebook as it was at submit
      status.json, output.ipynb     written here (a single run)
      members/<i>/parameters.json   a sweep ("members": N instead of "parameters"): member i's
      members/<i>/status.json …     values, and its status and executed notebook

The member comes from ``--member`` or, in a job array, ``SLURM_ARRAY_TASK_ID``.  Parameters
come only from those JSON files — never from the command line or the environment — and reach
the notebook through papermill's injected cell, so any text arrives verbatim.  The notebook runs
with its member's folder as working folder (declared outputs are relative to it), files are
created 0600 and folders 0700 (umask 077), and progress goes to ``status.json``
(:mod:`.progress`), with the Slurm job, task and node that ran it.  When the last member ends,
the run's provenance crate is written (:mod:`.finish`).  Exit status: 0 done, 1 the notebook
failed (or could not start), 2 the run folder is unusable (nothing is executed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from . import runfolder
from .params import ParameterError, check_parameters
from .paths import PathError, open_under, relative_path

# .finish (rocrate) and .progress (papermill → nbformat → jsonschema) take seconds to import:
# imported only where a notebook runs, not for the service's prepare/report/cat, which it
# waits for at every submit and every poll of a running run

EXIT_DONE, EXIT_FAILED, EXIT_BAD_FOLDER = 0, 1, 2
RUN_FILE = "run.json"
OUTPUT = "output.ipynb"
STATUS = "status.json"
KERNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: largest run.json / parameters.json read (their parameters are bounded far below)
MAX_JSON_BYTES = 1 << 20


class RunFolderError(ValueError):
    """The run folder cannot be run; the message says why."""


@dataclass(frozen=True)
class RunSpec:
    """What one execution does, read from the run folder."""

    folder: Path
    notebook: Path
    kernel: str
    parameters: dict[str, Any]
    #: where output.ipynb and status.json go; the notebook's working folder
    workdir: Path
    outputs: tuple[str, ...] = ()
    member: int | None = None


def _read_json(folder: Path, rel: str) -> Any:
    try:
        fd = open_under(folder, rel, "file")
    except PathError as exc:
        raise RunFolderError(str(exc)) from None
    with os.fdopen(fd, "rb") as file:
        data = file.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise RunFolderError(f"{rel} is larger than {MAX_JSON_BYTES} bytes")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise RunFolderError(f"{rel} is not valid JSON: {exc}") from None


def read_run(
    folder: str | os.PathLike[str], member: int | None = None, array_index: int | None = None
) -> RunSpec:
    """Read and check ``run.json`` (and the member's ``parameters.json``) in ``folder``.

    Parameters
    ----------
    member
        The sweep member asked for (``--member``).
    array_index
        The job array's index, the member of a sweep when ``member`` is not given; ignored for
        a run that is no sweep.

    Raises
    ------
    RunFolderError
        Missing or malformed files, a notebook outside the folder, bad parameters, a member
        index for a run that is no sweep or none for one that is.
    """
    # absolute: the notebook runs in another working folder
    folder = Path(folder).absolute()
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a folder")
    run = _read_json(folder, RUN_FILE)
    if not isinstance(run, dict) or run.get("version") != 1:
        raise RunFolderError(f"{RUN_FILE} is not a version 1 run description")
    try:
        notebook = relative_path(run.get("notebook"), "notebook", "the run folder")
        os.close(open_under(folder, notebook, "notebook"))
        outputs = tuple(
            relative_path(path, "output", "the run folder") for path in run.get("outputs", [])
        )
    except PathError as exc:
        raise RunFolderError(f"{RUN_FILE}: {exc}") from None
    kernel = run.get("kernel", "python3")
    if not isinstance(kernel, str) or not KERNEL_NAME.match(kernel):
        raise RunFolderError(f"{RUN_FILE}: kernel {kernel!r} is not a kernel name")
    members = run.get("members")
    if members is None:
        if member is not None:
            raise RunFolderError(f"member {member} given, but this run is not a sweep")
        workdir, where, parameters = folder, RUN_FILE, run.get("parameters", {})
    else:
        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise RunFolderError(f"{RUN_FILE}: members must be a positive number")
        member = array_index if member is None else member
        if member is None:
            raise RunFolderError(
                f"this run is a sweep of {members} members: give --member or run it as a job array"
            )
        if not 0 <= member < members:
            raise RunFolderError(f"member {member} is not between 0 and {members - 1}")
        workdir = folder / "members" / str(member)
        where = f"members/{member}/parameters.json"
        parameters = _read_json(folder, where)
    try:
        parameters = check_parameters(parameters)
    except ParameterError as exc:
        raise RunFolderError(f"{where}: {exc}") from None
    return RunSpec(folder, folder / notebook, kernel, parameters, workdir, outputs, member)


def environment() -> dict[str, Any]:
    """The job's Python environment: interpreter, and a digest of its installed packages.

    The digest is the SHA-256 of the sorted ``name==version`` lines of every distribution the
    interpreter sees, so two runs in the same environment record the same value.
    """
    packages = sorted(
        {f"{d.metadata['Name']}=={d.version}".lower() for d in metadata.distributions()}
    )
    digest = hashlib.sha256("\n".join(packages).encode()).hexdigest()
    return {
        "python": sys.executable,
        "python_version": sys.version.split()[0],
        "packages": len(packages),
        "packages_sha256": digest,
    }


def execute(spec: RunSpec) -> int:
    """Execute the run's notebook into ``output.ipynb``, keeping ``status.json`` current."""
    import papermill
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError

    from . import finish
    from .progress import ENGINE_NAME, ProgressEngine, StatusFile, now

    papermill_engines.register(ENGINE_NAME, ProgressEngine)
    status = StatusFile(spec.workdir / STATUS)
    status.update(
        state="running",
        started=now(),
        ended=None,
        member=spec.member,
        environment=environment(),
        job=finish.job_facts(),
    )
    try:
        papermill.execute_notebook(
            str(spec.notebook),
            str(spec.workdir / OUTPUT),
            parameters=spec.parameters,
            engine_name=ENGINE_NAME,
            kernel_name=spec.kernel,
            progress_bar=False,
            log_output=False,
            # the notebook's own prints go to the job's stdout/stderr files
            stdout_file=sys.stdout,
            stderr_file=sys.stderr,
            cwd=str(spec.workdir),
            progress=status,
        )
    except PapermillExecutionError as exc:
        status.update(
            state="failed",
            ended=now(),
            failed_cell=exc.cell_index,
            failed_execution_count=exc.exec_count,
            error={"name": exc.ename, "message": exc.evalue},
        )
        return EXIT_FAILED
    except Exception as exc:  # the kernel did not start, the output could not be written, …
        status.update(
            state="failed", ended=now(), error={"name": type(exc).__name__, "message": str(exc)}
        )
        return EXIT_FAILED
    missing = [path for path in spec.outputs if not (spec.workdir / path).exists()]
    status.update(state="done", ended=now(), missing_outputs=missing)
    return EXIT_DONE


def main(argv: list[str] | None = None) -> int:
    """Run one run (or sweep member) of the workflow service; see the module's docstring."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("prepare", "report", "cat", "archive"):
        return runfolder.main(argv)
    parser = argparse.ArgumentParser(
        prog="continuum-workflow-run",
        description="Execute a batch run's notebook snapshot as its run folder describes.",
    )
    parser.add_argument("folder", type=Path, help="the run's folder (holds run.json)")
    parser.add_argument(
        "--member", type=int, help="sweep member to run (default: $SLURM_ARRAY_TASK_ID)"
    )
    args = parser.parse_args(argv)
    os.umask(0o077)
    array_index = os.environ.get("SLURM_ARRAY_TASK_ID", "")
    try:
        spec = read_run(
            args.folder, args.member, int(array_index) if array_index.isdigit() else None
        )
    except RunFolderError as exc:
        print(f"continuum-workflow-run: {exc}", file=sys.stderr)
        return EXIT_BAD_FOLDER
    result = execute(spec)
    from . import finish

    try:
        finish.finish(spec.folder)
    except Exception as exc:  # provenance must not turn a finished run into a failed one
        print(f"continuum-workflow-run: no provenance crate written: {exc}", file=sys.stderr)
    return result


if __name__ == "__main__":
    sys.exit(main())
