"""Data locality with the real hub and Slurm sites: the estimate API and the spawn URL of the
catalogue's *Start near the data* (a second, named server near the data)."""

from __future__ import annotations

import time

import pytest

from fixtures.hub import api, estimate, forget_named_servers, hub_login

pytestmark = [pytest.mark.integration, pytest.mark.catalogue]

NEAR = "near-data"


def named_server(hub, username: str, name: str) -> dict:
    return api(hub, "GET", f"/users/{username}").json()["servers"].get(name, {})


def test_estimate_near_the_data(hub, idp):
    alice = hub_login(hub, idp, "alice")
    near = estimate(
        hub, alice, site="soonest", cores=1, walltime="0:30", data_sites="beta",
        datasets="demo:radio/obs-001.fits",
    )  # fmt: skip
    assert near.status_code == 200, near.text
    model = near.json()
    assert (model["site"], model["partition"]) == ("beta", "gpu")
    assert model["data_present"] is True
    assert model["reason"].startswith("beta: data present, starts "), model
    assert {c["site"] for c in model["candidates"]} == {"beta"}
    # with a transfer allowed every site is a candidate, and each says why
    anywhere = estimate(
        hub, alice, site="soonest", cores=1, walltime="0:30", data_sites="beta", transfer="on"
    ).json()
    assert {c["site"] for c in anywhere["candidates"]} == {"alpha", "beta"}
    alpha = next(c for c in anywhere["candidates"] if c["site"] == "alpha")
    assert alpha["reason"].startswith("alpha: no replica (transfer requested), starts ")
    # bob may not use beta: a clear refusal; bad data sites are refused before any estimate
    bob = hub_login(hub, idp, "bob")
    refused = estimate(hub, bob, site="soonest", data_sites="beta")
    assert refused.status_code == 400 and "it is at: beta" in refused.json()["message"]
    for bad in ("gamma", "beta;id", "../beta"):
        answer = estimate(hub, alice, site="soonest", data_sites=bad)
        assert answer.status_code == 400 and "data_sites" in answer.json()["message"], bad


def test_start_near_the_data_opens_a_second_server(hub, idp):
    alice = hub_login(hub, idp, "alice")
    query = {"site": "soonest", "data_sites": "beta", "datasets": "demo:radio/obs-001.fits"}
    # a query no site can serve shows the form again: the reason, and the data carried along
    refused = alice.get(
        f"{hub.url}/hub/spawn/alice/elsewhere", params={**query, "data_sites": "alpha", "gpus": 1}
    )
    assert refused.status_code == 400
    assert "it is at: alpha" in refused.text
    assert '<input type="hidden" name="data_sites" value="alpha">' in refused.text
    assert "demo:radio/obs-001.fits" in refused.text
    # the catalogue's link starts a named server on beta at once
    started = alice.get(f"{hub.url}/hub/spawn/alice/{NEAR}", params={**query, "walltime": "0:30"})
    assert started.status_code == 200, started.text
    try:
        deadline = time.monotonic() + 40
        while not (model := named_server(hub, "alice", NEAR)).get("ready"):
            assert model and time.monotonic() < deadline, f"not ready: {model}\n{hub.log()}"
            time.sleep(0.5)
        request = model["state"]["request"]
        assert (request["site"], request["partition"]) == ("beta", "gpu")
        assert request["data_sites"] == ["beta"]
        assert request["datasets"] == ["demo:radio/obs-001.fits"]
        assert "beta: data present" in hub.log()
    finally:
        # the refused "elsewhere" and the started one: the hub allows three named servers
        forget_named_servers(hub, "alice")
