"""SSH transport: scheduler commands on a site's login node, as the user, over OpenSSH.

:class:`SSHTransport` has :class:`~.transport.LocalTransport`'s interface.
It runs the system's ``ssh`` client with an argument list::

    ssh -F none -T -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none
        -o StrictHostKeyChecking=yes -o UserKnownHostsFile=KNOWN_HOSTS
        -o GlobalKnownHostsFile=none -o ConnectTimeout=N
        -i KEY -p PORT -l USER HOST -- REMOTE_COMMAND

``-F none`` keeps the hub account's ``~/.ssh/config`` and the system's ``ssh_config`` (which on
Debian sends ``LANG``/``LC_*``) out of the picture, so what runs is exactly what is written here.
The remote command is a string by SSH's nature; it is :func:`shlex.join` of a fixed POSIX ``sh``
prologue (:data:`PROLOGUE`) and the validated argument list, nothing else.

How the environment gets there
------------------------------
Secret values (the server's API token) and the site's environment (``SLURM_CONF``) travel on
**standard input**, ahead of the job script, as ``NAME=VALUE`` lines (values escaped as
``printf %b`` octal, so any byte but NUL survives) ended by an empty line.  The prologue reads
those lines with the shell's ``read`` (which never reads past a newline, so the rest of stdin is
left for the command), exports them, and runs the command, which reads the job script from the
same stdin.  Only shell builtins touch the values: no process has them on its command line, and
nothing logs what a session reads on stdin.  The exports come after the login shell's start-up
files, so they win over whatever those set.

The command runs under coreutils' ``timeout`` with the transport's timeout, so a command that
the hub gave up on (and whose ssh it killed) does not linger on the login node.

SSH's own environment passing (``SendEnv`` + the server's ``AcceptEnv``) was rejected:

* OpenSSH logs the values: ``sshd`` at ``LogLevel DEBUG2`` writes ``Setting env 0: NAME=value``,
  and ``ssh -v`` writes ``setting env NAME = "value"`` — a token in a site's logs whenever someone
  debugs a login problem;
* a site whose ``sshd_config`` lacks a matching ``AcceptEnv`` drops the variables silently, and
  the server would fail much later, in the job, for want of its token;
* it needs a change to every site's ``sshd_config``; stdin needs only ``/bin/sh`` there.

``sbatch --export-file`` was rejected too: it serves ``sbatch`` only, while the site's
environment must reach ``squeue`` and ``scancel`` as well.

Whose account runs the command
------------------------------
By default ssh logs in as the user (the hub's key in each user's ``authorized_keys`` there).
A site that gives the hub one login account instead (``login_user``) has ssh log in as that
account, which runs the user's commands through ``sudo -n -u USER --preserve-env=NAMES``,
as :class:`~.transport.LocalTransport` does on the hub's machine (the same sudoers rule, on the
login node); commands that need no user (status, the probe) run as the login account.

Exit status 255 is ssh's own (unreachable host, host key, authentication): it raises a
:class:`~.transport.TransportError` saying which.  So that a remote command's own failures
always come back as a :class:`~.transport.CommandResult`, the prologue turns a remote exit
status of 255 into 254.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .transport import SAFE_PATH, CommandResult, TransportError, current_user, run_process

if TYPE_CHECKING:
    # only the type: the registry's schema imports this package (for the scheduler kinds)
    from ..sites import SSHConnection

#: The remote side: export the ``NAME=VALUE`` lines of stdin up to an empty line, then run
#: ``"$@"`` (the command) with the rest of stdin.  One line, so any login shell passes it on.
PROLOGUE = (
    "while :; do "
    'IFS= read -r l || { echo "continuum-ssh: environment header cut short" >&2; exit 255; }; '
    '[ -n "$l" ] || break; '
    'v=$(printf "%b." "${l#*=}"); '
    'export "${l%%=*}=${v%.}"; '
    "done; "
    '"$@"; s=$?; [ "$s" -ne 255 ] || s=254; exit "$s"'
)
#: ``$0`` of the prologue: names it in the login node's process list.
PROLOGUE_NAME = "continuum-ssh"

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
POSIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# bytes sent as they are; everything else as \0ooo, which `printf %b` turns back into the byte
_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.,:/@+=")

# what ssh prints before exiting 255, most specific first
_FAILURES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), message)
    for pattern, message in (
        (
            r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed",
            "the host key of {target} does not match {known_hosts} (a re-installed login node, "
            "or someone in between): check the key with the site and update the file",
        ),
        (
            r"No \S+ host key is known|Host key verification failed",
            "the host key of {target} is not in {known_hosts}: add it (ssh-keyscan, checked "
            "with the site)",
        ),
        (
            r"Permission denied|Too many authentication failures",
            "the login node {target} refused the hub's key for {user}: is the public key of "
            "{identity_file} in ~{user}/.ssh/authorized_keys there?",
        ),
        (
            r"Identity file .* not accessible|Load key .*:",
            "cannot use the hub's key {identity_file}",
        ),
        (r"Could not resolve hostname", "cannot resolve the login node's name {host}"),
        (
            r"Connection refused|Connection timed out|No route to host|Network is unreachable"
            r"|Connection (?:closed|reset)|kex_exchange_identification",
            "cannot reach the SSH server of {target}",
        ),
        (r"^continuum-ssh:", "the login shell on {target} did not take the environment"),
    )
)


def encode_env(env: Mapping[str, str]) -> bytes:
    """The environment header the :data:`PROLOGUE` reads: ``NAME=VALUE`` lines, then a blank.

    Raises
    ------
    TransportError
        For a name that is not a shell variable name or a value holding a NUL byte (neither can
        be an environment variable).
    """
    lines = []
    for name, value in env.items():
        if not ENV_NAME.match(name):
            raise TransportError(f"{name!r} cannot be an environment variable name")
        if "\0" in value:
            raise TransportError(f"the value of {name} holds a NUL byte")
        encoded = "".join(chr(b) if b in _PLAIN else f"\\0{b:03o}" for b in value.encode())
        lines.append(f"{name}={encoded}\n")
    return ("".join(lines) + "\n").encode()


class SSHTransport:
    """Run commands on a site's login node over SSH, as the user.

    Parameters
    ----------
    connection
        Host, port, the hub's private key, the ``known_hosts`` file trusted for the host, and
        the account for commands that need no user (status queries).
    site_env
        Environment every command of this site gets on the login node (e.g. ``SLURM_CONF``).
    timeout
        Seconds after which a command (connection included) is killed.
    connect_timeout
        Seconds ssh waits for the TCP connection (at most ``timeout``).
    """

    def __init__(
        self,
        connection: SSHConnection,
        site_env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.connection = connection
        self.site_env = dict(site_env or {})
        self.timeout = timeout
        self.connect_timeout = connect_timeout

    def login(self, user: str | None) -> str:
        """The account to log in as: the login account where the site names one, else ``user``,
        else the service account, else the hub's own."""
        name = self.connection.login_user or user or self.connection.service_user
        name = name or current_user()
        if not POSIX_USER.match(name):
            raise TransportError(f"{name!r} is not an account name ssh may log in as")
        return name

    def as_user(self, user: str | None, env_names: Iterable[str]) -> list[str]:
        """What runs the command as ``user`` on the login node: nothing where ssh logs in as
        the user, else ``sudo -n -u USER`` keeping the header's variables (the local
        transport's rule, on the login node: ``login_user ALL=(users) NOPASSWD:SETENV: …``)."""
        login = self.connection.login_user
        if login is None or user is None or user == login:
            return []
        if not POSIX_USER.match(user):
            raise TransportError(f"{user[:40]!r} is not a POSIX account name")
        names = sorted(env_names)
        keep = ["--preserve-env=" + ",".join(names)] if names else []
        return ["sudo", "-n", "-u", user, *keep, "--"]

    def command(
        self, argv: Sequence[str], user: str | None, env_names: Iterable[str] = ()
    ) -> list[str]:
        """The ``ssh`` argument list that runs ``argv`` as ``user`` on the login node
        (``env_names``: the variables the environment header sets, kept through ``sudo``)."""
        if not argv:
            raise TransportError("no command to run")
        c = self.connection
        connect = max(1, math.ceil(min(self.connect_timeout, self.timeout)))
        # killing the local ssh does not stop a command without a terminal on the login node:
        # coreutils' timeout ends it there too
        limit = ["timeout", "--kill-after=5", str(max(1, math.ceil(self.timeout)))]
        sudo = self.as_user(user, env_names)
        remote = shlex.join(["/bin/sh", "-c", PROLOGUE, PROLOGUE_NAME, *limit, *sudo, *argv])
        return [
            "ssh",
            "-F",
            "none",
            "-T",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={c.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=none",
            "-o",
            f"ConnectTimeout={connect}",
            "-i",
            c.identity_file,
            "-p",
            str(c.port),
            "-l",
            self.login(user),
            c.host,
            "--",
            remote,
        ]

    def stdin_bytes(self, env: Mapping[str, str], stdin: str | None) -> bytes:
        """What ssh sends on standard input: the environment header, then ``stdin``."""
        header = encode_env({**self.site_env, **env})
        return header + (stdin.encode() if stdin is not None else b"")

    async def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        """Run ``argv`` (as ``user``) on the login node; never raises on the command's status.

        Raises
        ------
        TransportError
            If ssh cannot run, the login node cannot be reached or authenticated (with the
            reason), or the command does not finish within :attr:`timeout`.
        """
        ssh_argv = self.command(argv, user, {**self.site_env, **(env or {})})
        data = self.stdin_bytes(env or {}, stdin)
        # ssh gets no secrets in its own environment (they are on stdin) and no agent
        result = await run_process(
            ssh_argv, {"PATH": SAFE_PATH}, data, self.timeout, f"{argv[0]} on {self.target}"
        )
        if result.returncode == 255:
            raise TransportError(self.explain(result.stderr, self.login(user)))
        return result

    @property
    def target(self) -> str:
        """``host:port`` of the login node, for messages."""
        return f"{self.connection.host}:{self.connection.port}"

    def explain(self, stderr: str, user: str) -> str:
        """A message for ssh's exit status 255 from what ssh printed."""
        c = self.connection
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        detail = lines[-1][:300] if lines else "no message"
        for pattern, message in _FAILURES:
            if any(pattern.search(line) for line in lines):
                text = message.format(
                    target=self.target,
                    host=c.host,
                    user=user,
                    known_hosts=c.known_hosts,
                    identity_file=c.identity_file,
                )
                return f"ssh to {self.target} as {user}: {text} ({detail})"
        return f"ssh to {self.target} as {user} failed: {detail}"
