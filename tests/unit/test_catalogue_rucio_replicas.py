"""The Rucio source's own logic on Rucio-shaped answers: DID checks, replicas per RSE in Rucio's
order, rule states (the integration tests run it against a real Rucio server)."""

import ast
from datetime import UTC, datetime, timedelta

import pytest

from continuum_hub.catalogue.model import Entry, QueryError, make_query
from continuum_hub.catalogue.sources.rucio import RucioSource
from continuum_hub.catalogue.sources.rucio_replicas import (
    access_code,
    parse_did,
    passes_filters,
    replicas_in_order,
    request_state,
)

pytestmark = pytest.mark.catalogue


def record(name, *rses, states=None, size=10):
    """A ``list_replicas`` record whose PFNs come in the order ``rses`` are given."""
    return {
        "scope": "hep",
        "name": name,
        "bytes": size,
        "pfns": {f"file:///{rse}/{name}": {"rse": rse} for rse in rses},
        "states": {rse: (states or {}).get(rse, "AVAILABLE") for rse in rses},
    }


def test_parse_did_accepts_rucio_names_only():
    assert parse_did("hep:higgs-2024.v1_a") == ("hep", "higgs-2024.v1_a")
    assert parse_did("user.alice:x") == ("user.alice", "x")
    for bad in (
        "hep",
        "hep:",
        ":x",
        "hep:../x",
        "hep:a/b",
        "hep:a*",
        "hep:a%",
        "hep:a b",
        "hep:" + "a" * 251,
        "a" * 26 + ":x",
        "hep:.hidden",
    ):
        with pytest.raises(QueryError, match="not a Rucio data identifier"):
            parse_did(bad)


def test_replicas_follow_rucios_order_and_tally_files():
    sites = {"BETA_DISK": "beta", "ALPHA_DISK": "alpha"}.get
    records = [
        record("f1", "BETA_DISK", "ALPHA_DISK"),
        record("f2", "BETA_TAPE", "ALPHA_DISK", states={"BETA_TAPE": "COPYING"}),
        record("f3", "ALPHA_DISK"),
    ]
    replicas, files, size = replicas_in_order(records, sites, single_file=False)
    assert (files, size) == (3, 30)
    assert [(r.location, r.site, r.state, r.size) for r in replicas] == [
        ("BETA_DISK", "beta", "unavailable", 10),  # one file of three: partial
        ("ALPHA_DISK", "alpha", "available", 30),
        ("BETA_TAPE", "", "replicating", 10),  # no site known for it
    ]
    assert all(r.path == "" for r in replicas)
    (one,), files, _ = replicas_in_order([record("f1", "BETA_DISK")], sites, single_file=True)
    assert one.path == "file:///BETA_DISK/f1" and files == 1
    assert replicas_in_order([], sites, single_file=False) == ([], 0, 0)


@pytest.mark.parametrize(
    "rule,history,state",
    [
        ({"state": "OK", "locks_ok_cnt": 3}, [], "available"),
        ({"state": "REPLICATING", "locks_replicating_cnt": 3}, [], "replicating"),
        ({"state": "INJECT"}, [], "requested"),
        ({"state": "WAITING_APPROVAL"}, [], "requested"),
        ({"state": "STUCK", "error": "no source"}, [], "failed"),
        ({"state": "OK", "expires_at": datetime.now(UTC) - timedelta(seconds=1)}, [], "expired"),
        ({"state": "OK", "expires_at": "2000-01-01T00:00:00"}, [], "expired"),
        ({"state": "OK", "expires_at": datetime.now(UTC) + timedelta(hours=1)}, [], "available"),
        (None, [{"rule_id": "x"}], "expired"),
        (None, [], "failed"),
    ],
    ids=[
        "ok",
        "replicating",
        "inject",
        "approval",
        "stuck",
        "past-expiry",
        "past-expiry-text",
        "future-expiry",
        "removed",
        "unknown",
    ],
)
def test_rule_states_are_rucios(rule, history, state):
    assert request_state(rule, history)[0] == state


def test_accounts_and_scope_rules_are_checked():
    source = RucioSource(name="rucio", url="http://127.0.0.1:1", accounts={"carol": "c@rol"})
    assert source.account_for("alice") == "alice"
    for user in ("carol", ""):
        with pytest.raises(Exception, match="no account"):
            source.account_for(user)
    with pytest.raises(Exception, match="scopes"):
        RucioSource(name="rucio", scopes={"hep": {"visibility": "secret", "vo": "v"}})
    with pytest.raises(Exception, match="scopes"):
        RucioSource(name="rucio", scopes={"a b": {"vo": "v"}})


def test_site_and_size_filters_and_the_inserted_code():
    entry = Entry("r:hep:x", "r", "hep:x", "dataset", "x", sites=["alpha"], size=100)
    assert passes_filters(entry, make_query())
    assert passes_filters(entry, make_query(sites=["beta", "alpha"], size_min=100, size_max=100))
    assert not passes_filters(entry, make_query(sites=["beta"]))
    assert not passes_filters(entry, make_query(size_min=101))
    assert not passes_filters(entry, make_query(size_max=99))
    # names are quoted as Python literals, never pasted as code (parse_did refuses such names
    # anyway; this is the second line of defence)
    name = "x'); import os; ('"
    tree = ast.parse(access_code("hep", name))
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    assert [node.module for node in imports] == ["rucio.client"]
    literals = [ast.literal_eval(n) for n in ast.walk(tree) if isinstance(n, ast.List)][:1]
    assert literals == [[{"scope": "hep", "name": name}]]
