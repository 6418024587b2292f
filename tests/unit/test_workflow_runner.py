"""The in-job runner, run for real: ``continuum-workflow-run`` as a subprocess executing a
notebook snapshot on the environment's ``python3`` kernel through papermill.

Each run prepares a run folder as the workflow service will (``run.json``, the snapshot, a
sweep's ``members/<i>/parameters.json``) and checks what the job leaves there: the executed
notebook with the injected values, the values as the kernel saw them, ``status.json`` (written
while cells run, and naming the failing cell), file modes, exit status.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from continuum_hub.workflows import snapshot
from continuum_hub.workflows.runner import RunFolderError, read_run

pytestmark = pytest.mark.workflows

RUNNER = Path(sys.executable).with_name("continuum-workflow-run")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
TRICKY = "line one\n$(touch /tmp/pwned); `id` && rm -rf ~ | tee x > y\r\n'single' \"double\" \\ é ∞"
PARAMETERS = 'n_events: int = 10\nlabel: str = "default"\nfail: bool = False\nwait_for: str = ""'
CELLS = [
    "import json, pathlib\n"
    "pathlib.Path('received.json').write_text(json.dumps({'n_events': n_events, 'label': label}))\n"
    "pathlib.Path('made-here').mkdir()",
    "import time\nwhile wait_for and not pathlib.Path(wait_for).exists():\n    time.sleep(0.05)",
    "if fail:\n    raise ValueError('asked to fail: ' + label)",
    "print('end of', label)",
]
#: cells as executed: the parameters cell, papermill's injected cell, then CELLS
WAIT_CELL, FAIL_CELL, TOTAL = 3, 4, 6


def notebook_bytes() -> bytes:
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, *(nbformat.v4.new_code_cell(source) for source in CELLS)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nbformat.writes(nb).encode()


def prepare(folder: Path, **run: object) -> Path:
    """A run folder with the test notebook's snapshot and ``run.json`` (``run`` overrides)."""
    stored = snapshot.store(folder, notebook_bytes(), "analysis/test.ipynb")
    description = {
        "version": 1,
        "notebook": stored.path.relative_to(folder).as_posix(),
        "kernel": "python3",
        "outputs": ["received.json", "made-here/"],
        **run,
    }
    (folder / "run.json").write_text(json.dumps(description))
    return folder


def execute(folder: Path, *args: str, env: dict[str, str] | None = None, command=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    command = command or [sys.executable, "-m", "continuum_hub.workflows.runner"]
    return subprocess.run(
        [*command, str(folder), *args],
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


def status(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


def test_values_arrive_verbatim(tmp_path):
    """Through the console script; shell metacharacters and newlines reach the kernel as is."""
    run = prepare(tmp_path, parameters={"n_events": 42, "label": TRICKY})
    result = execute(run, command=[str(RUNNER)])
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "received.json").read_text()) == {"n_events": 42, "label": TRICKY}
    assert not Path("/tmp/pwned").exists()
    executed = nbformat.read(run / "output.ipynb", as_version=4)
    injected = executed.cells[1]
    assert "injected-parameters" in injected.metadata["tags"]
    assert "n_events = 42" in injected.source
    # the notebook's own output goes to the job's stdout
    assert "end of line one\n$(touch /tmp/pwned)" in result.stdout
    state = status(run)
    assert state["state"] == "done"
    assert (state["cell"], state["cells"]) == (TOTAL - 1, TOTAL)
    assert ISO_UTC.match(state["started"]) and ISO_UTC.match(state["ended"])
    assert state["missing_outputs"] == []
    assert re.fullmatch(r"[0-9a-f]{64}", state["environment"]["packages_sha256"])
    for name in ("output.ipynb", "status.json", "received.json"):
        assert (run / name).stat().st_mode & 0o777 == 0o600, name
    assert (run / "made-here").stat().st_mode & 0o777 == 0o700


def test_status_follows_the_cells(tmp_path):
    run = prepare(tmp_path, parameters={"wait_for": "go"})
    job = subprocess.Popen(
        [sys.executable, "-m", "continuum_hub.workflows.runner", str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        seen = None
        while time.monotonic() < deadline and job.poll() is None:
            if (run / "status.json").exists():
                seen = status(run)
                if seen.get("cell") == WAIT_CELL:
                    break
            time.sleep(0.05)
        assert seen is not None and seen["state"] == "running"
        assert (seen["cell"], seen["cells"]) == (WAIT_CELL, TOTAL)
        assert seen["ended"] is None
        (run / "go").touch()
        assert job.wait(timeout=60) == 0
    finally:
        job.kill()
    assert status(run)["state"] == "done"


def test_failing_cell_is_reported(tmp_path):
    run = prepare(tmp_path, parameters={"fail": True, "label": "x"})
    result = execute(run)
    assert result.returncode == 1
    state = status(run)
    assert state["state"] == "failed"
    assert state["failed_cell"] == FAIL_CELL
    assert state["failed_execution_count"] == FAIL_CELL + 1
    assert state["error"] == {"name": "ValueError", "message": "asked to fail: x"}
    assert ISO_UTC.match(state["ended"])
    executed = nbformat.read(run / "output.ipynb", as_version=4)
    # papermill's banner first, its anchor before the failing cell
    assert "papermill-error-cell-tag" in executed.cells[0].metadata["tags"]
    assert executed.cells[FAIL_CELL + 2].outputs[0]["ename"] == "ValueError"
    assert "end of" not in result.stdout


def test_sweep_members(tmp_path):
    run = prepare(tmp_path, members=2)
    for index, label in enumerate(["zero", "one"]):
        (run / "members" / str(index)).mkdir(parents=True)
        (run / "members" / str(index) / "parameters.json").write_text(json.dumps({"label": label}))
    assert execute(run, env={"SLURM_ARRAY_TASK_ID": "1"}).returncode == 0
    assert not (run / "members" / "0" / "output.ipynb").exists()
    assert execute(run, "--member", "0", env={"SLURM_ARRAY_TASK_ID": "1"}).returncode == 0
    for index, label in enumerate(["zero", "one"]):
        member = run / "members" / str(index)
        received = json.loads((member / "received.json").read_text())
        assert received == {"n_events": 10, "label": label}
        assert status(member)["member"] == index and status(member)["state"] == "done"
    assert not (run / "output.ipynb").exists()


def test_missing_kernel_fails_the_run(tmp_path):
    run = prepare(tmp_path, kernel="no-such-kernel")
    assert execute(run).returncode == 1
    assert status(run)["state"] == "failed"
    assert status(run)["error"]["name"] == "NoSuchKernel"


def test_unusable_run_folder_exits_2(tmp_path):
    run = prepare(tmp_path, parameters={"a b": 1})
    result = execute(run)
    assert result.returncode == 2
    assert result.stderr == (
        "continuum-workflow-run: run.json: parameter name 'a b' is not a Python identifier\n"
    )
    assert sorted(p.name for p in run.iterdir()) == ["run.json", "snapshots"]


def _symlinked_notebook(folder: Path) -> None:
    (folder / "elsewhere.ipynb").symlink_to(next((folder / "snapshots").iterdir()))
    (folder / "run.json").write_text(json.dumps({"version": 1, "notebook": "elsewhere.ipynb"}))


def _rewrite(**changes):
    def change(folder: Path) -> None:
        description = json.loads((folder / "run.json").read_text())
        (folder / "run.json").write_text(json.dumps({**description, **changes}))

    return change


@pytest.mark.parametrize(
    "change,member,error",
    [
        pytest.param(
            lambda f: (f / "run.json").unlink(),
            None,
            "file 'run.json' does not exist",
            id="no-run-json",
        ),
        pytest.param(
            lambda f: (f / "run.json").write_text("{"),
            None,
            "run.json is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
            id="not-json",
        ),
        pytest.param(
            _rewrite(version=2), None, "run.json is not a version 1 run description", id="version"
        ),
        pytest.param(
            _rewrite(notebook="../../home/bob/x.ipynb"),
            None,
            "run.json: notebook '../../home/bob/x.ipynb' contains '..': a path may not leave "
            "the run folder",
            id="notebook-outside",
        ),
        pytest.param(
            _symlinked_notebook,
            None,
            "run.json: notebook 'elsewhere.ipynb' passes through the symbolic link "
            "'elsewhere.ipynb'",
            id="symlinked-notebook",
        ),
        pytest.param(
            _rewrite(outputs=["/etc/x"]),
            None,
            "run.json: output '/etc/x' is absolute: give a path relative to the run folder",
            id="absolute-output",
        ),
        pytest.param(
            _rewrite(kernel="python3; rm -rf ~"),
            None,
            "run.json: kernel 'python3; rm -rf ~' is not a kernel name",
            id="kernel",
        ),
        pytest.param(
            _rewrite(parameters={"x": "a" * 5000}),
            None,
            "run.json: parameter 'x': the value is 5002 bytes as JSON, more than the limit of 4096",
            id="long-value",
        ),
        pytest.param(
            _rewrite(members=2),
            None,
            "this run is a sweep of 2 members: give --member or run it as a job array",
            id="sweep-without-member",
        ),
        pytest.param(
            _rewrite(members=2), 5, "member 5 is not between 0 and 1", id="member-out-of-range"
        ),
        pytest.param(
            _rewrite(members=2),
            1,
            "file 'members/1/parameters.json' does not exist",
            id="member-without-parameters",
        ),
        pytest.param(
            _rewrite(members=True), 0, "run.json: members must be a positive number", id="m"
        ),
        pytest.param(
            lambda f: None, 0, "member 0 given, but this run is not a sweep", id="not-a-sweep"
        ),
    ],
)
def test_read_run_refuses(tmp_path, change, member, error):
    run = prepare(tmp_path)
    change(run)
    with pytest.raises(RunFolderError) as caught:
        read_run(run, member)
    assert str(caught.value) == error


def test_read_run_ignores_the_array_index_of_a_single_run(tmp_path):
    spec = read_run(prepare(tmp_path, parameters={"n_events": 1}), None, array_index=3)
    assert spec.member is None and spec.workdir == tmp_path and spec.parameters == {"n_events": 1}
    with pytest.raises(RunFolderError, match="is not a folder"):
        read_run(tmp_path / "missing")
