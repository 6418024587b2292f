"""No hub user's server or job runs as a system account, whatever the account mapping says.

A person's login at an identity provider (``preferred_username``) is often their own choice; with
the default mapping (account = hub username) the login ``root`` would otherwise be handed to
``sudo -u root`` and ``sbatch``.  The boundary is this machine's user database: only uids in
``UID_MIN``–``UID_MAX`` of ``login.defs`` are people's accounts.  (The same through the real hub:
``test_claims.py::test_login_named_like_a_system_account_gets_no_system_account``.)
"""

from __future__ import annotations

import pwd
from pathlib import Path

import pytest

from continuum_spawners import accounts
from continuum_spawners.accounts import AccountResolver, NoAccountError, regular_uids
from continuum_spawners.sites import SiteRegistry

pytestmark = pytest.mark.security

#: system accounts every Debian machine has (uid 0, 1, 65534)
SYSTEM = ("root", "daemon", "nobody")
SITE = SiteRegistry.from_dict(
    {
        "sites": [
            {
                "name": "alpha",
                "scheduler": "slurm",
                "partitions": [
                    {
                        "name": "batch",
                        "default": True,
                        "max_cores": 1,
                        "max_memory_gb": 1,
                        "max_walltime": "01:00:00",
                        "default_walltime": "00:10:00",
                    }
                ],
            }
        ]
    }
).get("alpha")


def test_regular_uids_come_from_login_defs(tmp_path: Path) -> None:
    defs = tmp_path / "login.defs"
    defs.write_text("# comment\nUID_MIN\t\t\t 2000\nUID_MAX  3000\nGID_MIN 5\n")
    assert regular_uids(str(defs)) == range(2000, 3001)
    assert regular_uids(str(tmp_path / "missing")) == range(1000, 60001)


@pytest.mark.parametrize("account", SYSTEM)
def test_system_accounts_are_nobodys_account(account: str) -> None:
    pwd.getpwnam(account)  # it exists here
    assert AccountResolver().account_for(account, SITE, allocate=False) is None
    with pytest.raises(NoAccountError, match="system account"):
        accounts.checked_passwd(account)


def test_a_persons_account_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    person = pwd.struct_passwd(("erin", "x", min(regular_uids()), 100, "", "/home/erin", "/bin/sh"))
    monkeypatch.setattr(accounts, "passwd_entry", lambda name: person if name == "erin" else None)
    assert AccountResolver().account_for("erin", SITE, allocate=False) == "erin"
    assert accounts.checked_passwd("erin") is person
