"""Workshop events: validation of an instructor's input, the store, the Slurm reservation argv
and the participant's ``--reservation`` (issue 13, items 1–2)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from continuum_hub.workshops.manager import EventManager
from continuum_hub.workshops.material import check_material, public_host
from continuum_hub.workshops.model import EventError, Limits, updated_event, validate_event
from continuum_hub.workshops.store import EventStore, events_url
from continuum_spawners.jobs import build_job_spec
from continuum_spawners.options import validate_options
from continuum_spawners.schedulers.base import JobSpec, ReservationSpec
from continuum_spawners.schedulers.slurm import SlurmAdapter
from continuum_spawners.sites import SiteRegistry

pytestmark = pytest.mark.workshops

DEMO = Path(__file__).resolve().parents[2] / "hub-config" / "sites.demo.yaml"
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
HEP = {"vo.hep.example", "vo.hep.example#instructor"}


@pytest.fixture(scope="module")
def registry() -> SiteRegistry:
    return SiteRegistry.from_file(
        DEMO, {"CONTINUUM_SLURM_CONF_ALPHA": "/a", "CONTINUUM_SLURM_CONF_BETA": "/b"}
    )


def body(**changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "title": "Intro to Dask",
        "start": "2026-12-05T09:30:00Z",
        "end": "2026-12-05T12:00:00+00:00",
        "seats": 10,
        "site": "alpha",
        "partition": "interactive",
        "profiles": [{"cores": 1, "memory_gb": 2, "walltime": "2:00"}],
        "material": {"git": "https://github.com/dask/dask-tutorial", "ref": "main"},
        "access": {"vos": ["vo.hep.example"], "federated": False, "guest_seats": 2},
    }
    event.update(changes)
    return event


def make(registry: SiteRegistry, data: object, **kwargs: object):
    options = {
        "owner": "alice",
        "registry": registry,
        "groups": HEP,
        "limits": Limits(folder_roots=("/srv/material",)),
        "now": NOW,
        "instructs": {"vo.hep.example"},
    }
    options.update(kwargs)
    return validate_event(data, **options)  # type: ignore[arg-type]


def make_event_of(owner: str):
    sites = SiteRegistry.from_file(
        DEMO, {"CONTINUUM_SLURM_CONF_ALPHA": "/a", "CONTINUUM_SLURM_CONF_BETA": "/b"}
    )
    return make(sites, body(), owner=owner)


def test_valid_event(registry):
    ev = make(registry, body())
    assert (ev.site, ev.partition, ev.seats, ev.guest_seats) == ("alpha", "interactive", 10, 2)
    assert ev.profiles[0].walltime_minutes == 120 and ev.cores == 10
    assert ev.reservation == f"continuum-{ev.id}" and ev.reservation_state == "none"
    assert len(ev.join_code) >= 22 and ev.join_code != make(registry, body()).join_code
    public = ev.public_json()
    assert "join_code" not in public and "participants" not in public
    assert public["profiles"][0]["walltime"] == "2:00"


@pytest.mark.parametrize(
    "changes,status,message",
    [
        ({"start": "2026-12-04T09:00:00Z", "end": "2026-12-04T12:00:00Z"}, 400, "in the past"),
        ({"start": "2026-12-05T08:00:00Z"}, 400, "in the past"),
        ({"end": "2026-12-25T12:00:00Z"}, 400, "at most 14 days"),
        ({"end": "2026-12-05T09:00:00Z"}, 400, "must end after it starts"),
        ({"start": "2026-12-05T09:30:00"}, 400, "needs a time zone"),
        ({"start": "tomorrow"}, 400, "not an ISO 8601"),
        ({"seats": 0}, 400, "seats must be between 1 and 200"),
        ({"seats": 100000}, 400, "seats must be between 1 and 200"),
        ({"seats": "10"}, 400, "seats must be a whole number"),
        ({"site": "gamma"}, 400, "unknown site 'gamma'"),
        ({"site": "beta"}, 403, "not allowed to use site 'beta'"),
        ({"partition": "nope"}, 400, "has no partition 'nope'"),
        ({"profiles": [{"cores": 64}]}, 400, "cores must be between 1 and 4"),
        ({"profiles": [{"memory_gb": 999}]}, 400, "memory_gb must be between"),
        ({"profiles": [{"walltime": "99:00"}]}, 400, "walltime must be between"),
        ({"profiles": [{"gpus": 1}]}, 400, "gpus must be between 0 and 0"),
        ({"profiles": [{"cores": 1, "shell": "x"}]}, 400, "allowed fields"),
        ({"profiles": []}, 400, "list of 1 to 5"),
        ({"profiles": [{"name": "a"}, {"name": "a"}]}, 400, "names must differ"),
        ({"material": {"git": "file:///etc"}}, 400, "not 'file'"),
        ({"material": {"git": "https://127.0.0.1/x.git"}}, 400, "private network"),
        ({"material": {"git": "http://10.1.2.3/x.git"}}, 400, "private network"),
        ({"material": {"git": "https://[::1]/x.git"}}, 400, "private network"),
        ({"material": {"git": "http://169.254.169.254/"}}, 400, "private network"),
        ({"material": {"git": "https://localhost/x.git"}}, 400, "private network"),
        ({"material": {"git": "http://2130706433/x.git"}}, 400, "private network"),
        ({"material": {"git": "https://github.com/x", "ref": "--upload-pack=x"}}, 400, "ref"),
        ({"material": {"folder": "/etc"}}, 400, "under one of: /srv/material"),
        ({"material": {"folder": "/srv/material/../../etc"}}, 400, "without '..'"),
        ({"access": {"vos": ["vo.radio.example"]}}, 403, "not an instructor of vo.radio"),
        ({"access": {"guest_seats": 11}}, 400, "guest_seats must be between 0 and 10"),
        ({"reservation": "x y"}, 400, "reservation name"),
        ({"title": ""}, 400, "title"),
        ({"owner": "mallory"}, 400, "unknown field(s): owner"),
        ({"end": "2026-12-05T10:00:00Z"}, 400, "walltime (2:00) outlasts the event"),
    ],
)
def test_bad_input(registry, changes, status, message):
    with pytest.raises(EventError) as info:
        make(registry, body(**changes))
    assert info.value.status == status
    assert message in str(info.value)


def test_profile_menu_and_folder(registry):
    ev = make(
        registry,
        body(
            profiles=[{"name": "small", "cores": 1}, {"name": "large", "cores": 4}],
            material={"folder": "/srv/material/day1"},
        ),
    )
    assert [p.name for p in ev.profiles] == ["small", "large"] and ev.cores == 40
    assert ev.material == {"folder": "/srv/material/day1"}


def test_public_hosts():
    assert public_host("github.com") and public_host("8.8.8.8")
    for host in ("192.168.1.1", "::ffff:10.0.0.1", "foo.local", "0x7f000001", "100.64.0.1"):
        assert not public_host(host), host
    assert check_material(None, ()) is None


def no_reservation_sites() -> SiteRegistry:
    """A registry whose site makes its own reservations (``reservations: false``)."""
    partition = {"name": "interactive", "max_cores": 4, "max_memory_gb": 8}
    partition["max_walltime"] = "08:00:00"
    site = {"name": "alpha", "scheduler": "slurm", "reservations": False}
    return SiteRegistry.from_dict({"sites": [{**site, "partitions": [partition]}]})


def test_site_without_hub_reservations(registry):
    sites = no_reservation_sites()
    with pytest.raises(EventError, match="name the reservation the site made"):
        make(sites, body())
    ev = make(sites, body(reservation="course_2026"))
    assert ev.reservation == "course_2026" and ev.reservation_state == "external"


def test_admin_may_open_to_any_vo(registry):
    ev = make(registry, body(access={"vos": ["vo.radio.example"]}), instructs=None)
    assert ev.vos == ("vo.radio.example",)


def test_patch_keeps_identity(registry):
    ev = make(registry, body())
    kwargs = {"registry": registry, "groups": HEP, "limits": Limits(), "now": NOW}
    fresh = updated_event(ev, {"seats": 3, "title": "Dask, day 2"}, instructs=None, **kwargs)
    assert (fresh.id, fresh.join_code, fresh.seats, fresh.title) == (
        ev.id,
        ev.join_code,
        3,
        "Dask, day 2",
    )
    with pytest.raises(EventError, match="seats"):
        updated_event(ev, {"seats": -1}, instructs=None, **kwargs)


def test_store_round_trip(registry, tmp_path):
    url = events_url(f"sqlite:///{tmp_path / 'hub' / 'jupyterhub.sqlite'}")
    assert url == f"sqlite:///{tmp_path / 'hub' / 'continuum-events.sqlite'}"
    store = EventStore(url)
    assert (tmp_path / "hub" / "continuum-events.sqlite").stat().st_mode & 0o777 == 0o600
    ev = make(registry, body(start="2026-12-05T08:58:00Z"))
    store.add(ev)
    assert store.get(ev.id) == ev and store.by_code(ev.join_code) == ev
    assert store.add_participant(ev.id, "bob") and not store.add_participant(ev.id, "bob")
    assert store.get(ev.id).participants == ("bob",)
    assert [e.id for e in store.events_of("bob", NOW)] == [ev.id]
    assert store.events_of("bob", ev.end) == [] and store.events_of("carol", NOW) == []
    assert [e.id for e in store.current(NOW)] == [ev.id]
    store.remove(ev.id)
    assert store.get(ev.id) is None and store.list() == []


def test_postgres_url():
    assert events_url("postgresql://hub:pw@db/hub") == "postgresql+psycopg://hub:pw@db/hub"


def test_instructors(tmp_path):
    manager = EventManager(
        db_url=f"sqlite:///{tmp_path / 'events.sqlite'}", instructor_groups=["teachers"]
    )
    groups = ["vo.hep.example", "vo.hep.example#instructor", "teachers", "x#manager"]
    assert manager.instructs(groups) == {"vo.hep.example", "teachers"}
    user = SimpleNamespace(admin=False, groups=[SimpleNamespace(name="vo.hep.example")])
    assert not manager.may_create(user)
    other = make_event_of("carol")
    with pytest.raises(EventError, match="another instructor") as info:
        manager.check_owner(SimpleNamespace(name="alice", admin=False), other, other.id)
    assert info.value.status == 403
    admin = SimpleNamespace(name="dave", admin=True)
    assert manager.check_owner(admin, other, other.id) is other
    with pytest.raises(EventError, match="no event"):
        manager.check_owner(admin, None, "0123456789ab")


def test_reservation_argv():
    start = NOW + timedelta(minutes=30)
    spec = ReservationSpec(
        "continuum-abc", "interactive", start, start + timedelta(hours=2), 8, ["root", "alice"]
    )
    assert SlurmAdapter().create_reservation_argv(spec, NOW) == [
        "scontrol",
        "create",
        "reservation",
        "ReservationName=continuum-abc",
        "StartTime=now+1800",
        "Duration=120",
        "PartitionName=interactive",
        "CoreCnt=8",
        "Users=root,alice",
        "Flags=IGNORE_JOBS",
    ]
    running = SlurmAdapter().create_reservation_argv(spec, start + timedelta(seconds=30))
    assert running[4:6] == ["StartTime=now", "Duration=120"]
    assert SlurmAdapter().update_reservation_argv("continuum-abc", ["root", "bob"]) == [
        "scontrol",
        "update",
        "ReservationName=continuum-abc",
        "Users=root,bob",
    ]
    assert SlurmAdapter().delete_reservation_argv("r1") == [
        "scontrol",
        "delete",
        "ReservationName=r1",
    ]
    for bad in (
        {"name": "-x"},
        {"users": ["-u root"]},
        {"users": []},
        {"cores": 0},
        {"partition": "a b"},
    ):
        values = {
            "name": "r",
            "partition": "p",
            "start": start,
            "end": start + timedelta(hours=1),
            "cores": 1,
            "users": ["alice"],
            **bad,
        }
        with pytest.raises(ValueError):
            ReservationSpec(**values)
    with pytest.raises(ValueError):
        SlurmAdapter().update_reservation_argv("r; rm", ["alice"])


SHOW = (
    "ReservationName=continuum-abc StartTime=2026-12-05T09:00:00 EndTime=2026-12-05T11:00:00 "
    "Duration=02:00:00 Nodes=alpha-n1 NodeCnt=1 CoreCnt=2 Features=(null) "
    "PartitionName=interactive Flags=IGNORE_JOBS,SPEC_NODES TRES=cpu=2 Users=root,bob "
    "Groups=(null) Accounts=(null) Licenses=(null) State=ACTIVE BurstBuffer=(null) Watts=n/a\n"
)


def test_parse_reservation():
    info = SlurmAdapter().parse_reservation(0, SHOW, "")
    assert info is not None
    assert (info.name, info.state, info.cores, info.users, info.partition) == (
        "continuum-abc",
        "ACTIVE",
        2,
        ("root", "bob"),
        "interactive",
    )
    assert SlurmAdapter().parse_reservation(1, "", "Reservation x not found\n") is None
    with pytest.raises(RuntimeError, match="Unable to contact"):
        SlurmAdapter().parse_reservation(1, "", "Unable to contact slurm controller\n")


def test_job_carries_reservation(registry):
    request = validate_options({"site": "alpha"}, registry, HEP)
    site = registry.get("alpha")
    spec = build_job_spec(site, request, "/home/bob", "jupyterlab", [], "continuum-abc")
    assert "--reservation=continuum-abc" in SlurmAdapter().submit_argv(spec)
    plain = build_job_spec(site, request, "/home/bob", "jupyterlab", [])
    assert not any(a.startswith("--reservation") for a in SlurmAdapter().submit_argv(plain))
    with pytest.raises(ValueError, match="not a reservation name"):
        JobSpec("j", "p", 1, 1, 60, "/", "/o", reservation="--x")


class RecordedTransport:
    """The site's scheduler as a command transcript: every argv, and answers by command."""

    def __init__(self) -> None:
        self.argvs: list[list[str]] = []
        self.answers: dict[str, tuple[int, str, str]] = {}

    async def run(self, argv, *, user=None, env=None, stdin=None):
        from continuum_spawners.schedulers.transport import CommandResult

        self.argvs.append(list(argv))
        return CommandResult(*self.answers.get(argv[1], (0, "", "")))


@pytest.fixture
def keeper(registry, tmp_path, monkeypatch):
    import logging

    from continuum_hub.workshops.reservations import Reservations
    from continuum_spawners import schedulers

    transport = RecordedTransport()
    monkeypatch.setitem(schedulers.TRANSPORTS, "local", lambda site, timeout: transport)
    store = EventStore(f"sqlite:///{tmp_path / 'events.sqlite'}")
    keeper = Reservations(store, lambda: registry, logging.getLogger("test"))
    return keeper, transport, store


async def test_reservations_are_made_when_due_retried_and_released(registry, keeper):
    keeper, transport, store = keeper
    later = make(registry, body(start="2026-12-05T12:00:00Z", end="2026-12-05T14:00:00Z"))
    soon = make(registry, body())
    for ev in (later, soon):
        store.add(ev)
    # the site refuses at first: the refusal is kept, and the next round tries again
    transport.answers["create"] = (
        1,
        "",
        "Error creating the reservation: Requested nodes are busy",
    )
    await keeper.reconcile(NOW)
    assert [a[:3] for a in transport.argvs] == [["scontrol", "create", "reservation"]]
    failed = store.get(soon.id)
    assert failed.reservation_state == "failed" and "nodes are busy" in failed.reservation_error
    assert store.get(later.id).reservation_state == "none"  # not due within the lead time
    del transport.answers["create"]
    await keeper.reconcile(NOW)
    made = store.get(soon.id)
    assert (made.reservation_state, made.reservation_error) == ("created", "")
    assert len(transport.argvs) == 2
    # a participant's account is let in once
    admitted = await keeper.admit(made, "bob")
    await keeper.admit(admitted, "bob")
    assert transport.argvs[-1][1] == "update" and transport.argvs[-1][-1].endswith(",bob")
    assert len(transport.argvs) == 3 and store.get(soon.id).reservation_users[-1] == "bob"
    # after the end, the reservation is forgotten (gone already counts as removed)
    transport.answers["delete"] = (1, "", "Reservation continuum-x not found")
    await keeper.reconcile(soon.end + timedelta(seconds=1))
    assert transport.argvs[-1][1] == "delete"
    assert store.get(soon.id).reservation_state == "deleted"


async def test_participants_starting_together_are_all_let_in(registry, keeper):
    """Each admission writes the whole Users= list: twenty at once, all from the same (stale)
    event, must not drop one another's accounts (a 20-browser burst saw 7 refused)."""
    keeper, transport, store = keeper
    ev = make(registry, body())
    store.add(ev)
    await keeper.reconcile(NOW)
    made = store.get(ev.id)
    answer = transport.run

    async def slow_run(argv, **kwargs):
        await asyncio.sleep(0.001)  # the scheduler takes its time: the admissions interleave
        return await answer(argv, **kwargs)

    transport.run = slow_run
    accounts = [f"user{n:02d}" for n in range(20)]
    await asyncio.gather(*(keeper.admit(made, a) for a in accounts))
    assert set(accounts) <= set(store.get(ev.id).reservation_users)
    assert set(accounts) <= set(transport.argvs[-1][-1].split("=", 1)[1].split(","))


async def test_site_reservations_are_never_touched(keeper):
    keeper, transport, store = keeper
    sites = no_reservation_sites()
    ev = make(sites, body(reservation="course_2026"))
    store.add(ev)
    await keeper.reconcile(NOW)
    assert await keeper.admit(ev, "bob") == ev
    assert (await keeper.release(ev)).reservation_state == "external"
    assert transport.argvs == []
