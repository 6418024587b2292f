"""slurmrestd transport: a site's Slurm through its REST API instead of a shell.

For sites that offer slurmrestd (``auth/jwt``) rather than SSH to a login node.
:class:`SlurmRestTransport` has :class:`~.transport.LocalTransport`'s interface: it takes
the same argument lists from :class:`~.slurm.SlurmAdapter` and answers with the same
:class:`~.transport.CommandResult`, so the spawner, the status monitor (one ``GET /jobs`` per
interval for all the site's jobs), the per-site probe (``GET /ping``) and batch runs work
unchanged.  The translation is :mod:`.rest_commands`.  API ``v0.0.38`` cannot ask for given
job ids: the status query lists the site's jobs and keeps those asked for, still one request
per interval however many servers run there.

Authentication
--------------
Every request carries ``X-SLURM-USER-TOKEN`` (read from the connection's ``token_file``, which
must be a regular file that neither group nor others may read, on every request, so a token
rotated by ``scontrol token`` is picked up) and ``X-SLURM-USER-NAME``: the user a command runs
as, else the ``service_user``.  slurmctld lets only tokens of ``SlurmUser`` or root name another
user; that is the hub's ``sudo -u`` of the local transport.  The token is never logged nor put
in a message; the job's environment (the server's API token) travels in the request body.

Failures: slurmrestd unreachable, a refused token (HTTP 401/403) or a timeout raise
:class:`~.transport.TransportError`; a command the scheduler refused comes back with exit
status 1 and slurmrestd's error text on stderr, as the command would print it.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .rest_commands import (
    API_VERSION,
    PartitionInfo,
    errors_text,
    job_properties,
    name_lines,
    named_jobs,
    partitions,
    ping_lines,
    read_command,
    squeue_lines,
)
from .ssh import POSIX_USER
from .transport import CommandResult, TransportError, current_user

if TYPE_CHECKING:
    from ..site_types import RestConnection

# job states after which a job can no longer be cancelled (scancel --name skips them)
_FINAL = frozenset(
    {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
     "DEADLINE", "OUT_OF_MEMORY"}
)  # fmt: skip


def read_token(path: str) -> str:
    """The JSON Web Token in ``path`` (``SLURM_JWT=…`` or the bare token).

    Raises
    ------
    TransportError
        If the file is missing, not a regular file, readable by group or others, or empty
        (the message names the file, never its content).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise TransportError(f"cannot read the slurmrestd token {path}: {exc.strerror}") from None
    with os.fdopen(fd) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
            raise TransportError(f"the slurmrestd token {path} must be a 0600 regular file")
        text = handle.read().strip()
    token = text.partition("=")[2] if text.startswith("SLURM_JWT=") else text
    if not token or any(c.isspace() for c in token):
        raise TransportError(f"the slurmrestd token {path} holds no token")
    return token


class SlurmRestTransport:
    """Run Slurm commands through a site's slurmrestd.

    Parameters
    ----------
    connection
        slurmrestd's URL, the token file and the account the token is for.
    timeout
        Seconds after which a request (connection included) is given up.
    """

    def __init__(self, connection: RestConnection, timeout: float = 30.0) -> None:
        self.connection = connection
        self.timeout = timeout
        self.base = connection.url.rstrip("/") + f"/slurm/{API_VERSION}"

    def login(self, user: str | None) -> str:
        """The user named to slurmrestd: ``user``, else the service account, else the hub's."""
        name = user or self.connection.service_user or current_user()
        if not POSIX_USER.match(name):
            raise TransportError(f"{name[:40]!r} is not an account name")
        return name

    async def request(
        self, method: str, path: str, user: str, body: Mapping[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One request as ``user``; the HTTP status and the decoded answer.

        Raises
        ------
        TransportError
            If slurmrestd cannot be reached, does not answer in time, refuses the token, or
            answers with something that is not JSON.
        """
        headers = {
            "X-SLURM-USER-NAME": user,
            "X-SLURM-USER-TOKEN": read_token(self.connection.token_file),
            "Accept": "application/json",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            self.base + path,
            method=method,
            headers=headers,
            body=None if body is None else json.dumps(body),
            connect_timeout=self.timeout,
            request_timeout=self.timeout,
            follow_redirects=False,
        )
        where = f"slurmrestd at {self.connection.url}"
        try:
            # raise_error=False keeps HTTP statuses as answers; no answer at all still raises
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:  # refused, reset, timed out (599)
            raise TransportError(f"cannot reach {where}: {exc}") from None
        if response.code in (401, 403):
            raise TransportError(f"{where} refused the hub's token for {user} ({response.code})")
        try:
            answer = json.loads(response.body or b"{}")
        except ValueError:
            raise TransportError(f"{where} answered {response.code} without JSON") from None
        if not isinstance(answer, dict):
            raise TransportError(f"{where} answered {response.code} with no object")
        return response.code, answer

    async def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        """Serve ``argv`` (as ``user``) through slurmrestd, answering as the command would.

        Raises
        ------
        TransportError
            For a command slurmrestd cannot serve, or when it cannot be reached (see
            :meth:`request`).
        """
        command = read_command(argv)
        login = self.login(user)
        if command.kind == "ping":
            _, body = await self.request("GET", "/ping", login)
            code, text = ping_lines(body.get("pings") or [])
            return CommandResult(code, text, "" if code == 0 else errors_text(body))
        if command.kind == "submit":
            job = job_properties(command.options, env or {})
            status, body = await self.request(
                "POST", "/job/submit", login, {"script": stdin or "", "job": job}
            )
            job_id = body.get("job_id")
            if status != 200 or not isinstance(job_id, int):
                return _refused(body, "sbatch")
            return CommandResult(0, f"{job_id}\n", "")
        if command.kind in ("status", "find", "cancel_name"):
            status, body = await self.request("GET", "/jobs", login)
            if status != 200:
                return _refused(body, argv[0])
            jobs = body.get("jobs") or []
            if command.kind == "status":
                return CommandResult(0, squeue_lines(jobs, command.job_ids), "")
            mine = named_jobs(jobs, login, command.name)
            if command.kind == "find":
                return CommandResult(0, name_lines(mine), "")
            live = [str(j["job_id"]) for j in mine if j.get("job_state") not in _FINAL]
            return await self._cancel(live, login)
        return await self._cancel(list(command.job_ids), login)

    async def _cancel(self, job_ids: list[str], user: str) -> CommandResult:
        """Cancel each of ``job_ids`` as ``user``; status 1 with the errors if any failed."""
        errors = []
        for job_id in job_ids:
            status, body = await self.request("DELETE", f"/job/{quote(job_id)}", user)
            if status != 200:
                errors.append(f"scancel: error: {job_id}: {errors_text(body) or status}")
        return CommandResult(1 if errors else 0, "", "\n".join(errors))

    async def partitions(self) -> list[PartitionInfo]:
        """The site's partitions, as ``sinfo`` summarises them (as the service account)."""
        status, body = await self.request("GET", "/partitions", self.login(None))
        if status != 200:
            raise TransportError(f"slurmrestd listed no partitions: {errors_text(body)}")
        return partitions(body)


def _refused(body: Mapping[str, Any], command: str) -> CommandResult:
    """A refused request as the command's failure (exit status 1, the scheduler's words)."""
    return CommandResult(1, "", f"{command}: error: {errors_text(body) or 'refused'}")
