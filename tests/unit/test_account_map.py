"""Account mapping policies (``continuum_spawners.account_map``): pattern, map file, pool.

This machine's user database is the boundary: :func:`passwd` replaces it with a fixed set of
accounts, so that the tests do not depend on which Unix users exist here.
"""

from __future__ import annotations

import multiprocessing
import os
import pwd
import re
import stat
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from traitlets import TraitError
from traitlets.config import Config

from continuum_spawners import accounts
from continuum_spawners.account_map import (
    AccountMapError,
    AccountMapper,
    LeaseStore,
    check_account_policies,
    load_account_map,
)
from continuum_spawners.accounts import AccountPolicy, AccountResolver, NoAccountError
from continuum_spawners.sites import Partition, Site, SiteRegistry

POOL = tuple(f"workshop{n:02d}" for n in range(1, 6))
KNOWN = {"alice", "bob", "carol", "dave", "hub_bob", "hub_bob-alpha", "asmith", *POOL}


def site(name: str = "alpha", policy: AccountPolicy | None = None) -> Site:
    part = Partition("p", max_cores=1, max_memory_gb=1, max_walltime_minutes=60,
                     default_walltime_minutes=60)  # fmt: skip
    return Site(name, "slurm", (part,), display_name=f"{name.title()} HPC centre",
                user_accounts=policy)  # fmt: skip


@pytest.fixture(autouse=True)
def passwd(monkeypatch):
    """This machine knows the accounts in :data:`KNOWN`, and no others."""

    def entry(name: str) -> pwd.struct_passwd | None:
        if name not in KNOWN:
            return None
        return pwd.struct_passwd((name, "x", 2000, 2000, "", f"/home/{name}", "/bin/sh"))

    monkeypatch.setattr(accounts, "passwd_entry", entry)


@pytest.fixture
def mapper(tmp_path):
    return AccountMapper(config=Config({"AccountMapper": {"lease_db": str(tmp_path / "l.db")}}))


@pytest.fixture
def pool_mapper(database):
    """A mapper with its leases on SQLite, then on PostgreSQL (``fixtures.databases``)."""
    return AccountMapper(config=Config({"AccountMapper": {"lease_db_url": database("leases")}}))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- pattern -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern,username,account",
    [
        ("{username}", "bob", "bob"),
        ("hub_{username}", "bob", "hub_bob"),
        ("hub_{username}-{site}", "bob", "hub_bob-alpha"),
        ("{username}", "nobody-here", None),  # a valid name this machine does not know
        ("{username}", "Bob", None),  # not a POSIX account name
        ("{username}", "-u", None),  # would be an option of sudo
        ("hub_{username}", "x" * 40, None),  # longer than 32 characters
    ],
    ids=["identity", "prefix", "prefix-site", "unknown", "uppercase", "option", "too-long"],
)
def test_pattern_policy(mapper, pattern, username, account):
    at = site(policy=AccountPolicy("pattern", pattern=pattern))
    assert mapper.account_for(username, at) == account
    if account is None:
        with pytest.raises(
            NoAccountError, match=r"You have no account at Alpha HPC centre \(alpha\)"
        ):
            mapper.require(username, at)


def test_default_policy_is_the_hub_username_and_configurable(tmp_path, mapper):
    assert mapper.account_for("carol", site()) == "carol"
    file = write(tmp_path / "all.yaml", "bob: asmith\n")
    everywhere = AccountMapper(
        config=Config({"AccountMapper": {"default_policy": {"policy": "map", "file": str(file)}}})
    )
    assert everywhere.account_for("bob", site("alpha")) == "asmith"
    assert everywhere.account_for("bob", site("beta")) == "asmith"
    assert everywhere.account_for("carol", site("beta")) is None
    # a site's own policy wins over the default
    own = site("gamma", AccountPolicy("pattern", pattern="{username}"))
    assert everywhere.account_for("carol", own) == "carol"


@pytest.mark.parametrize(
    "policy,message",
    [
        ({"policy": "guess"}, "'guess' is not one of"),
        ({"policy": "map"}, "policy map needs file"),
        ({"policy": "pattern", "pattern": "{user}"}, "{user} is not one of"),
        ({"policy": "pattern", "pattern": "guest"}, "must contain {username}"),
        ({"policy": "pool", "file": "/x"}, "file does not apply to policy pool"),
    ],
    ids=["unknown-policy", "map-without-file", "unknown-field", "shared-account", "stray-key"],
)
def test_default_policy_is_checked(policy, message):
    with pytest.raises(TraitError, match=message):
        AccountMapper(config=Config({"AccountMapper": {"default_policy": policy}}))


def test_base_resolver_refuses_sites_with_a_policy_it_does_not_implement():
    resolver = AccountResolver()
    assert resolver.account_for("bob", site()) == "bob"
    pooled = site(policy=AccountPolicy("pool", accounts=POOL))
    # never silently the hub username where the site asked for a mapping
    assert resolver.account_for("bob", pooled) is None


# -- map file ----------------------------------------------------------------------------------


def test_map_policy(tmp_path, mapper):
    file = write(
        tmp_path / "alpha.yaml", "# hub user: account\nbob: carol\nalice-iam: alice\neve: null\n"
    )
    at = site(policy=AccountPolicy("map", file=str(file)))
    assert mapper.account_for("bob", at) == "carol"
    assert mapper.account_for("alice-iam", at) == "alice"
    assert mapper.account_for("eve", at) is None
    assert mapper.account_for("dave", at) is None
    assert mapper.unavailable("dave", [at]) == {
        "alpha": "You have no account at Alpha HPC centre (alpha)"
    }


def test_map_file_json_is_accepted(tmp_path):
    file = write(tmp_path / "m.json", '{"bob": "carol", "x@example.org": "dave"}')
    assert load_account_map(file) == {"bob": "carol", "x@example.org": "dave"}


@pytest.mark.parametrize(
    "text,where,problem",
    [
        ("- bob\n- carol\n", ":1:1:", "mapping of hub username to account"),
        ("bob: carol\n123: dave\n", ":2:1:", "must be a string (quote it)"),
        ("bob: carol\nalice: Alice Smith\n", ":2:8:", "account of 'alice' must be a POSIX"),
        ("bob: carol\ndave: -rf\n", ":2:7:", "account of 'dave' must be a POSIX"),
        ("bob: [carol\n", ":2:1:", "not valid YAML"),
    ],
    ids=["not-a-mapping", "number-key", "blank-in-account", "option-account", "yaml-syntax"],
)
def test_map_file_errors_name_file_line_column(tmp_path, text, where, problem):
    file = write(tmp_path / "accounts.yaml", text)
    with pytest.raises(AccountMapError) as info:
        load_account_map(file)
    assert str(info.value).startswith(f"{file}{where}"), str(info.value)
    assert problem in str(info.value)


def test_map_file_is_reread_and_a_broken_edit_keeps_the_last_good_map(tmp_path, mapper, caplog):
    file = write(tmp_path / "alpha.yaml", "bob: carol\n")
    at = site(policy=AccountPolicy("map", file=str(file)))
    assert mapper.account_for("bob", at) == "carol"
    write(file, "bob: dave\n")
    os.utime(file, (1, 1))
    assert mapper.account_for("bob", at) == "dave"
    write(file, "bob: [dave\n")
    os.utime(file, (2, 2))
    assert mapper.account_for("bob", at) == "dave"
    assert "keeping the last good version" in caplog.text


def test_missing_map_file_means_no_account(tmp_path, mapper):
    at = site(policy=AccountPolicy("map", file=str(tmp_path / "missing.yaml")))
    assert mapper.account_for("bob", at) is None


def test_startup_check_names_the_broken_map_file(tmp_path):
    file = write(tmp_path / "alpha.yaml", "bob: carol\ndave: Dave\n")
    registry = SiteRegistry([site(policy=AccountPolicy("map", file=str(file)))])
    config = Config(
        {"SiteSpawner": {"account_resolver_class": "continuum_spawners.account_map.AccountMapper"}}
    )
    with pytest.raises(
        SystemExit, match=rf"Invalid account mapping: {file}:2:7: account of 'dave'"
    ):
        check_account_policies(config, registry)
    write(file, "bob: carol\n")
    check_account_policies(config, registry)  # fixed: no complaint
    nope = SiteRegistry([site(policy=AccountPolicy("map", file="/nope"))])
    # AccountMapper is SiteSpawner's default: checked with nothing configured
    with pytest.raises(SystemExit, match="cannot read account map /nope"):
        check_account_policies(Config(), nope)
    # a resolver that reads no map files has nothing to check
    plain = "continuum_spawners.accounts.AccountResolver"
    check_account_policies(Config({"SiteSpawner": {"account_resolver_class": plain}}), nope)


# -- pool --------------------------------------------------------------------------------------


def pooled(accounts=POOL) -> Site:
    return site(policy=AccountPolicy("pool", accounts=tuple(accounts)))


def test_pool_lease_is_stable_and_recorded_only_when_used(pool_mapper):
    at = pooled()
    # the form and estimates ask without taking: the first free account, nothing recorded
    assert pool_mapper.account_for("alice", at, allocate=False) == "workshop01"
    assert pool_mapper.account_for("bob", at, allocate=False) == "workshop01"
    assert pool_mapper.store.leases("alpha") == {}
    assert pool_mapper.account_for("alice", at) == "workshop01"
    assert pool_mapper.account_for("bob", at, allocate=False) == "workshop02"
    assert pool_mapper.account_for("bob", at) == "workshop02"
    for _ in range(3):
        assert pool_mapper.account_for("alice", at) == "workshop01"
        assert pool_mapper.account_for("bob", at) == "workshop02"
    assert pool_mapper.store.leases("alpha") == {"alice": "workshop01", "bob": "workshop02"}


def test_pools_are_per_site(pool_mapper):
    assert pool_mapper.account_for("alice", pooled()) == "workshop01"
    beta = replace(pooled(), name="beta")
    assert pool_mapper.account_for("bob", beta) == "workshop01"


def test_pool_exhaustion_is_a_clear_message(pool_mapper):
    at = pooled(POOL[:2])
    assert pool_mapper.account_for("u1", at) == "workshop01"
    assert pool_mapper.account_for("u2", at) == "workshop02"
    message = "All 2 accounts of Alpha HPC centre (alpha) for this hub are in use"
    with pytest.raises(NoAccountError, match=re.escape(message)):
        pool_mapper.require("u3", at)
    assert pool_mapper.unavailable("u3", [at])["alpha"].startswith(message)
    assert pool_mapper.unavailable("u1", [at]) == {}  # those with a lease keep it
    assert pool_mapper.release("alpha", "u1") == "workshop01"
    assert pool_mapper.account_for("u3", at) == "workshop01"


def test_pool_leases_persist_across_instances_in_a_private_file(tmp_path):
    config = Config({"AccountMapper": {"lease_db": str(tmp_path / "leases.sqlite")}})
    first = AccountMapper(config=config)
    assert first.account_for("alice", pooled()) == "workshop01"
    assert first.account_for("bob", pooled()) == "workshop02"
    second = AccountMapper(config=config)  # a restarted hub
    assert second.account_for("bob", pooled()) == "workshop02"
    assert second.account_for("carol", pooled()) == "workshop03"
    assert stat.S_IMODE((tmp_path / "leases.sqlite").stat().st_mode) == 0o600


def test_lease_of_an_account_removed_from_the_pool_is_void(pool_mapper):
    assert pool_mapper.account_for("alice", pooled()) == "workshop01"
    smaller = pooled(POOL[1:])
    assert pool_mapper.account_for("alice", smaller) == "workshop02"
    assert pool_mapper.store.leases("alpha") == {"alice": "workshop02"}


def test_lease_file_made_readable_by_others_is_tightened(tmp_path):
    path = tmp_path / "leases.sqlite"
    path.touch(mode=0o644)
    path.chmod(0o644)
    LeaseStore(path).lease("alpha", "alice", POOL, allocate=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _allocate(url: str, users: list[str], barrier, results) -> None:
    # turns are taken (BEGIN IMMEDIATE), each waiting up to the timeout: 60 s, not the default
    # 10 s, since a loaded CI machine once held one turn longer than that (fsync) while 72 waited
    store = LeaseStore(url, timeout=60.0)
    barrier.wait()  # every process asks at the same moment
    try:
        results.put([(user, store.lease("alpha", user, POOL, allocate=True)) for user in users])
    except Exception as exc:  # reported to the test, not lost in the child
        results.put(repr(exc))


def test_concurrent_allocations_from_several_processes_never_share_an_account(database):
    path = database("leases")
    users = [f"user{n}" for n in range(12)]  # 12 users, 5 accounts
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(6), context.Queue()
    # every process asks for every user, in a different order
    processes = [
        context.Process(target=_allocate, args=(path, users[n:] + users[:n], barrier, results))
        for n in range(6)
    ]
    for process in processes:
        process.start()
    answers = [results.get(timeout=180) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert all(isinstance(a, list) for a in answers), answers  # no "database is locked"
    leases = LeaseStore(path).leases("alpha")
    assert sorted(leases.values()) == list(POOL)  # each account once
    for user, account in (pair for answer in answers for pair in answer):
        assert account == leases.get(user), (user, account)  # answers agree with the record


def test_concurrent_allocations_from_threads_of_one_hub(database):
    store = LeaseStore(database("leases"))
    got: dict[str, set[str | None]] = {}
    lock = threading.Lock()

    def ask(user: str) -> None:
        account = store.lease("alpha", user, POOL, allocate=True)
        with lock:
            got.setdefault(user, set()).add(account)

    threads = [threading.Thread(target=ask, args=(f"t{n % 5}",)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(accounts) == 1 for accounts in got.values()), got
    assert sorted(a for (a,) in got.values()) == list(POOL)


def test_hub_start_up_check_reads_the_registrys_map_files(tmp_path):
    from continuum_hub.config import check_site_registry

    broken = write(tmp_path / "alpha.yaml", "bob:\n  - carol\n")
    registry = tmp_path / "sites.yaml"
    registry.write_text(
        "sites:\n  - name: alpha\n    scheduler: slurm\n"
        f"    user_accounts: {{policy: map, file: {broken}}}\n"
        "    partitions: [{name: p, max_cores: 1, max_memory_gb: 1, max_walltime: '1:00'}]\n"
    )
    c = Config()
    c.SiteSpawner.registry_path = str(registry)
    c.SiteSpawner.account_resolver_class = "continuum_spawners.account_map.AccountMapper"
    with pytest.raises(SystemExit, match=rf"{broken}:2:3: account of 'bob' must be a POSIX"):
        check_site_registry(c)
