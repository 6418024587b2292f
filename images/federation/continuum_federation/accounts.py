"""Unix accounts of the local federation's demo and test users.

Slurm runs every job as a real Unix user, so each hub user of the local federation needs an
account on this machine with a private home directory.  Creating one needs root.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from pathlib import Path

#: Portable Unix user names (the shadow-utils default, lowercase only).
USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")

#: Accounts below this uid are system accounts (Debian's UID_MIN).
_FIRST_REGULAR_UID = 1000


def ensure_unix_user(name: str) -> pwd.struct_passwd:
    """Create the Unix account ``name`` unless it exists, and make sure its home is private.

    Idempotent: an existing account is kept as it is, except that its home directory is created
    if missing and set to mode 0700.

    Parameters
    ----------
    name
        The user name; must match :data:`USERNAME_RE`.

    Returns
    -------
    pwd.struct_passwd
        The account's password database entry.

    Raises
    ------
    ValueError
        If ``name`` is not a valid user name.
    RuntimeError
        If the account exists but its home belongs to another user, or is a system account
        without a home (such homes are left alone rather than "repaired").
    PermissionError
        If the account must be created or repaired and this process is not root.
    subprocess.CalledProcessError
        If ``useradd`` fails and the account still does not exist (e.g. a group of that name
        exists already).
    """
    if not isinstance(name, str) or not USERNAME_RE.fullmatch(name):
        raise ValueError(f"invalid Unix user name {name!r}: must match {USERNAME_RE.pattern}")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if os.geteuid() != 0:
            raise PermissionError(f"creating the Unix user {name!r} needs root") from None
        result = subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", "--", name],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            # also when useradd failed with "in use": a concurrent call may have created it
            entry = pwd.getpwnam(name)
        except KeyError:
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, result.stderr
            ) from None
    _ensure_private_home(entry)
    return entry


def _ensure_private_home(entry: pwd.struct_passwd) -> None:
    home = Path(entry.pw_dir)
    try:
        info = home.stat()
    except FileNotFoundError:
        info = None
    if info is not None and info.st_uid != entry.pw_uid:
        # e.g. daemon's home is /usr/sbin: chmod 0700 there would break the machine
        raise RuntimeError(
            f"the home directory {home} of {entry.pw_name!r} belongs to uid {info.st_uid}; "
            "not a suitable account for the federation, leaving it alone"
        )
    if info is None and (entry.pw_uid < _FIRST_REGULAR_UID or not home.is_absolute()):
        raise RuntimeError(
            f"{entry.pw_name!r} is a system account without a home directory ({home}); "
            "not creating one"
        )
    if info is not None and (info.st_mode & 0o777) == 0o700:
        return
    if os.geteuid() != 0:
        raise PermissionError(f"repairing the home directory {home} needs root")
    if info is None:
        # an account made without --create-home, or whose home was removed
        home.mkdir(mode=0o700, parents=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o700)
