"""Guest seats of workshop events (``continuum_hub.workshops.guests`` and ``.ending``): hashed
single-use codes, the rate limiter, guests' pool accounts and what the event's end removes.

The codes and guests live in a real SQLite database; the machine's user database is replaced
by a fixed set of pool accounts whose homes are folders of the test.
"""

from __future__ import annotations

import pwd
import tarfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from traitlets import TraitError
from traitlets.config import Config

from continuum_hub.workshops import ending
from continuum_hub.workshops.guests import (
    GUEST_PREFIX,
    GuestStore,
    RateLimiter,
    WorkshopAccountMapper,
    hash_code,
    new_guest_name,
)
from continuum_hub.workshops.join import guest_store, may_join, window_refusal
from continuum_hub.workshops.manager import EventManager
from continuum_hub.workshops.model import Event
from continuum_hub.workshops.profiles import event_request, matching_profile
from continuum_spawners import accounts
from continuum_spawners.accounts import AccountPolicy, NoAccountError
from continuum_spawners.options import OptionsError
from continuum_spawners.sites import Partition, Site, SiteRegistry
from fixtures.workshops import running_event

pytestmark = pytest.mark.workshops

POOL = ("guest01", "guest02")
"""The guest pool's accounts (known to this machine in the tests, with homes of the test)."""


@pytest.fixture
def store(tmp_path: Path) -> GuestStore:
    return GuestStore(create_engine(f"sqlite:///{tmp_path / 'events.sqlite'}"))


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The pool accounts (and ``alice``) exist, with homes under the test's folder."""
    root = tmp_path / "home"

    def entry(name: str) -> pwd.struct_passwd:
        if name not in (*POOL, "alice"):
            raise KeyError(name)
        return pwd.struct_passwd((name, "x", 2000, 2000, "", str(root / name), "/bin/sh"))

    monkeypatch.setattr(accounts, "passwd_entry", lambda name: _or_none(entry, name))
    monkeypatch.setattr(ending.pwd, "getpwnam", entry)
    for name in POOL:
        (root / name).mkdir(parents=True)
    return root


def _or_none(entry, name):
    try:
        return entry(name)
    except KeyError:
        return None


@pytest.fixture
def mapper(tmp_path: Path, store: GuestStore) -> WorkshopAccountMapper:
    config = Config(
        {
            "AccountMapper": {"lease_db": str(tmp_path / "leases.sqlite")},
            "WorkshopAccountMapper": {"guest_pool": {"accounts": list(POOL)}},
        }
    )
    made = WorkshopAccountMapper(config=config)
    made.guests = store
    return made


def site(name: str = "alpha") -> Site:
    part = Partition("p", max_cores=1, max_memory_gb=1, max_walltime_minutes=60,
                     default_walltime_minutes=60)  # fmt: skip
    return Site(name, "slurm", (part,), user_accounts=AccountPolicy("pattern"))


def test_codes_are_random_single_use_and_stored_hashed(store: GuestStore, tmp_path: Path) -> None:
    codes = store.add_codes("aaaaaaaaaaaa", 3)
    assert len(set(codes)) == 3 and all(len(c) >= 22 for c in codes)
    with store.engine.connect() as db:
        stored = {
            row[0] for row in db.execute(text("SELECT code_hash FROM continuum_event_guest_codes"))
        }
    assert stored == {hash_code(c) for c in codes}
    assert not any(code.encode() in (tmp_path / "events.sqlite").read_bytes() for code in codes)

    assert store.check("aaaaaaaaaaaa", codes[0]) == "ok"
    assert store.redeem("aaaaaaaaaaaa", codes[0], "guest-one") == "ok"
    assert store.check("aaaaaaaaaaaa", codes[0]) == "used"
    assert store.check("aaaaaaaaaaaa", "forged") == "unknown"
    assert store.redeem("aaaaaaaaaaaa", codes[0], "guest-two") == "used"
    assert store.redeem("aaaaaaaaaaaa", codes[0][:-1] + "x", "guest-two") == "unknown"
    # another event's code is no code here
    other = store.add_codes("bbbbbbbbbbbb", 1)[0]
    assert store.redeem("aaaaaaaaaaaa", other, "guest-two") == "unknown"
    assert store.counts("aaaaaaaaaaaa") == (3, 1)


def test_a_code_is_spent_once_when_many_try_at_once(store: GuestStore) -> None:
    code = store.add_codes("aaaaaaaaaaaa", 1)[0]
    results: list[str] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(store.redeem("aaaaaaaaaaaa", code, f"g{i}"))
        )
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == ["ok"] + ["used"] * 7


def test_rate_limiter_counts_refusals_and_slides() -> None:
    limiter = RateLimiter(limit=3, window=60.0)
    assert [limiter.allow("ip:1", now=t) for t in (0, 1, 2)] == [True] * 3
    assert limiter.allow("ip:1", now=3) is False
    assert limiter.allow("ip:2", now=3) is True  # another address is not held back
    # hammering keeps the door shut: the refused attempts at 3, 50 and 61 fill the window
    assert limiter.allow("ip:1", now=50) is False
    assert limiter.allow("ip:1", now=61) is False
    assert limiter.allow("ip:1", now=62) is False
    assert limiter.allow("ip:1", now=122) is True


def test_guest_names_are_posix_safe_and_distinct() -> None:
    names = {new_guest_name() for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith(GUEST_PREFIX) and len(n) <= 32 and n.islower() for n in names)


def test_guests_get_pool_accounts_others_the_sites_policy(
    store: GuestStore, mapper: WorkshopAccountMapper, homes: Path
) -> None:
    store.add_guest("aaaaaaaaaaaa", "alpha", "guest-0001")
    store.add_guest("aaaaaaaaaaaa", "alpha", "guest-0002")
    store.add_guest("aaaaaaaaaaaa", "alpha", "guest-0003")
    assert mapper.require("guest-0001", site()) == "guest01"
    assert mapper.require("guest-0001", site()) == "guest01"  # the same lease again
    assert mapper.require("guest-0002", site()) == "guest02"
    with pytest.raises(NoAccountError, match="guest accounts are in use"):
        mapper.require("guest-0003", site())
    # a federated user, even one whose name looks like a guest's, keeps the site's policy
    assert mapper.require("alice", site()) == "alice"
    assert mapper.account_for("guest-unknown", site()) is None


def test_a_service_finds_guests_by_their_lease_and_never_leases_them_one(
    store: GuestStore, mapper: WorkshopAccountMapper, homes: Path, tmp_path: Path
) -> None:
    """The services' processes (Dask Gateway, workflows) have no events' database: the hub
    configures them with ``guest_lookup = "leases"`` (:func:`continuum_hub.services.
    resolver_sections`), so a guest's clusters and runs use the account their server holds."""
    from continuum_hub.services import resolver_sections

    store.add_guest("aaaaaaaaaaaa", "alpha", "guest-0001")
    assert mapper.require("guest-0001", site()) == "guest01"  # the hub: the server's start
    hub = Config(
        {
            "AccountMapper": {"lease_db": str(tmp_path / "leases.sqlite")},
            "WorkshopAccountMapper": {"guest_pool": {"accounts": list(POOL)}},
        }
    )
    service = WorkshopAccountMapper(config=Config(resolver_sections(hub)))
    assert service.guest_lookup == "leases"
    assert service.require("guest-0001", site()) == "guest01"
    # no lease: the site's own policy decides (no account named like a guest here)
    assert service.account_for("guest-0002", site(), allocate=True) is None
    assert service.store.leases("alpha") == {"guest-0001": "guest01"}
    assert service.require("alice", site()) == "alice"


def test_guest_pool_is_checked_at_configuration() -> None:
    with pytest.raises(TraitError, match="leave out policy"):
        WorkshopAccountMapper(guest_pool={"policy": "pool", "accounts": ["a"]})
    with pytest.raises(TraitError, match="guest_pool"):
        WorkshopAccountMapper(guest_pool={"prefix": "g", "first": 5, "last": 2})


@pytest.mark.parametrize("keep", [False, True])
async def test_event_end_deletes_guests_releases_leases_and_clears_homes(
    store: GuestStore, mapper: WorkshopAccountMapper, homes: Path, tmp_path: Path, keep: bool
) -> None:
    store.add_codes("aaaaaaaaaaaa", 2)
    store.add_guest("aaaaaaaaaaaa", "alpha", "guest-0001")
    assert mapper.require("guest-0001", site()) == "guest01"
    (homes / "guest01" / "notes").mkdir()
    (homes / "guest01" / "notes" / "a.ipynb").write_text("{}")
    (homes / "guest01" / ".bashrc").write_text("# guest\n")
    deleted: list[str] = []

    async def delete_user(name: str) -> None:
        deleted.append(name)

    archive = None if keep else tmp_path / "archive"
    ended = await ending.end_guests(
        "aaaaaaaaaaaa", store, mapper, delete_user, archive, remove_homes=not keep
    )
    assert deleted == ["guest-0001"]
    assert [(g.username, g.account) for g in ended] == [("guest-0001", "guest01")]
    assert mapper.store.leases("alpha") == {}
    assert store.guests_of("aaaaaaaaaaaa") == [] and store.counts("aaaaaaaaaaaa") == (0, 0)
    if keep:
        assert ended[0].home == "kept" and (homes / "guest01" / ".bashrc").exists()
        return
    assert ended[0].home == "archived"
    assert (homes / "guest01").is_dir() and list((homes / "guest01").iterdir()) == []
    (tarball,) = (archive / "aaaaaaaaaaaa").iterdir()
    assert tarball.stat().st_mode & 0o077 == 0
    with tarfile.open(tarball) as tar:
        assert "guest01/notes/a.ipynb" in tar.getnames()


def test_clear_home_never_follows_links(homes: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("x")
    (homes / "guest02" / "link").symlink_to(outside)
    assert ending.clear_home("guest02", None) == "removed"
    assert (outside / "precious").exists() and not (homes / "guest02" / "link").exists()
    assert ending.clear_home("nobody", None) == "none"


def event(**changes) -> Event:
    return running_event(id="aaaaaaaaaaaa", vos=("vo.a",), guest_seats=1, **changes)


def test_who_may_join_and_when() -> None:
    assert may_join(event(), {"vo.a"}) and not may_join(event(), {"vo.b"})
    assert may_join(event(federated=True), set())
    now = datetime.now(UTC)
    assert window_refusal(event(), now) is None
    assert "opens at" in window_refusal(event(start=now + timedelta(hours=1),
                                              end=now + timedelta(hours=2)), now)  # fmt: skip
    assert window_refusal(event(end=now), now) == "This event has ended."


DEMO = Path(__file__).parents[2] / "hub-config" / "sites.demo.yaml"


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[EventManager]:
    """The hub's event manager (a singleton) on a database of the test."""
    EventManager.clear_instance()
    made = EventManager.instance(db_url=f"sqlite:///{tmp_path / 'events.sqlite'}")
    try:
        yield made
    finally:
        EventManager.clear_instance()


def test_participants_start_their_events_profile_guests_nothing_else(
    manager: EventManager, mapper: WorkshopAccountMapper, homes: Path
) -> None:
    from types import SimpleNamespace

    registry = SiteRegistry.from_file(
        DEMO, {"CONTINUUM_SLURM_CONF_ALPHA": "/a", "CONTINUUM_SLURM_CONF_BETA": "/b"}
    )
    ev = event()
    manager.store.add(ev)
    guests = guest_store(manager)
    guests.add_guest(ev.id, "alpha", "guest-0001")
    manager.store.add_participant(ev.id, "guest-0001")
    mapper.guests = guests  # the pool account of the guest
    spawner = SimpleNamespace(user=SimpleNamespace(name="guest-0001"), config=Config(),
                              accounts=mapper)  # fmt: skip
    profile = ev.profiles[0].user_options("alpha", "interactive")
    assert matching_profile([ev], {"site": "alpha", "partition": "interactive"}) == profile
    # a guest (no VO of the site) gets the profile on the event's site …
    request = event_request(spawner, profile, registry)
    assert request is not None and (request.site, request.cores) == ("alpha", 1)
    # … and nothing wider
    with pytest.raises(OptionsError, match="only your event's profiles") as refused:
        event_request(spawner, {**profile, "cores": 4}, registry)
    assert refused.value.status == 403
    # a federated participant asking for something else is checked as usual
    spawner.user.name = "alice"
    manager.store.add_participant(ev.id, "alice")
    assert event_request(spawner, {**profile, "cores": 4}, registry) is None
