"""Transports: how scheduler commands reach a site — the base, and running them locally.

:class:`LocalTransport` runs them on the hub's machine (a login node of the site, or the demo's
local clusters), as the user through ``sudo -n -u USER``.  The environment handed to the command
is exactly the mapping given (plus a fixed ``PATH``), so the hub's own secrets never leak into
a job; values travel in the environment, never on the command line, and are never logged.

Production hubs run unprivileged with a sudoers rule such as::

    jupyterhub ALL=(%hubusers) NOPASSWD:SETENV: /usr/bin/sbatch, /usr/bin/squeue, /usr/bin/scancel

Sites reached through their login node use :class:`~.ssh.SSHTransport`, which builds on this
module (:class:`CommandResult`, :class:`TransportError`, :func:`run_process`); nothing here
imports it: :func:`continuum_spawners.schedulers.transport_for` picks the transport a site's
registry entry asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..accounts import POSIX_ACCOUNT

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class CommandResult:
    """Exit status and decoded output of one command."""

    returncode: int
    stdout: str
    stderr: str


class TransportError(RuntimeError):
    """A command could not be run at all (missing binary, timeout, site unreachable)."""


class Transport(Protocol):
    """What the spawner needs of a transport: run one argument list, as a user, with an env."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> CommandResult: ...


async def run_process(
    argv: Sequence[str], env: Mapping[str, str], stdin: bytes | None, seconds: float, what: str
) -> CommandResult:
    """Run ``argv`` with exactly ``env`` in ``/``, feed it ``stdin``, kill it after ``seconds``.

    ``what`` names the command in :class:`TransportError` messages (never the full argv, which
    the caller may not want quoted).
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            cwd="/",
        )
    except OSError as exc:
        raise TransportError(f"cannot run {argv[0]}: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), seconds)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise TransportError(f"{what} did not answer within {seconds:.0f} s") from None
    return CommandResult(
        proc.returncode if proc.returncode is not None else -1,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
    )


class LocalTransport:
    """Run commands on this machine, optionally as another user through ``sudo``.

    Parameters
    ----------
    site_env
        Environment every command of this site gets (e.g. ``SLURM_CONF``).
    timeout
        Seconds after which a command is killed.
    """

    def __init__(self, site_env: Mapping[str, str] | None = None, timeout: float = 30.0) -> None:
        self.site_env = dict(site_env or {})
        self.timeout = timeout

    def command(
        self, argv: Sequence[str], user: str | None, env: Mapping[str, str]
    ) -> tuple[list[str], dict[str, str]]:
        """The argument list and environment that run ``argv`` as ``user``.

        Raises
        ------
        TransportError
            If ``user`` is not a POSIX account name (``sudo`` would read ``-x`` as an option).
        """
        full_env = {"PATH": SAFE_PATH, **self.site_env, **env}
        if user is None or user == current_user():
            return list(argv), full_env
        if not POSIX_ACCOUNT.match(user):
            raise TransportError(f"{user[:40]!r} is not a POSIX account name")
        names = sorted(k for k in full_env if k != "PATH")
        prefix = ["sudo", "-n", "-u", user]
        if names:
            prefix.append("--preserve-env=" + ",".join(names))
        return [*prefix, *argv], full_env

    async def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        """Run ``argv`` (as ``user``) and return its result; never raises on exit status."""
        full_argv, full_env = self.command(argv, user, env or {})
        data = stdin.encode() if stdin is not None else None
        return await run_process(full_argv, full_env, data, self.timeout, argv[0])


def current_user() -> str:
    """The name of the account this process runs as."""
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name
