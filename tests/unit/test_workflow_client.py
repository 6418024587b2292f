"""The Python client and ``continuum-hub run`` against the service's real application.

The client runs in a thread (it is synchronous) while the test's event loop serves the
application (``workflow_service``: fakes only at the hub's and the site's edges).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from continuum_hub.cli import main as cli_main
from continuum_hub.workflows.client import (
    WorkflowsClient,
    WorkflowsError,
    read_notebook,
    service_url,
)
from continuum_hub.workflows.command import main, sweep_grid, value
from continuum_hub.workflows.paths import PathError
from fixtures.workflow_runs import notebook_bytes
from fixtures.workflows import Service

pytestmark = pytest.mark.workflows


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    (home / "work" / "analysis.ipynb").write_bytes(notebook_bytes())
    return home


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", 5), ("2.5", 2.5), ("true", True), ("[1, 2]", [1, 2]), ("run A", "run A"), ('"7"', "7")],
)
def test_values_are_json_else_text(text: str, expected: object) -> None:
    assert value(text) == expected


def test_sweep_grid() -> None:
    assert sweep_grid(["energy=1,2.5", "label=a"]) == {"energy": [1, 2.5], "label": ["a"]}
    assert sweep_grid([]) is None
    with pytest.raises(WorkflowsError, match="NAME=VALUE1,VALUE2"):
        sweep_grid(["energy"])


def test_notebooks_are_read_below_home_only(home: Path, tmp_path: Path) -> None:
    found = read_notebook(str(home / "work" / "analysis.ipynb"), str(home))
    assert found["path"] == "work/analysis.ipynb" and found["content"]["nbformat"] == 4
    outside = tmp_path / "elsewhere.ipynb"
    outside.write_bytes(notebook_bytes())
    with pytest.raises(WorkflowsError, match="not below your home"):
        read_notebook(str(outside), str(home))
    (home / "link.ipynb").symlink_to(outside)
    with pytest.raises(PathError, match="symbolic link"):
        read_notebook(str(home / "link.ipynb"), str(home))


def test_service_url_from_the_environment() -> None:
    env = {"CONTINUUM_WORKFLOWS_URL": "http://w:9/services/workflows/"}
    assert service_url(env) == "http://w:9/services/workflows"
    env = {"JUPYTERHUB_API_URL": "http://hub:8081/hub/api"}
    assert service_url(env) == "http://hub:8081/services/workflows"
    with pytest.raises(WorkflowsError, match="no workflow service"):
        service_url({})


async def test_client_submits_lists_cancels_and_reruns(
    workflow_service: Service, home: Path
) -> None:
    client = WorkflowsClient(f"{workflow_service.url}/services/workflows", "alice-token")
    notebook = read_notebook(str(home / "work" / "analysis.ipynb"), str(home))
    resources = {"site": "alpha", "partition": "batch", "cores": 1, "memory_gb": 1}
    run = await asyncio.to_thread(client.submit, notebook, {"label": "A"}, resources=resources)
    assert run["state"] == "queued"
    assert [r["id"] for r in await asyncio.to_thread(client.runs)] == [run["id"]]
    assert (await asyncio.to_thread(client.cancel, run["id"]))["state"] == "cancelled"
    again = await asyncio.to_thread(client.rerun, run["id"], {"label": "B"})
    assert again["based_on"] == run["id"] and again["parameters"] == {"label": "B"}
    with pytest.raises(WorkflowsError, match="expected bool") as refused:
        await asyncio.to_thread(client.submit, notebook, {"fail": "x"}, resources=resources)
    assert refused.value.status == 400


async def test_command_line_run(
    workflow_service: Service,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "alice-token")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    url = f"{workflow_service.url}/services/workflows/"
    argv = [
        "run",
        "work/analysis.ipynb",
        "-p",
        "sleep",
        "1",
        "--site",
        "alpha",
        "--partition",
        "batch",
        "--cores",
        "1",
        "--sweep",
        "label=a,b",
        "--url",
        url,
    ]
    with pytest.raises(SystemExit) as done:
        await asyncio.to_thread(cli_main, argv)
    assert done.value.code == 0
    (plan,) = workflow_service.executor.plans
    assert plan.parameters == [{"sleep": 1.0, "label": "a"}, {"sleep": 1.0, "label": "b"}]
    assert capsys.readouterr().out.startswith(f"{plan.run_id}: queued on alpha")
    bad = ["work/analysis.ipynb", "-p", "x;y", "1", "--site", "alpha", "--url", url]
    assert await asyncio.to_thread(main, bad) == 2
    assert "is not a Python identifier" in capsys.readouterr().err
    assert len(workflow_service.executor.plans) == 1
