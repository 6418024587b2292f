"""A workshop participant outside the site's groups gets the event's site in the Dask Gateway
and the workflow service while the event runs, and nothing once it ended (issue 13: the
services' part, ``continuum_hub.workshops.usable``).

Carol's provider vouches for her but she is in no VO (alpha's groups are the two demo VOs).
Alice opens an event on alpha/interactive to anyone federated (one profile: 1 core, 1 GB, 30
minutes); Carol joins through its link, which puts her in the hub group ``workshop-<id>``.
With a hub token of hers, the services (separate processes that read the events' database
read-only) offer her alpha with that partition only, bounded by the profile; a bigger worker
is refused.  Once her server's start let her account into the event's reservation, a Dask
cluster of hers runs there as her Slurm job inside the reservation (the gateway sets it, no
option of hers), and a batch run too (one beyond the profile is refused).  She leaves the
event: out of its hub group at once, the gateway no longer offers alpha.  Alice ends the
event: the workflow service refuses her, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from continuum_federation.hub import LocalHub
from continuum_federation.slurm import LocalSlurmCluster
from continuum_hub.gateway import ACCESS_SCOPE as GATEWAY_SCOPE
from continuum_hub.workflows import ACCESS_SCOPE as WORKFLOWS_SCOPE
from continuum_hub.workflows import API_PREFIX
from fixtures.gateway import INTEGRATION_MARKS, HubGateway, gateway_jobs, user_token
from fixtures.hub import api, begin_login, finish_login, hub_login, stop_server
from fixtures.slurm import squeue, wait_until
from fixtures.workflow_runs import notebook_bytes
from fixtures.workshops import (
    event_json,
    events_call,
    instructor,
    remove_event,
    start_profile,
)

pytestmark = [*INTEGRATION_MARKS, pytest.mark.workshops, pytest.mark.workflows]

PROFILE = {"name": "lab", "cores": 1, "memory_gb": 1, "walltime": "0:30"}
RESOURCES = {"site": "alpha", "partition": "interactive", "memory_gb": 1, "walltime": "0:10"}


@pytest.fixture
def event(hub: LocalHub, idp, slurm_sites) -> Iterator[tuple[requests.Session, dict]]:
    """Alice's running event open to anyone federated (two seats), removed afterwards."""
    alice = hub_login(hub, idp, "alice")
    instructor(hub, "alice")
    body = event_json(seats=2, profiles=[PROFILE], access={"federated": True})
    created = events_call(hub, alice, "POST", "", json=body)
    assert created.status_code == 201, created.text
    ev = created.json()
    try:
        yield alice, ev
    finally:
        if api(hub, "GET", "/users/carol").status_code == 200:
            stop_server(hub, "carol")
        remove_event(hub, alice, ev, slurm_sites["alpha"])
        instructor(hub, "alice", member=False)


def submit_run(hub: LocalHub, token: str, cores: int) -> requests.Response:
    body = {
        "notebook": {"path": "work/event.ipynb", "content": json.loads(notebook_bytes())},
        "parameters": {"label": "event"},
        "resources": {**RESOURCES, "cores": cores},
    }
    headers = {"Authorization": f"token {token}"}
    return requests.post(f"{hub.url}{API_PREFIX}/runs", json=body, headers=headers, timeout=60)


def job_fields(site: LocalSlurmCluster, job_id: str) -> dict[str, str]:
    """The job's user, partition and reservation as ``squeue`` shows them."""
    [row] = squeue(site, f"--jobs={job_id}", "--format=%u|%P|%v")
    return dict(zip(("user", "partition", "reservation"), row, strict=True))


def test_event_site_in_gateway_and_workflows_until_the_end(
    hub: LocalHub,
    idp,
    gateway: HubGateway,
    event: tuple[requests.Session, dict[str, Any]],
    slurm_sites: dict[str, LocalSlurmCluster],
) -> None:
    alpha = slurm_sites["alpha"]
    alice, ev = event
    join = f"/hub/continuum/join/{ev['join_code']}"
    carol, callback = begin_login(hub, idp, "carol", params={"next": join})
    landed = finish_login(carol, callback, follow_redirects=True)
    assert landed.url.endswith(f"{join}/start"), landed.url
    token = user_token(hub, idp, "carol", scopes=(GATEWAY_SCOPE, WORKFLOWS_SCOPE))

    # the gateway: alpha, its event partition only, workers no bigger than the profile
    with gateway.client(token) as client:
        fields = client.cluster_options()._fields
        assert list(fields["site"].options) == ["alpha"]
        assert list(fields["partition"].options) == ["default", "interactive"]
        with pytest.raises(ValueError, match="worker_cores must be <= 1"):
            client.new_cluster(site="alpha", worker_cores=2, worker_memory_gb=1)

    # her server (the event's profile) lets her account into the reservation
    start = start_profile(hub, carol, ev["join_code"])
    assert start.status_code == 302, start.text

    def admitted() -> bool:
        shown = events_call(hub, alice, "GET", f"/{ev['id']}").json()["reservation"]
        return "carol" in shown["users"]

    wait_until(admitted, timeout=60, interval=0.5, what="carol's account in the reservation")
    in_reservation = {
        "user": "carol",
        "partition": "interactive",
        "reservation": ev["reservation"]["name"],
    }
    with gateway.client(token) as client:
        # submitted and watched through the gateway (no scheduler connection is needed here)
        name = client.submit(site="alpha", worker_cores=1, worker_memory_gb=1, walltime_minutes=20)
        try:
            wait_until(
                lambda: client.get_cluster(name).status.name == "RUNNING",
                timeout=120,
                interval=0.5,
                what="carol's cluster running",
            )
            [job] = [j for j in gateway_jobs(alpha, "carol") if j[1] == f"dg-{name}"]
            assert job_fields(alpha, job[0]) == in_reservation
        finally:
            client.stop_cluster(name)

    # her run goes in too
    too_big = submit_run(hub, token, cores=2)
    assert too_big.status_code == 400 and "cores" in too_big.text, too_big.text
    run = submit_run(hub, token, cores=1)
    assert run.status_code == 201, run.text
    assert job_fields(alpha, run.json()["job_id"]) == in_reservation
    cancel = f"{hub.url}{API_PREFIX}/runs/{run.json()['id']}/cancel"
    headers = {"Authorization": f"token {token}"}
    assert requests.post(cancel, headers=headers, timeout=60).status_code == 200

    # she leaves: out of the event's group at once, so the gateway offers her nothing more
    left = events_call(hub, carol, "DELETE", f"/{ev['id']}/participants/carol")
    assert left.status_code == 204, left.text
    group = f"workshop-{ev['id']}"
    assert group not in api(hub, "GET", "/users/carol").json()["groups"]
    with gateway.client(token) as client:
        with pytest.raises(ValueError, match="none of your groups gives access to a site"):
            client.new_cluster()
    again = events_call(hub, carol, "DELETE", f"/{ev['id']}/participants/carol")
    assert again.status_code == 403, again.text  # removing anyone else is the instructor's

    # the end: nothing extra any more, with the reason (her groups may be cached a minute)
    ended = events_call(hub, alice, "POST", f"/{ev['id']}/instructor/end")
    assert ended.status_code == 200, ended.text
    refused = submit_run(hub, token, cores=1)
    assert refused.status_code == 403, refused.text
    assert "not allowed to use site 'alpha'" in refused.text
