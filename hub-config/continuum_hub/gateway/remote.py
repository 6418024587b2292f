"""How a gateway cluster's jobs reach a site that is not the gateway's machine.

Every command goes through the site's transport
(:func:`~continuum_spawners.schedulers.transport_for`), as for the spawner; what travels
depends on whether the transport offers a shell on the site:

``local`` and ``ssh`` (:data:`LAUNCHER_TRANSPORTS`)
    :mod:`.launcher` runs as the cluster's account, on the gateway's machine (``sudo -nHu``)
    or on the site's login node (the SSH transport, as the user: through ``sudo -n -u`` of the
    site's login account).  It creates the 0700 staging folder with its 0600 files and runs
    ``sbatch``/``scancel``; its request (the job's environment and the files, secrets
    included) travels on standard input.  Where it lives on a login node is
    ``SiteJobs.site_launchers`` (site name → argument list; default: the gateway's own
    ``launcher_command``, right where the login node mounts the hub's software, as the demo's).
``slurmrestd`` (everything else)
    No shell: the job stages itself.  The files' contents travel in the job's environment (as
    every other secret of the job), named by :func:`stage_variable`; the job script's first
    step (:func:`stage_step`, fixed text) creates the folder (0700) and writes each file (0600)
    with the shell's ``printf`` builtin, then unsets the variables.  The scheduler's job removes
    the folder when it ends (cancelled or not); its output goes to the account's home, as a
    server's, because the folder does not exist before the job starts.  Cancelling is
    ``scancel`` through the transport.  A worker's job carries the TLS pair only (the hub
    token is held until the scheduler's submission, never stored): a worker submitted with the
    scheduler whose job starts first runs without the token agent.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import sys
from collections.abc import Mapping
from typing import Any

from dask_gateway_server.backends.db_base import Cluster
from dask_gateway_server.backends.jobqueue.slurm import SlurmBackend
from traitlets import Dict, Float, List, Unicode, default

from continuum_spawners.schedulers import transport_for
from continuum_spawners.schedulers.transport import CommandResult
from continuum_spawners.sites import Site

from . import launcher

#: transports where the launcher runs (a shell as the user on the site)
LAUNCHER_TRANSPORTS = frozenset({"local", "ssh"})
#: the prefix of the job environment's variables that carry staged files
STAGE_PREFIX = "CONTINUUM_STAGE_"
#: the job environment's variable naming the staging folder of a self-staging job
STAGING_VARIABLE = "CONTINUUM_STAGING"

#: the job script's staging step (``{files}``: one ``stage NAME "$VARIABLE"`` line per file)
STAGE_STEP = """# staging: the cluster's folder (0700) and files (0600) from the job's environment
{cleanup}umask 077
mkdir -p "${variable}"
stage() {{
  [ -e "${variable}/$1" ] && return 0
  printf '%s' "$2" > "${variable}/.$1.$$"
  mv -f "${variable}/.$1.$$" "${variable}/$1"
}}
{files}unset {names}
cd "${variable}"
"""
#: the scheduler's job removes the folder when it ends, however soon it is cancelled (set before
#: the folder is made; the shell stays: see SCHEDULER_TAIL)
CLEANUP = """trap 'rm -rf -- "${variable}"' EXIT
trap 'exit 143' TERM INT
"""
#: how a self-staging scheduler's job runs its command: not ``exec``, so the traps stay
SCHEDULER_TAIL = '{command} &\nwait "$!"\n'


def stages_itself(site: Site) -> bool:
    """Whether ``site``'s jobs create their staging folder themselves (no launcher there)."""
    return site.transport not in LAUNCHER_TRANSPORTS


def stage_variable(name: str) -> str:
    """The job environment's variable carrying the staged file ``name``."""
    return STAGE_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def stage_environment(staging: str, files: Mapping[str, str]) -> dict[str, str]:
    """The variables of a self-staging job: the folder and each file's content."""
    env = {STAGING_VARIABLE: staging}
    env.update({stage_variable(name): text for name, text in files.items()})
    return env


def stage_step(files: Mapping[str, str], cleanup: bool) -> str:
    """The staging step of a self-staging job's script (no secret in it: names only).

    Parameters
    ----------
    files
        The staged files (only their names are used).
    cleanup
        Whether this job (the scheduler's) removes the folder when it ends.
    """
    lines = "".join(
        f'stage {shlex.quote(name)} "${stage_variable(name)}"\n' for name in sorted(files)
    )
    names = " ".join(stage_variable(name) for name in sorted(files)) or STAGING_VARIABLE
    return STAGE_STEP.format(
        variable=STAGING_VARIABLE,
        files=lines,
        names=names,
        cleanup=CLEANUP.format(variable=STAGING_VARIABLE) if cleanup else "",
    )


def launcher_request(action: str, request: Mapping[str, object]) -> str:
    """The launcher's standard input (secrets included: never logged, never on argv)."""
    return json.dumps({**request, "action": action})


def launcher_answer(result: CommandResult) -> tuple[int, str, str]:
    """The command's exit status and output from the launcher's answer.

    Raises
    ------
    RuntimeError
        When the launcher failed or could not set up the staging folder.
    """
    if result.returncode != 0:
        raise RuntimeError(
            f"launcher failed (exit {result.returncode}): {result.stderr.strip()[:300]} "
            f"{result.stdout[:300]}"
        )
    try:
        answer = json.loads(result.stdout)
    except ValueError:
        # the launcher prints nothing when asked to stop a cluster whose folder is gone
        raise RuntimeError(f"launcher gave no answer: {result.stderr.strip()[:300]}") from None
    if not answer["ok"]:
        raise RuntimeError(answer["error"])
    return answer["returncode"], answer["stdout"], answer["stderr"]


class SiteCommands(SlurmBackend):
    """Runs a cluster's ``sbatch`` and ``scancel`` as its account through its site's transport
    (base of :class:`~continuum_hub.gateway.jobs.SiteJobs`, which says whose and where)."""

    launcher_command = List(
        Unicode(),
        config=True,
        help="""What ``sudo -nHu ACCOUNT`` runs to create a cluster's staging folder and submit
        or cancel its jobs as the user (dask-gateway's launcher protocol on standard input).
        Default: this package's ``launcher.py`` with the gateway's Python, ``-I -S`` (standard
        library only, no site-packages to load).  The gateway's sudo rule must allow it.""",
    )

    @default("launcher_command")
    def _launcher_command_default(self) -> list[str]:
        return [sys.executable, "-I", "-S", launcher.__file__]

    site_launchers = Dict(
        key_trait=Unicode(),
        value_trait=List(Unicode()),
        default_value={},
        config=True,
        help="""Where the launcher lives on the login nodes of sites reached over SSH: site name
        → the argument list that runs it there (as the user, through the site's login account:
        its sudo rule must allow exactly this command), e.g. ``{"alpha": ["/opt/dask/bin/python",
        "-I", "-S", "/opt/continuum/launcher.py"]}`` (the file is this package's
        ``gateway/launcher.py``: standard library only, any Python 3).  A site not named uses
        ``launcher_command``, right where the login node mounts the hub's software.  Sites
        reached through slurmrestd need none (their jobs stage themselves, :mod:`.remote`).""",
    )

    command_timeout = Float(
        30.0,
        config=True,
        help="""Seconds after which a command on a remote site (ssh, slurmrestd: connection
        included) is given up.  Default 30.""",
    )

    async def do_as_user(self, user: str, action: str, **kwargs: Any) -> tuple[int, str, str]:
        """Run the launcher as ``user`` on this machine (as upstream's, with
        :attr:`launcher_command`)."""
        proc = await asyncio.create_subprocess_exec(
            "sudo", "-nHu", user, *self.launcher_command,
            env={},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate(launcher_request(action, kwargs).encode())
        result = CommandResult(
            proc.returncode if proc.returncode is not None else -1,
            out.decode("utf8", "replace"),
            err.decode("utf8", "replace"),
        )
        return launcher_answer(result)

    async def as_user(self, cluster: Cluster, action: str, **request: Any) -> tuple[int, str, str]:
        """Start (``sbatch``) or stop (``scancel``) a job of ``cluster`` as its account, through
        its site's transport (:mod:`.remote`): the launcher here or on the login node, or, on a
        site without a shell, the command alone (the job stages itself)."""
        site, account = self.site_of(cluster), self.account_of(cluster)
        if site.transport == "local":
            return await self.do_as_user(account, action, **request)
        transport = transport_for(site, timeout=self.command_timeout)
        if not stages_itself(site):
            launcher = self.site_launchers.get(site.name) or self.launcher_command
            result = await transport.run(
                launcher, user=account, stdin=launcher_request(action, request)
            )
            return launcher_answer(result)
        result = await transport.run(
            request["cmd"], user=account, env=request["env"], stdin=request.get("stdin")
        )
        return result.returncode, result.stdout, result.stderr

    def site_of(self, cluster: Cluster) -> Site:
        """The cluster's site (the subclass reads the registry)."""
        raise NotImplementedError

    def account_of(self, cluster: Cluster) -> str:
        """The POSIX account that runs the cluster's jobs (the subclass maps it)."""
        raise NotImplementedError
