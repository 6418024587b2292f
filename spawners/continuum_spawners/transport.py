"""Transports: how scheduler commands reach a site.

:class:`LocalTransport` runs them on the hub's machine (a login node of the site, or the demo's
local clusters), as the user through ``sudo -n -u USER``.  The environment handed to the command
is exactly the mapping given (plus a fixed ``PATH``), so the hub's own secrets never leak into
a job; values travel in the environment, never on the command line, and are never logged.

Production hubs run unprivileged with a sudoers rule such as::

    jupyterhub ALL=(%hubusers) NOPASSWD:SETENV: /usr/bin/sbatch, /usr/bin/squeue, /usr/bin/scancel
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class CommandResult:
    """Exit status and decoded output of one command."""

    returncode: int
    stdout: str
    stderr: str


class TransportError(RuntimeError):
    """A command could not be run at all (missing binary, timeout)."""


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
        """The argument list and environment that run ``argv`` as ``user``."""
        full_env = {"PATH": SAFE_PATH, **self.site_env, **env}
        if user is None or user == _current_user():
            return list(argv), full_env
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
        try:
            proc = await asyncio.create_subprocess_exec(
                *full_argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=full_env,
                cwd="/",
            )
        except OSError as exc:
            raise TransportError(f"cannot run {full_argv[0]}: {exc}") from exc
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None), self.timeout
            )
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise TransportError(f"{argv[0]} did not answer within {self.timeout:.0f} s") from None
        return CommandResult(
            proc.returncode if proc.returncode is not None else -1,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
        )


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name
