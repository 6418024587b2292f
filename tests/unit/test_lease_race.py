"""Pool leases under a burst of sign-ins on PostgreSQL: 50 at the same moment.

Each sign-in is its own :class:`~continuum_spawners.account_map.AccountMapper` (its own engine
and connection, as separate hub and gateway processes would be) on one PostgreSQL database;
a barrier releases all 50 allocations together.  No two users may share an account, every
answer must agree with the recorded leases, and when the pool is smaller than the crowd the
rest get the clear refusal (``NoAccountError``), never an error of the database.
"""

from __future__ import annotations

import pwd
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from traitlets.config import Config

from continuum_spawners import accounts
from continuum_spawners.account_map import AccountMapper
from continuum_spawners.accounts import AccountPolicy, NoAccountError
from continuum_spawners.sites import Partition, Site
from fixtures.databases import new_postgres_schema

pytestmark = pytest.mark.postgres

USERS = [f"user{n:02d}" for n in range(50)]


def pool_site(size: int) -> Site:
    pool = tuple(f"guest{n:02d}" for n in range(1, size + 1))
    part = Partition("p", max_cores=1, max_memory_gb=1, max_walltime_minutes=60,
                     default_walltime_minutes=60)  # fmt: skip
    return Site("alpha", "slurm", (part,), display_name="Alpha HPC centre",
                user_accounts=AccountPolicy("pool", accounts=pool))  # fmt: skip


@pytest.fixture(autouse=True)
def passwd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pool account exists on this machine (the boundary: its user database)."""

    def entry(name: str) -> pwd.struct_passwd | None:
        if not name.startswith("guest"):
            return None
        return pwd.struct_passwd((name, "x", 2000, 2000, "", f"/home/{name}", "/bin/sh"))

    monkeypatch.setattr(accounts, "passwd_entry", entry)


def sign_in_burst(url: str, site: Site) -> dict[str, str | Exception]:
    """50 users' first spawns at once, each through its own mapper; user → account or error."""
    mappers = [
        AccountMapper(config=Config({"AccountMapper": {"lease_db_url": url}})) for _ in USERS
    ]
    mappers[0].store.engine  # noqa: B018 (the table exists before the burst, as on a live hub)
    barrier = threading.Barrier(len(USERS))

    def sign_in(index: int) -> str | Exception:
        barrier.wait(timeout=60)
        try:
            return mappers[index].require(USERS[index], site)
        except Exception as exc:  # reported, not raised: the test looks at every answer
            return exc

    with ThreadPoolExecutor(len(USERS)) as pool:
        answers = dict(zip(USERS, pool.map(sign_in, range(len(USERS))), strict=True))
    for mapper in mappers:
        mapper.store.engine.dispose()
    return answers


@pytest.mark.parametrize("size", [50, 30], ids=["pool-of-50", "pool-of-30"])
def test_fifty_concurrent_sign_ins_never_share_an_account(postgres_cluster, size: int) -> None:
    url = new_postgres_schema(postgres_cluster, "race")
    site = pool_site(size)
    answers = sign_in_burst(url, site)
    given = {user: a for user, a in answers.items() if isinstance(a, str)}
    refused = {user: a for user, a in answers.items() if not isinstance(a, str)}
    assert len(given) == size and len(set(given.values())) == size  # nobody shares one
    assert set(given.values()) == set(site.user_accounts.accounts)  # type: ignore[union-attr]
    assert len(refused) == len(USERS) - size
    for error in refused.values():  # the clear refusal, never "could not serialize" or alike
        assert isinstance(error, NoAccountError), repr(error)
        assert f"All {size} accounts of Alpha HPC centre (alpha)" in str(error)
    recorded = AccountMapper(config=Config({"AccountMapper": {"lease_db_url": url}}))
    assert recorded.store.leases("alpha") == given  # the answers are what was recorded
