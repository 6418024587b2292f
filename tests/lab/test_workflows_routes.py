"""The batch-run routes (``continuum/workflows/…``) on a real Jupyter server.

The ``workflows`` service is a small fake on 127.0.0.1 (the boundary of this unit: it records
what reaches it and answers what a test chose); the real service is tested with the hub in
``tests/integration/``. The server finds it as in a hub: below the hub's base derived from
``JUPYTERHUB_API_URL``, with the server's ``JUPYTERHUB_API_TOKEN``.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import nbformat
import pytest
from lab_support import JOB_ENV, LabServer, call, isolated_jupyter_env, serving, start_lab_server

from continuum_federation.process import free_port
from continuum_lab.notebooks import MAX_NOTEBOOK_BYTES
from continuum_lab.workflows import WorkflowsError, WorkflowsManager, service_endpoint

pytestmark = [pytest.mark.lab, pytest.mark.workflows]

API = "/services/workflows/api/v1/"
FLOW = """name: scan
steps:
  - name: first
    notebook: work/analysis.ipynb
    sweep: {n: [1, 2]}
  - name: second
    notebook: plain.ipynb
    depends_on: [first]
  - name: third
    notebook: work/analysis.ipynb
"""
PARAMETERS = 'n: int = 3\nlabel = "run A"\nrate = 0.5\nflags = [1, 2]\nshape = np.arange(3)\n'


@dataclass
class FakeService:
    """What the fake service answers (``answers[(method, path)] = (status, body)``) and saw."""

    url: str
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    answers: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    seen: list[tuple[str, str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def service() -> Iterator[FakeService]:
    """The fake ``workflows`` service on a free port (see the module's docstring)."""
    port = free_port()
    fake = FakeService(url=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            if self.headers.get("Authorization") != f"token {fake.token}":
                status, reply = 403, {"message": "no such token"}
            else:
                path = self.path.removeprefix(API)
                fake.seen.append((method, path, body))
                status, reply = fake.answers.get((method, path), (404, {"message": "no route"}))
            raw = isinstance(reply, bytes)  # a download (the run folder's archive)
            data = reply if raw else b"" if reply is None else json.dumps(reply).encode()
            self.send_response(status)
            if raw:
                self.send_header("Content-Disposition", 'attachment; filename="scan-r-1.tar.gz"')
            self.send_header("Content-Type", "application/gzip" if raw else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self.answer("GET")

        def do_POST(self) -> None:
            self.answer("POST")

        def do_DELETE(self) -> None:
            self.answer("DELETE")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler, port):
        yield fake


def write_notebook(path: Path, parameters: str | None = None) -> dict[str, Any]:
    """A small notebook at ``path`` (a tagged parameters cell when given); its JSON."""
    notebook = nbformat.v4.new_notebook()
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        notebook.cells.append(cell)
    notebook.cells.append(nbformat.v4.new_code_cell("print(n * rate)"))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's root with notebooks to submit and others that must be refused."""
    base = tmp_path_factory.mktemp("lab-workflows")
    root = base / "home"
    write_notebook(root / "work" / "analysis.ipynb", PARAMETERS)
    write_notebook(root / "plain.ipynb")
    write_notebook(base / "outside.ipynb")
    write_notebook(base / "elsewhere" / "secret.ipynb")
    (root / "linked.ipynb").symlink_to(base / "outside.ipynb")
    (root / "linkdir").symlink_to(base / "elsewhere")
    (root / "notes.txt").write_text("not a notebook")
    (root / "work" / "flow.yaml").write_text(FLOW)
    (root / "work" / "linked-step.yml").write_text(FLOW.replace("work/analysis", "linked"))
    big = nbformat.v4.new_notebook()
    big.cells.append(nbformat.v4.new_markdown_cell("x" * MAX_NOTEBOOK_BYTES))
    nbformat.write(big, root / "big.ipynb")
    return root


@pytest.fixture(scope="module")
def server(service: FakeService, home: Path) -> Iterator[LabServer]:
    """A Jupyter server for alice whose hub (and so whose workflows service) is the fake."""
    env = isolated_jupyter_env(
        home,
        **JOB_ENV,
        JUPYTERHUB_API_URL=f"{service.url}/hub/api",
        JUPYTERHUB_API_TOKEN=service.token,
    )
    lab = start_lab_server(Path(sys.executable), home, env)
    try:
        yield lab
    finally:
        lab.process.stop()


def run(run_id: str = "r-0123456789ab", **extra: Any) -> dict[str, Any]:
    return {"id": run_id, "owner": "alice", "state": "queued", "members": [], **extra}


def test_a_submission_carries_the_notebook_and_the_settings(
    server: LabServer, service: FakeService, home: Path
) -> None:
    service.answers[("POST", "runs")] = (201, run())
    settings = {
        "parameters": {"n": 7, "label": "it's $(not) a shell;\nline"},
        "sweep": {"grid": {"rate": [0.1, 0.2, 0.4]}},
        "max_parallel": 2,
        "resources": {"site": "alpha", "partition": "batch", "cores": 1},
        "outputs": ["results/"],
        "retries": 1,
    }
    answer = call(
        server, "POST", "workflows/runs", {"path": "work/analysis.ipynb", **settings, "x": 1}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["id"] == "r-0123456789ab"
    method, path, body = service.seen[-1]
    assert (method, path) == ("POST", "runs")
    assert body["notebook"]["path"] == "work/analysis.ipynb"
    on_disk = nbformat.read(home / "work/analysis.ipynb", as_version=4)
    assert body["notebook"]["content"] == json.loads(json.dumps(on_disk))
    assert {k: body[k] for k in settings} == settings
    assert "x" not in body and "path" not in body  # only the contract's fields travel


@pytest.mark.parametrize(
    "path,status,said",
    [
        ("../outside.ipynb", 403, "not a path below your home folder"),
        ("work/../../outside.ipynb", 403, "not a path below your home folder"),
        ("linked.ipynb", 403, "symbolic link"),
        ("linkdir/secret.ipynb", 403, "symbolic link"),
        ("big.ipynb", 413, "at most 16 MiB"),
        ("missing.ipynb", 404, "no such notebook"),
        ("notes.txt", 400, "not a notebook"),
        ("", 400, "path must name a notebook"),
    ],
    ids=[
        "dotdot",
        "dotdot-inside",
        "symlink",
        "symlinked-folder",
        "too-large",
        "missing",
        "txt",
        "empty",
    ],
)
def test_notebooks_that_must_not_be_sent_are_refused(
    server: LabServer, service: FakeService, path: str, status: int, said: str
) -> None:
    before = len(service.seen)
    for method, route in (("POST", "workflows/runs"), ("GET", "workflows/parameters")):
        if method == "POST":
            answer = call(server, method, route, {"path": path})
        else:
            answer = call(server, method, f"{route}?path={path}")
        assert answer.status_code == status, answer.text
        assert said in answer.json()["message"]
    assert len(service.seen) == before  # nothing reached the service


def test_the_parameters_cell_is_described_with_types(server: LabServer) -> None:
    answer = call(server, "GET", "workflows/parameters?path=work/analysis.ipynb")
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["cell"] is True and data["path"] == "work/analysis.ipynb"
    found = {p["name"]: (p["type"], p["value"], p["known"]) for p in data["parameters"]}
    assert found == {
        "n": ("int", 3, True),
        "label": ("str", "run A", True),
        "rate": ("float", 0.5, True),
        "flags": ("list", [1, 2], True),
        "shape": ("any", None, False),
    }
    plain = call(server, "GET", "workflows/parameters?path=plain.ipynb").json()
    assert plain == {"path": "plain.ipynb", "cell": False, "parameters": []}


def test_runs_are_listed_and_acted_on_through_the_service(
    server: LabServer, service: FakeService
) -> None:
    service.answers[("GET", "runs?state=queued")] = (200, {"runs": [run()]})
    listing = call(server, "GET", "workflows/runs?state=queued")
    assert listing.status_code == 200, listing.text
    assert listing.json() == {"runs": [run()], "refresh_seconds": 10}

    service.answers[("POST", "runs/r-0123456789ab/cancel")] = (200, run(state="cancelled"))
    cancelled = call(server, "POST", "workflows/runs/cancel", {"id": "r-0123456789ab"})
    assert cancelled.json()["state"] == "cancelled"

    service.answers[("POST", "runs/r-0123456789ab/rerun")] = (201, run("r-ba9876543210"))
    again = call(
        server, "POST", "workflows/runs/rerun", {"id": "r-0123456789ab", "parameters": {"n": 9}}
    )
    assert again.status_code == 201 and again.json()["id"] == "r-ba9876543210"
    assert service.seen[-1] == ("POST", "runs/r-0123456789ab/rerun", {"parameters": {"n": 9}})

    service.answers[("GET", "credentials")] = (200, {"credentials": [{"id": "c-1"}]})
    assert call(server, "GET", "workflows/credentials").json()["credentials"] == [{"id": "c-1"}]
    service.answers[("DELETE", "credentials/c-1")] = (204, None)
    assert call(server, "POST", "workflows/credentials/revoke", {"id": "c-1"}).status_code == 204
    assert service.seen[-1][:2] == ("DELETE", "credentials/c-1")

    # the service's refusals reach the panel with its status and words
    service.answers[("GET", "runs/r-00000000000b")] = (403, {"message": "not your run"})
    other = call(server, "GET", "workflows/run?id=r-00000000000b")
    assert (other.status_code, other.json()["message"]) == (403, "not your run")
    # ids go into the service's URL: anything else is refused before
    before = len(service.seen)
    bad = call(server, "POST", "workflows/runs/cancel", {"id": "../../admin"})
    assert bad.status_code == 400 and len(service.seen) == before


def test_an_executed_notebook_is_saved_in_the_users_files(
    server: LabServer, service: FakeService, home: Path
) -> None:
    executed = write_notebook(home / "scratch" / "executed.ipynb", "n = 5")
    service.answers[("GET", "runs/r-0123456789ab/notebook")] = (200, executed)
    service.answers[("GET", "runs/r-0123456789ab/notebook?member=2")] = (200, executed)
    single = call(server, "POST", "workflows/runs/open", {"id": "r-0123456789ab"})
    assert single.json() == {"path": "continuum-runs/r-0123456789ab/output.ipynb"}
    member = call(server, "POST", "workflows/runs/open", {"id": "r-0123456789ab", "member": 2})
    assert member.json() == {"path": "continuum-runs/r-0123456789ab/output-2.ipynb"}
    saved = nbformat.read(home / member.json()["path"], as_version=4)
    assert saved.cells[0].source == "n = 5"
    service.answers[("GET", "runs/r-0123456789ab/notebook?member=4")] = (
        404,
        {"message": "not executed yet"},
    )
    missing = call(server, "POST", "workflows/runs/open", {"id": "r-0123456789ab", "member": 4})
    assert (missing.status_code, missing.json()["message"]) == (404, "not executed yet")


def test_a_run_folder_is_downloaded_through_the_service(
    server: LabServer, service: FakeService
) -> None:
    archive = bytes(range(256)) * 4096  # 1 MiB of every byte value: passed on unchanged
    service.answers[("GET", "runs/r-0123456789ab/archive")] = (200, archive)
    got = call(server, "GET", "workflows/runs/archive?id=r-0123456789ab")
    assert got.status_code == 200 and got.content == archive
    assert got.headers["Content-Type"] == "application/gzip"
    assert got.headers["Content-Disposition"] == 'attachment; filename="scan-r-1.tar.gz"'
    service.answers[("GET", "runs/r-0123456789ab/archive")] = (403, {"message": "not your run"})
    refused = call(server, "GET", "workflows/runs/archive?id=r-0123456789ab")
    assert (refused.status_code, refused.json()["message"]) == (403, "not your run")
    bad = call(server, "GET", "workflows/runs/archive?id=../x")
    assert bad.status_code == 400


def test_the_workflow_dialogs_chain_is_saved_as_a_workflow_file(
    server: LabServer, home: Path
) -> None:
    """The *Workflow…* dialog's document, checked and written by the hub's own spec code: the
    file loads as the service loads it; refused documents and paths write nothing."""
    from continuum_hub.workflows.spec import load_workflow

    resources = {"site": "alpha", "partition": "batch", "cores": 1, "memory_gb": 2}
    document = {
        "name": "chain",
        "steps": [
            {"name": "first", "notebook": "work/analysis.ipynb", "sweep": {"n": [1, 2]},
             "max_parallel": 1, "resources": resources},
            {"name": "second", "notebook": "plain.ipynb", "depends_on": ["first"],
             "parameters": {"label": "x: 'y'\n$(z)"}, "resources": resources},
        ],
    }  # fmt: skip
    saved = call(
        server, "POST", "workflows/file", {"path": "work/chain.yaml", "workflow": document}
    )
    assert saved.status_code == 201, saved.text
    assert saved.json() == {"path": "work/chain.yaml"}
    workflow = load_workflow(home / "work" / "chain.yaml")
    assert [s.name for s in workflow.steps] == ["first", "second"]
    assert workflow.step("second").depends_on == ("first",)
    assert workflow.step("second").parameters == {"label": "x: 'y'\n$(z)"}
    again = call(
        server, "POST", "workflows/file", {"path": "work/chain.yaml", "workflow": document}
    )
    assert again.status_code == 409 and "exists" in again.json()["message"]
    looped = {**document, "steps": [{**document["steps"][0], "depends_on": ["first"]}]}
    for path, body, status, text in [
        ("work/loop.yaml", looped, 400, "first"),
        ("work/bad.yaml", {"name": "x", "steps": []}, 400, "steps"),
        ("../outside.yaml", document, 403, "not a path below"),
        ("work/chain.txt", document, 400, "not a workflow file"),
        ("missing/chain.yaml", document, 404, "does not exist"),
    ]:
        refused = call(server, "POST", "workflows/file", {"path": path, "workflow": body})
        assert refused.status_code == status and text in refused.json()["message"], refused.text
    assert not (home / "work" / "loop.yaml").exists() and not (home / "missing").exists()


def test_a_workflow_file_is_sent_with_the_notebooks_its_steps_name(
    server: LabServer, service: FakeService, home: Path
) -> None:
    workflow = {"id": "w-0123456789ab", "name": "scan", "state": "pending", "steps": {}}
    service.answers[("POST", "workflows")] = (201, workflow)
    answer = call(server, "POST", "workflows/workflows", {"path": "work/flow.yaml"})
    assert answer.status_code == 201, answer.text
    assert answer.json() == workflow
    method, path, body = service.seen[-1]
    assert (method, path) == ("POST", "workflows")
    assert body["yaml"] == FLOW
    on_disk = {
        name: json.loads(json.dumps(nbformat.read(home / name, as_version=4)))
        for name in ("work/analysis.ipynb", "plain.ipynb")
    }
    assert body["notebooks"] == on_disk  # each notebook once, keyed as the steps name it

    service.answers[("GET", "workflows")] = (200, {"workflows": [workflow]})
    assert call(server, "GET", "workflows/workflows").json() == {"workflows": [workflow]}

    # the service's refusal (line and column) reaches the browser as it said it
    said = "line 3, column 5: at steps/0: unknown field"
    service.answers[("POST", "workflows")] = (400, {"message": said})
    refused = call(server, "POST", "workflows/workflows", {"path": "work/flow.yaml"})
    assert (refused.status_code, refused.json()["message"]) == (400, said)


@pytest.mark.parametrize(
    "path,status,said",
    [
        ("work/linked-step.yml", 403, "symbolic link"),
        ("../outside.yaml", 403, "not a path below your home folder"),
        ("notes.txt", 400, "not a workflow file (.yaml, .yml)"),
        ("work/missing.yaml", 404, "no such workflow file"),
    ],
    ids=["step-through-symlink", "dotdot", "txt", "missing"],
)
def test_workflow_files_that_must_not_be_sent_are_refused(
    server: LabServer, service: FakeService, path: str, status: int, said: str
) -> None:
    before = len(service.seen)
    answer = call(server, "POST", "workflows/workflows", {"path": path})
    assert answer.status_code == status, answer.text
    assert said in answer.json()["message"]
    assert len(service.seen) == before  # nothing reached the service


def test_the_estimate_is_the_hubs_asked_with_the_servers_token(
    server: LabServer, service: FakeService
) -> None:
    # the fake answers for the hub too (JUPYTERHUB_API_URL points at it)
    query = "site=alpha&partition=batch&cores=2&walltime=0%3A10"
    model = {
        "site": "alpha",
        "partition": "batch",
        "start_time": "2026-12-04T23:40:00Z",
        "wait_seconds": 120,
        "message": "",
        "energy_kwh_max": 0.004,
        "gco2e_max": 1.2,
    }
    service.answers[("GET", f"/hub/api/continuum/estimate?{query}")] = (200, model)
    answer = call(
        server,
        "GET",
        "workflows/estimate?site=alpha&partition=batch&cores=2&walltime=0:10&gpus=&other=x",
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == model
    # only the spawn form's fields travel, empty ones left out
    assert service.seen[-1][:2] == ("GET", f"/hub/api/continuum/estimate?{query}")

    refused = "site=beta&partition=gpu"
    service.answers[("GET", f"/hub/api/continuum/estimate?{refused}")] = (
        403,
        {"status": 403, "message": "you may not use site beta"},
    )
    answer = call(server, "GET", f"workflows/estimate?{refused}")
    assert (answer.status_code, answer.json()["message"]) == (403, "you may not use site beta")
    service.answers[("GET", f"/hub/api/continuum/estimate?{refused}")] = (500, {})
    assert call(server, "GET", f"workflows/estimate?{refused}").status_code == 502


@pytest.mark.parametrize(
    "environ,url,api",
    [
        (
            {"JUPYTERHUB_API_URL": "http://hub:8081/hub/api"},
            "",
            "http://hub:8081/services/workflows/api/v1/",
        ),
        (
            {"JUPYTERHUB_API_URL": "http://h/base/hub/api/"},
            "",
            "http://h/base/services/workflows/api/v1/",
        ),
        (
            {"CONTINUUM_WORKFLOWS_URL": "http://w:9/services/workflows"},
            "",
            "http://w:9/services/workflows/api/v1/",
        ),
        ({}, "http://x/services/workflows/api/v1", "http://x/services/workflows/api/v1/"),
    ],
    ids=["hub-api", "hub-api-base-url", "environment", "option"],
)
def test_the_service_is_found(environ: dict[str, str], url: str, api: str) -> None:
    endpoint = service_endpoint({**environ, "JUPYTERHUB_API_TOKEN": "s3cr3t"}, url)
    assert endpoint.api == api
    assert endpoint.headers == {"Authorization": "token s3cr3t"}
    assert "s3cr3t" not in repr(endpoint)


async def test_an_unreachable_service_is_a_502_with_a_clear_message() -> None:
    manager = WorkflowsManager(
        environ={
            "CONTINUUM_WORKFLOWS_URL": f"http://127.0.0.1:{free_port()}/services/workflows/",
            "JUPYTERHUB_API_TOKEN": "t",
        }
    )
    with pytest.raises(WorkflowsError) as caught:
        await manager.options()
    assert caught.value.status == 502
    assert "cannot be reached" in caught.value.message
    with pytest.raises(WorkflowsError) as unset:
        await WorkflowsManager(environ={}).options()
    assert unset.value.status == 503
