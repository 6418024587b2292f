"""The sites a user may use in the hub's services, a running event's site included
(``continuum_hub.workshops.usable``): participants, guests, outsiders, the event's end, the
event's partition and profile limits, its reservation, and the services' use of it (the
gateway's cluster options and its jobs' ``--reservation``, the workflow service's checks and
its job's ``--reservation``).

Events are read as the services read them: from a real SQLite events' database the hub's
:class:`~continuum_hub.workshops.store.EventStore` wrote, on a read-only connection.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dask_gateway_server.backends.db_base import DataManager
from dask_gateway_server.models import User
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from traitlets.config import Config

from continuum_hub.gateway.backend import SiteSlurmBackend
from continuum_hub.gateway.jobs import SiteClusterConfig
from continuum_hub.gateway.options import Limits, cluster_options, resolve
from continuum_hub.workflows.executor import SiteExecutor
from continuum_hub.workflows.validation import RequestError, resolve_resources
from continuum_hub.workshops import join, usable
from continuum_hub.workshops.model import Event, Profile
from continuum_hub.workshops.store import EventStore
from continuum_hub.workshops.usable import (
    EVENTS_ENV,
    EventPartition,
    EventReader,
    event_reservation,
    events_environment,
    usable_registry,
    usable_sites,
)
from continuum_spawners.accounts import AccountResolver
from continuum_spawners.options import OptionsError, validate_options
from fixtures.workflow_runs import demo_registry, make_plan
from fixtures.workshops import running_event

pytestmark = pytest.mark.workshops

EVENT_ID = "0123456789ab"
GROUP = f"workshop-{EVENT_ID}"
REGISTRY = demo_registry()
LIMITS = Limits(2, 4, 8, 0, {})


def event() -> Event:
    """The running event, built when a test runs: its end is two hours from now then, not from
    when the module was imported (a long session would otherwise eat into its walltime bound)."""
    return running_event(
        id=EVENT_ID,
        profiles=(Profile("small", 1, 2, 0, 60, "python"), Profile("big", 2, 3, 0, 90, "python")),
    )


def names(sites: list) -> dict[str, list[str]]:
    return {site.name: [p.name for p in site.partitions] for site in sites}


def test_the_group_prefix_is_the_join_flows():
    assert usable.GROUP_PREFIX == join.GROUP_PREFIX


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        pytest.param({GROUP}, {"alpha": ["interactive"]}, id="participant-outside-the-vos"),
        pytest.param({GROUP, "vo.elsewhere"}, {"alpha": ["interactive"]}, id="guest"),
        pytest.param(set(), {}, id="outsider"),
        pytest.param({"workshop-ffffffffffff"}, {}, id="another-events-group"),
        pytest.param(
            {GROUP, "vo.radio.example"},
            {"alpha": ["interactive", "batch"], "beta": ["gpu"]},
            id="vo-member-keeps-their-own",
        ),
    ],
)
def test_who_gets_the_events_site(groups: set[str], expected: dict[str, list[str]]):
    assert names(usable_sites(REGISTRY, groups, [event()])) == expected


def test_after_the_end_and_before_the_start_nothing_extra():
    now = datetime.now(UTC)
    ended = replace(event(), end=now - timedelta(seconds=1))
    assert usable_sites(REGISTRY, {GROUP}, [ended]) == []
    later = replace(event(), start=now + timedelta(minutes=5))
    assert usable_sites(REGISTRY, {GROUP}, [later]) == []
    assert usable_registry(REGISTRY, {GROUP}, [ended]) is REGISTRY


def test_the_event_partition_is_bounded_by_the_largest_profile_and_the_end():
    [site] = usable_sites(REGISTRY, {GROUP}, [event()])
    [part] = site.partitions
    assert isinstance(part, EventPartition) and part.default and part.groups is None
    assert (part.max_cores, part.max_memory_gb, part.max_gpus) == (2, 3, 0)
    assert part.max_walltime_minutes == 90 and part.default_walltime_minutes == 60
    # only the profiles' environments (the demo's alpha also offers "modular")
    assert [e.name for e in site.environments] == ["python"]
    # twenty minutes left: no job outlasts the event
    now = datetime.now(UTC)
    closing = replace(event(), end=now + timedelta(minutes=20))
    [site] = usable_sites(REGISTRY, {GROUP}, [closing], now=now)
    assert site.partitions[0].max_walltime_minutes == 20


def test_a_partition_the_users_groups_do_not_give_is_added_to_their_site():
    alpha = REGISTRY.get("alpha")
    assert alpha is not None
    batch = replace(alpha.partition("batch"), groups=frozenset({"vo.hep.example"}))
    restricted = replace(alpha, partitions=(alpha.partition("interactive"), batch))
    registry = type(REGISTRY)([restricted, REGISTRY.get("beta")])
    ev = replace(event(), partition="batch")
    [site, _] = usable_sites(registry, {"vo.radio.example", GROUP}, [ev])
    assert [p.name for p in site.partitions] == ["interactive", "batch"]
    assert site.default_partition.name == "interactive"
    assert site.partition("batch").max_cores == 2  # type: ignore[union-attr]
    assert [e.name for e in site.environments] == ["python", "modular"]  # their site's own


@pytest.mark.parametrize(
    ("state", "users", "account", "expected"),
    [
        pytest.param("created", ("hub", "carol"), "carol", "continuum-0123456789ab", id="admitted"),
        pytest.param("created", ("hub",), "carol", None, id="not-admitted"),
        pytest.param("external", (), "anyone", "course_2026", id="sites-own"),
        pytest.param("none", (), "carol", None, id="none-yet"),
        pytest.param("failed", (), "carol", None, id="refused"),
    ],
)
def test_the_events_reservation(state: str, users: tuple, account: str, expected: str | None):
    ev = replace(
        event(),
        reservation_state=state,
        reservation_users=users,
        external_reservation="course_2026" if state == "external" else "",
    )
    [site] = usable_sites(REGISTRY, {GROUP}, [ev])
    assert event_reservation(site.partitions[0], account) == expected
    assert event_reservation(REGISTRY.get("alpha").partitions[0], account) is None  # type: ignore[union-attr]


@pytest.fixture
def events_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    """The hub's events' database (SQLite, beside a hub database) named to the services."""
    hub = Config({"JupyterHub": {"db_url": f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"}})
    url = events_environment(hub)[EVENTS_ENV]
    store = EventStore(url)
    store.add(event())
    monkeypatch.setenv(EVENTS_ENV, url)
    return store


def test_services_read_running_events_from_the_hubs_database(events_db: EventStore):
    assert names(usable_sites(REGISTRY, {GROUP})) == {"alpha": ["interactive"]}
    assert usable_sites(REGISTRY, {"workshop-ffffffffffff"}) == []
    # the instructor ends it (its window closes): nothing extra, at once
    events_db.save(replace(event(), end=datetime.now(UTC) - timedelta(seconds=1)))
    assert usable_sites(REGISTRY, {GROUP}) == []
    events_db.remove(EVENT_ID)
    assert usable_sites(REGISTRY, {GROUP}) == []


def test_the_reader_is_read_only_and_a_missing_database_offers_nothing(
    events_db: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    reader = EventReader(str(events_db.engine.url))
    with pytest.raises(OperationalError, match="readonly"), reader.engine.begin() as db:
        db.execute(text("DELETE FROM continuum_events"))
    assert [ev.id for ev in reader.running([EVENT_ID], datetime.now(UTC))] == [EVENT_ID]
    monkeypatch.setenv(EVENTS_ENV, f"sqlite:///{tmp_path / 'none' / 'events.sqlite'}")
    assert usable_sites(REGISTRY, {GROUP}) == []
    assert not (tmp_path / "none").exists()
    monkeypatch.delenv(EVENTS_ENV)
    assert usable_sites(REGISTRY, {GROUP}) == []


def test_events_environment_names_the_database_without_its_password():
    postgres = Config({"JupyterHub": {"db_url": "postgresql://hub:secret@db.example/jupyterhub"}})
    assert events_environment(postgres) == {
        EVENTS_ENV: "postgresql+psycopg://hub@db.example/jupyterhub"
    }
    own = Config({"EventManager": {"db_url": "sqlite:////srv/events.sqlite"}})
    assert events_environment(own) == {EVENTS_ENV: "sqlite:////srv/events.sqlite"}


def test_gateway_offers_the_events_partition_within_its_profiles(events_db: EventStore):
    options = cluster_options(REGISTRY, [GROUP], LIMITS)
    fields = {f.field: f for f in options.fields}
    assert list(fields["site"].options) == ["alpha"]
    ok = {
        "site": "alpha", "partition": "interactive", "worker_cores": 2, "worker_memory_gb": 3,
        "worker_gpus": 0, "environment": "default", "walltime_minutes": 90,
        "adaptive_minimum": 0, "adaptive_maximum": 0, "name": "",
    }  # fmt: skip
    config = resolve(ok, REGISTRY, [GROUP], LIMITS)
    assert (config["site"], config["partition"], config["worker_cores"]) == (
        "alpha",
        "interactive",
        2,
    )
    with pytest.raises(ValueError, match="at most 2 cores on partition interactive"):
        resolve({**ok, "worker_cores": 3}, REGISTRY, [GROUP], LIMITS)
    with pytest.raises(ValueError, match=r"walltime on partition interactive .* at most 90"):
        resolve({**ok, "walltime_minutes": 91}, REGISTRY, [GROUP], LIMITS)
    with pytest.raises(ValueError, match="no partition 'batch'"):
        resolve({**ok, "partition": "batch"}, REGISTRY, [GROUP], LIMITS)
    events_db.remove(EVENT_ID)
    with pytest.raises(ValueError, match="you may not use site 'alpha'"):
        resolve(ok, REGISTRY, [GROUP], LIMITS)  # options a client fetched during the event
    with pytest.raises(ValueError, match="none of your groups gives access"):
        cluster_options(REGISTRY, [GROUP], LIMITS).get_configuration({}, None)


def test_gateway_defaults_fit_a_small_profile(events_db: EventStore):
    """1 GB and 30 minutes: below the options' usual defaults (2 GB, 60 minutes)."""
    events_db.save(replace(event(), profiles=(Profile("lab", 1, 1, 0, 30, "python"),)))
    fields = {f.field: f for f in cluster_options(REGISTRY, [GROUP], LIMITS).fields}
    assert (fields["worker_memory_gb"].default, fields["worker_memory_gb"].max) == (1, 1)
    assert (fields["walltime_minutes"].default, fields["walltime_minutes"].max) == (30, 30)


class Accounts(AccountResolver):
    """Everyone has the account of their own name."""

    def resolve(self, username: str, site, allocate: bool) -> str | None:  # type: ignore[no-untyped-def]
        return username


def test_workflow_runs_on_the_events_site_within_its_profiles(events_db: EventStore):
    groups = frozenset({GROUP})
    wanted = {"site": "alpha", "cores": 2, "memory_gb": 3, "walltime": "1:30"}
    request, account = resolve_resources(wanted, "carol", groups, REGISTRY, Accounts())
    assert (request.site, request.partition, account) == ("alpha", "interactive", "carol")
    with pytest.raises(RequestError, match="cores") as refused:
        resolve_resources({**wanted, "cores": 3}, "carol", groups, REGISTRY, Accounts())
    assert refused.value.status == 400
    with pytest.raises(RequestError, match="not allowed to use site 'beta'"):
        resolve_resources({"site": "beta"}, "carol", groups, REGISTRY, Accounts())
    events_db.remove(EVENT_ID)
    with pytest.raises(RequestError, match="not allowed to use site 'alpha'") as late:
        resolve_resources(wanted, "carol", groups, REGISTRY, Accounts())
    assert late.value.status == 403


def test_a_participants_run_goes_into_the_events_reservation():
    ev = replace(event(), reservation_state="created", reservation_users=("hub", "carol"))
    groups = {GROUP}
    request = validate_options(
        {"site": "alpha", "cores": 1}, usable_registry(REGISTRY, groups, [ev]), groups
    )
    executor = SiteExecutor(runner_command=["/opt/venv/bin/continuum-workflow-run"])
    plan = make_plan(request=request, site=request.site_entry, owner="carol", account="carol")
    argv, _ = executor.submit_argv_env(plan, "/home/carol/continuum-runs/r-0123456789ab")
    assert f"--reservation=continuum-{EVENT_ID}" in argv
    # another account (not admitted) runs beside it; a VO member's own partition: no event's
    outside, _ = executor.submit_argv_env(replace(plan, account="dave"), "/tmp/r")
    assert not any(a.startswith("--reservation") for a in outside)
    assert not any(
        a.startswith("--reservation") for a in executor.submit_argv_env(make_plan(), "/tmp/r")[0]
    )
    with pytest.raises(OptionsError, match="not allowed to use site"):
        validate_options({"site": "alpha"}, usable_registry(REGISTRY, set(), [ev]), set())


GATEWAY_SITES = """
sites:
  - name: alpha
    scheduler: slurm
    bind_address: 127.0.0.1
    access: {groups: [vo.any]}
    partitions:
      - {name: interactive, default: true, max_cores: 4, max_memory_gb: 8, max_walltime: "08:00:00"}
"""


@pytest.mark.parametrize(
    ("user", "groups", "expected"),
    [
        pytest.param("carol", [GROUP], f"continuum-{EVENT_ID}", id="admitted"),
        pytest.param("dave", [GROUP], None, id="not-admitted"),
        pytest.param("carol", [GROUP, "vo.any"], None, id="vo-member-on-their-own-partition"),
    ],
)
async def test_a_participants_cluster_jobs_go_into_the_events_reservation(
    events_db: EventStore, tmp_path: Path, user: str, groups: list[str], expected: str | None
):
    """The gateway sets the reservation from the event and the creator's account (it is no
    option of theirs): the scheduler's job, a worker's, and one of both carry it."""
    events_db.save(
        replace(event(), reservation_state="created", reservation_users=("hub", "carol"))
    )
    (tmp_path / "sites.yaml").write_text(GATEWAY_SITES)
    settings = {
        "registry_path": str(tmp_path / "sites.yaml"),
        "api_url": "http://127.0.0.1:9/api",
        "token_agent": [],
        "account_resolver_class": Accounts,
    }
    gw = SiteSlurmBackend(config=Config({"SiteSlurmBackend": settings}))
    gw.db = DataManager()
    options = gw.options_for(User(user, groups=groups))
    with pytest.raises(ValueError, match="Unknown fields"):
        options.parse_options({"reservation": "mine"})
    request = {"site": "alpha", "worker_memory_gb": 1, "walltime_minutes": 30}
    overrides = options.get_configuration(options.parse_options(request), None)
    assert overrides.get("reservation") == expected
    cluster = gw.db.create_cluster(user, {}, SiteClusterConfig(**overrides).to_dict())
    cluster.state = {"account": "root"}  # the staging folder's home: any existing account
    worker = gw.db.create_worker(cluster)
    for job in ({}, {"worker": worker}, {"worker": worker, "with_scheduler": True}):
        argv, _, _ = gw.get_submit_cmd_env_stdin(cluster, **job)
        found = [a.removeprefix("--reservation=") for a in argv if a.startswith("--reservation")]
        assert found == ([expected] if expected else []), (job, argv)
