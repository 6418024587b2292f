"""The Rucio catalogue source against a real Rucio 41 server (``fixtures.rucio``).

Each user acts as their own Rucio account; the radio scope is private to its VO; replicas come
in Rucio's order for the user's site, with one ``list_replicas`` call per 1,000 DIDs; rules go
requested → replicating (no transfer daemon runs: never shown as done) / OK → expired after
Rucio's own judge-cleaner.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import pytest
from rucio.client import Client

from continuum_hub.catalogue.model import QueryError, make_query
from continuum_hub.catalogue.sources.base import ActionRefused

pytestmark = [pytest.mark.integration, pytest.mark.catalogue]

ALICE = {"user": "alice", "groups": ["vo.hep.example", "vo.radio.example"]}
BOB = {"user": "bob", "groups": ["vo.hep.example"]}


class CountingClient(Client):
    """The real client, counting ``list_replicas`` calls (the boundary the bound is about)."""

    calls: ClassVar[list[int]] = []

    def list_replicas(self, dids: Any, *args: Any, **kwargs: Any) -> Any:
        CountingClient.calls.append(len(dids))
        return super().list_replicas(dids, *args, **kwargs)


async def test_search_and_get_as_each_user(rucio_source):
    source = await rucio_source()
    alice = await source.search(make_query("radio", with_facets=True, **ALICE))
    assert [e.id for e in alice.entries] == [
        "rucio:radio:radio-cyga-imaging-2024",
        "rucio:radio:radio-pulsar-survey-2025",
    ]
    assert alice.facets["vo"] == {"vo.radio.example": 2} and alice.total == 2
    cyga = alice.entries[0]
    assert cyga.visibility == "vo" and cyga.vo == "vo.radio.example"
    assert [(r.site, r.location, r.state) for r in cyga.replicas] == [
        ("beta", "BETA_DISK", "available"),
        ("beta", "BETA_TAPE", "available"),
    ]
    assert cyga.size == sum(len(f"radio-cyga-imaging-2024 part {i}\n") for i in range(3))
    assert (
        "list_replicas([{'scope': 'radio', 'name': 'radio-cyga-imaging-2024'}])"
        in (cyga.access["code"])
    )
    # Bob (HEP only) sees none of radio's private DIDs, by search or by id
    assert (await source.search(make_query("radio", **BOB))).entries == []
    assert await source.get("radio:radio-cyga-imaging-2024", make_query(**BOB)) is None
    higgs = await source.get("hep:higgs-candidates-2024", make_query(**BOB))
    assert higgs is not None and higgs.visibility == "public"
    assert higgs.metadata["datatype"] == "AOD" and higgs.metadata["files"] == 4
    # ALPHA_DISK: site from Rucio's attribute (the test registry lists no rse for alpha)
    assert [(r.site, r.location) for r in higgs.replicas] == [("alpha", "ALPHA_DISK")]
    assert higgs.sites == ["alpha"]
    # Rucio puts the replicas at the user's site first (alpha for Bob; beta when Alice asks)
    for who, sites, first in ((BOB, [], "ALPHA_DISK"), (ALICE, ["beta"], "BETA_DISK")):
        zmumu = await source.get("hep:zmumu-calibration-2023", make_query(sites=sites, **who))
        assert zmumu.replicas[0].location == first
        assert sorted(zmumu.sites) == ["alpha", "beta"]
    assert await source.get("hep:no-such-dataset", make_query(**BOB)) is None
    # words match literally; Rucio's '*' and SQL's '%' / '_' are not wildcards for users
    assert [
        e.identifier for e in (await source.search(make_query("HIGGS 2024", **BOB))).entries
    ] == ["hep:higgs-candidates-2024"]
    for text in ("*", "%", "higgs_candidates", "h*s"):
        assert (await source.search(make_query(text, **BOB))).entries == [], text
    health = await source.health()
    assert health.ok and health.message == "Rucio 41.5.1"


async def test_replica_order_equals_rucios_for_5000_dids(rucio_source, rucio_server, rucio_bulk):
    source = await rucio_source(client_class=CountingClient)
    direct = rucio_server.client("alice")
    for site in ("beta",):  # (each 5,000-file listing takes seconds of Rucio's time)
        CountingClient.calls.clear()
        entry = await source.get(f"hep:{rucio_bulk}", make_query(sites=[site], **ALICE))
        assert entry is not None and entry.metadata["files"] == 5000
        assert len(CountingClient.calls) <= 5
        expected: list[str] = []
        for record in direct.list_replicas(
            [{"scope": "hep", "name": rucio_bulk}], all_states=True, client_location={"site": site}
        ):
            for info in record["pfns"].values():
                if info["rse"] not in expected:
                    expected.append(info["rse"])
        assert [r.location for r in entry.replicas] == expected
        assert entry.replicas[0].site == site  # Rucio puts the user's site first
        assert {r.location: r.size for r in entry.replicas} == {
            "ALPHA_DISK": pytest.approx(entry.size * 0.6, rel=0.1),
            "BETA_DISK": pytest.approx(entry.size * 0.67, rel=0.1),
            "BETA_TAPE": pytest.approx(entry.size * 0.67, rel=0.1),
        }
        assert all(r.state == "unavailable" for r in entry.replicas)  # each RSE holds part
    # a search over the files, filtered to a site: replicas of every match, batched
    CountingClient.calls.clear()
    page = await source.search(make_query("bulk-5k.0", kinds=["file"], sites=["beta"], **ALICE))
    assert page.total is None or page.total > 1000
    assert CountingClient.calls and max(CountingClient.calls) <= 1000
    assert len(CountingClient.calls) <= 2  # the search reads at most 2,000 DIDs per scope
    assert all("beta" in e.sites for e in page.entries) and len(page.entries) == 20


async def _state_becomes(source, request_id, query, wanted, within=20.0):
    deadline = time.monotonic() + within
    while True:
        answer = await source.request_state(request_id, query)
        if answer["state"] == wanted or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.2)


async def test_rule_lifecycle_is_rucios(rucio_source, rucio_server):
    source = await rucio_source()
    alice = make_query(**ALICE)
    # no replica at beta and no transfer daemon: replicating, and it stays so
    asked = await source.make_available("hep:higgs-candidates-2024", "beta", alice)
    assert asked["state"] == "replicating" and asked["site"] == "beta"
    rule_id = asked["id"].split(":", 1)[0]
    rule = rucio_server.client("alice").get_replication_rule(rule_id)
    assert rule["account"] == "alice" and rule["rse_expression"] == "BETA_DISK|BETA_TAPE"
    assert (await source.request_state(asked["id"], alice))["state"] == "replicating"
    entry = await source.get("hep:higgs-candidates-2024", make_query(sites=["beta"], **ALICE))
    assert ("beta", "replicating") in [(r.site, r.state) for r in entry.replicas]
    assert entry.sites == ["alpha"]  # never "available" at beta before Rucio says so
    # asking again gives the same rule
    again = await source.make_available("hep:higgs-candidates-2024", "beta", alice)
    assert again["id"] == asked["id"]
    # Bob cannot follow Alice's rule, nor ask for copies at a site he may not use
    with pytest.raises(ActionRefused):
        await source.request_state(asked["id"], make_query(**BOB))
    with pytest.raises(ActionRefused):
        await source.make_available("hep:higgs-candidates-2024", "beta", make_query(**BOB))
    # the data are already at alpha: the rule is OK at once
    there = await source.make_available("hep:zmumu-calibration-2023", "alpha", alice)
    assert there["state"] == "available"
    # a short-lived rule: expired when its lifetime ends, still expired once the judge-cleaner
    # (Rucio's own daemon, run once) has removed it
    short = await rucio_source(rule_lifetime=1)
    brief = await short.make_available("radio:radio-pulsar-survey-2025", "alpha", alice)
    assert brief["state"] in ("available", "expired")  # OK, unless its second already passed
    assert (await _state_becomes(short, brief["id"], alice, "expired"))["state"] == "expired"
    rucio_server.run_judge_cleaner()
    gone = await short.request_state(brief["id"], alice)
    assert gone["state"] == "expired" and "removed" in gone["message"]


@pytest.mark.parametrize(
    "identifier",
    [
        "../etc:passwd",
        "hep:../../etc/passwd",
        "hep:a/b",
        "hep:higgs*",
        "hep:higgs%",
        "hep:",
        "hep",
        "hep:" + "a" * 10_000,
        "h" * 30 + ":name",
    ],
    ids=[
        "scope-traversal",
        "name-traversal",
        "slash",
        "star",
        "percent",
        "empty",
        "no-name",
        "10kB",
        "long-scope",
    ],
)
async def test_bad_identifiers_are_refused_clearly(rucio_source, identifier):
    source = await rucio_source()
    with pytest.raises(QueryError, match="not a Rucio data identifier"):
        await source.get(identifier, make_query(**ALICE))
    with pytest.raises(QueryError):
        await source.make_available(identifier, "alpha", make_query(**ALICE))


async def test_unreachable_rucio_is_reported(rucio_source, rucio_server):
    from continuum_federation.process import free_port

    source = await rucio_source(url=f"http://127.0.0.1:{free_port()}", request_timeout=2)
    health = await source.health()
    assert not health.ok and "no answer" in health.message
    # a user without a Rucio account is refused, not served as somebody else
    with pytest.raises(ActionRefused, match="no account"):
        await (await rucio_source(accounts={"carol": "Carol!"})).search(make_query(user="carol"))


async def test_the_demo_settings_load_through_the_services_loader(rucio_server, rucio_registry):
    from continuum_hub.catalogue.app import CatalogueApp, make_source

    # the entry point `rucio`, the registry from the service's own settings (its parent)
    source = make_source(
        rucio_server.source_settings(), CatalogueApp(registry_path=str(rucio_registry))
    )
    await source.start()
    page = await source.search(make_query("radio", sites=["beta"], **ALICE))
    assert [(e.identifier, e.replicas[0].location) for e in page.entries] == [
        ("radio:radio-cyga-imaging-2024", "BETA_DISK"),
        ("radio:radio-pulsar-survey-2025", "BETA_TAPE"),  # beta's tape before alpha's disk
    ]
    await source.stop()
