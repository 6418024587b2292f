"""The workflow service's REST API: authentication, owners, refusals of bad input.

The real application (handlers, manager, store) is served on 127.0.0.1 with fakes at its
edges (``fixtures.workflows``: HubAuth, the hub's API, the site executor).  Each refusal of the
issue's "What bad input gets" list answers 4xx with its reason, and nothing is submitted.
"""

from __future__ import annotations

import pytest

from continuum_hub.workflows.api import ROUTES
from continuum_hub.workflows.openapi import document
from fixtures.workflows import Service, notebook_json, run_body

pytestmark = pytest.mark.workflows


@pytest.fixture
def service(workflow_service: Service) -> Service:
    return workflow_service


ROUTE_CALLS = [
    ("GET", ""),
    ("GET", "openapi.json"),
    ("GET", "options"),
    ("GET", "runs"),
    ("POST", "runs"),
    ("GET", "runs/r-0123456789ab"),
    ("POST", "runs/r-0123456789ab/cancel"),
    ("POST", "runs/r-0123456789ab/rerun"),
    ("GET", "runs/r-0123456789ab/notebook"),
    ("GET", "runs/r-0123456789ab/crate"),
    ("GET", "workflows"),
    ("POST", "workflows"),
    ("GET", "workflows/w-0123456789ab"),
    ("POST", "workflows/w-0123456789ab/cancel"),
    ("GET", "workflows/w-0123456789ab/cwl"),
    ("GET", "credentials"),
    ("DELETE", "credentials/c-0123456789ab"),
    ("GET", "no/such/route"),
]


@pytest.mark.parametrize(("method", "path"), ROUTE_CALLS, ids=[f"{m} {p}" for m, p in ROUTE_CALLS])
@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), ("made-up", 401), ("noscope-token", 403), ("service-token", 403)],
    ids=["no-token", "unknown-token", "no-access-scope", "not-a-user"],
)
async def test_every_route_needs_a_user_token_with_the_scope(
    service: Service, method: str, path: str, token: str | None, status: int
) -> None:
    code, body = await service.call(method, path, {} if method == "POST" else None, token)
    assert code == status
    assert isinstance(body, dict) and body["message"]
    assert not service.executor.plans


async def test_openapi_document_lists_every_route(service: Service) -> None:
    code, body = await service.call("GET", "openapi.json")
    assert code == 200 and body == document()
    assert body["openapi"].startswith("3.1")
    assert len(body["paths"]) == len(ROUTES)
    assert (
        "post" in body["paths"]["/runs"]
        and "delete" in body["paths"]["/credentials/{credential_id}"]
    )


async def test_version_and_options(service: Service) -> None:
    assert await service.call("GET", "") == (200, {"version": 1})
    code, options = await service.call("GET", "options", token="bob-token")
    assert code == 200
    assert [s["name"] for s in options["sites"]] == ["alpha"]  # bob's groups: alpha only
    batch = next(p for p in options["sites"][0]["partitions"] if p["name"] == "batch")
    assert batch["max_cores"] == 4 and batch["max_walltime"] == "48:00"
    assert options["limits"]["max_sweep_members"] == 1000


async def test_alice_submits_a_run(service: Service) -> None:
    code, run = await service.call(
        "POST", "runs", run_body(parameters={"label": "x", "sleep": "2"})
    )
    assert code == 201, run
    assert run["id"].startswith("r-") and run["owner"] == "alice" and run["state"] == "queued"
    assert run["parameters"] == {"label": "x", "sleep": 2.0}  # coerced to the cell's float
    assert run["resources"]["site"] == "alpha" and run["resources"]["walltime"] == "4:00"
    assert run["job_id"] == "100" and len(run["attempts"]) == 1
    assert run["notebook"]["path"] == "work/analysis.ipynb" and len(run["notebook"]["sha256"]) == 64
    assert "account" not in run and "snapshot" not in run
    (plan,) = service.executor.plans
    assert plan.hub_token == "run-token-1" and plan.parameters == [{"label": "x", "sleep": 2.0}]
    assert service.hub.minted == [("alice", 7 * 86400)]
    code, listed = await service.call("GET", "runs")
    assert [r["id"] for r in listed["runs"]] == [run["id"]]
    code, credentials = await service.call("GET", "credentials")
    (credential,) = credentials["credentials"]
    assert credential["run_id"] == run["id"] and not credential["revoked"]
    assert "token" not in credential and "run-token-1" not in str(credentials)


BAD_RUNS = [
    ("shell-name", {"parameters": {"x; rm -rf ~": 1}}, 400, "is not a Python identifier"),
    ("subshell-name", {"parameters": {"$(id)": 1}}, 400, "is not a Python identifier"),
    ("newline-name", {"parameters": {"a\nb": 1}}, 400, "is not a Python identifier"),
    ("huge-value", {"parameters": {"label": "x" * 5000}}, 400, "more than the limit of 4096"),
    ("wrong-type", {"parameters": {"fail": "maybe"}}, 400, "expected bool"),
    ("unknown-parameter", {"parameters": {"lable": "x"}}, 400, "not in the notebook's parameters"),
    ("not-json-number", {"parameters": {"sleep": float("inf")}}, 400, "is not a JSON number"),
    ("absolute-notebook", {"notebook": {"path": "/etc/a.ipynb"}}, 400, "is absolute"),
    ("dotdot-notebook", {"notebook": {"path": "../bob/a.ipynb"}}, 400, "contains '..'"),
    ("not-a-notebook", {"notebook": {"path": "a.ipynb", "content": {"x": 1}}}, 400, "format 4"),
    ("dotdot-output", {"outputs": ["../../.ssh/"]}, 400, "contains '..'"),
    ("absolute-input", {"inputs": ["/etc/shadow"]}, 400, "is absolute"),
    (
        "million-sweep",
        {"sweep": {"grid": {"label": [str(i) for i in range(1000)], "sleep": list(range(1000))}}},
        400,
        "the sweep has 1000000 members, more than the limit of 1000",
    ),
    ("unknown-field", {"command": "rm -rf"}, 400, "unknown field(s): command"),
    ("retries", {"retries": 50}, 400, "retries must be between 0 and 5"),
    ("bad-partition", {"resources": {"site": "alpha", "partition": "nope"}}, 400, "partition"),
    ("too-many-cores", {"resources": {"site": "alpha", "cores": 64}}, 400, "cores must be"),
    ("no-site", {"resources": {}}, 400, "choose a site"),
]


@pytest.mark.parametrize(
    ("changes", "status", "reason"), [b[1:] for b in BAD_RUNS], ids=[b[0] for b in BAD_RUNS]
)
async def test_bad_input_is_refused_and_nothing_submitted(
    service: Service, changes: dict, status: int, reason: str
) -> None:
    body = run_body()
    if "notebook" in changes:
        changes = {"notebook": {"content": notebook_json(), **changes["notebook"]}}
    body.update(changes)
    code, answer = await service.call("POST", "runs", body)
    assert code == status, answer
    assert reason in answer["message"]
    assert not service.executor.plans and not service.executor.prepared
    assert not service.hub.minted
    assert (await service.call("GET", "runs"))[1] == {"runs": []}


async def test_forbidden_site_answers_403(service: Service) -> None:
    body = run_body(resources={"site": "beta"})
    code, answer = await service.call("POST", "runs", body, token="bob-token")
    assert code == 403 and "beta" in answer["message"]
    assert not service.executor.plans


async def test_bob_can_neither_read_nor_cancel_alices_run(service: Service) -> None:
    _, run = await service.call("POST", "runs", run_body())
    for method, path in [
        ("GET", f"runs/{run['id']}"),
        ("POST", f"runs/{run['id']}/cancel"),
        ("POST", f"runs/{run['id']}/rerun"),
        ("GET", f"runs/{run['id']}/notebook"),
        ("GET", f"runs/{run['id']}/crate"),
    ]:
        code, answer = await service.call(
            method, path, {} if method == "POST" else None, "bob-token"
        )
        assert (code, answer) == (403, {"message": "not your run"}), path
    assert (await service.call("GET", "runs", token="bob-token"))[1] == {"runs": []}
    assert (await service.call("GET", "runs?all=1", token="bob-token"))[0] == 403
    assert not service.executor.cancelled
    # an admin sees everybody's runs
    code, every = await service.call("GET", "runs?all=1", token="dave-token")
    assert code == 200 and [r["id"] for r in every["runs"]] == [run["id"]]
    code, answer = await service.call("GET", "runs/r-000000000000")
    assert code == 404


WORKFLOW = """name: scan
schedule: "{schedule}"
steps:
  - name: simulate
    notebook: work/analysis.ipynb
    parameters: {{label: a}}
    resources: {{site: alpha, partition: batch, cores: 1, memory_gb: 1}}
"""


def unscheduled() -> str:
    return WORKFLOW.format(schedule="").replace('schedule: ""\n', "")


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ("* * * * *", "runs every minute"),
        ("* * * * * *", "seconds are not supported"),
        ("*/5 * * * *", "5 minutes apart"),
    ],
    ids=["every-minute", "every-second", "every-5-minutes"],
)
async def test_too_frequent_schedules_are_refused(
    service: Service, schedule: str, reason: str
) -> None:
    body = {
        "yaml": WORKFLOW.format(schedule=schedule),
        "notebooks": {"work/analysis.ipynb": notebook_json()},
    }
    code, answer = await service.call("POST", "workflows", body)
    assert code == 400 and reason in answer["message"]
    assert answer["message"].startswith("line 2, column 11: at schedule")
    assert not service.executor.plans and (await service.call("GET", "workflows"))[1] == {
        "workflows": []
    }


async def test_workflow_errors_name_line_and_column(service: Service) -> None:
    text = unscheduled().replace("label: a", "'a b': 1")
    body = {"yaml": text, "notebooks": {"work/analysis.ipynb": notebook_json()}}
    code, answer = await service.call("POST", "workflows", body)
    assert code == 400
    assert answer["message"].startswith("line 5, column 18: at steps/0/parameters")
    code, answer = await service.call("POST", "workflows", {"yaml": "name: [", "notebooks": {}})
    assert code == 400 and "not valid YAML" in answer["message"]
    missing = {"yaml": unscheduled(), "notebooks": {}}
    code, answer = await service.call("POST", "workflows", missing)
    assert code == 400 and "was not sent" in answer["message"]
    assert not service.executor.plans
