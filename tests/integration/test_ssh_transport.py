"""The SSH transport against a real OpenSSH server and the real Slurm site ``alpha``.

The ``sshd`` fixture stands in for alpha's login node: commands go through
:class:`~continuum_spawners.schedulers.ssh.SSHTransport` exactly as the spawner sends them
(argument lists from :class:`~continuum_spawners.schedulers.slurm.SlurmAdapter`), as ``alice``
for her jobs and as the service account ``bob`` for status.  Every wait is a bounded poll.
"""

from __future__ import annotations

import asyncio
import hashlib
import pwd
import secrets
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from continuum_federation.process import free_port
from continuum_federation.slurm import LocalSlurmCluster
from continuum_spawners.schedulers.base import JobSpec, JobState
from continuum_spawners.schedulers.slurm import SlurmAdapter
from continuum_spawners.schedulers.ssh import SSHTransport
from continuum_spawners.schedulers.transport import CommandResult, TransportError
from fixtures.sshd import LocalSSHD, keygen

pytestmark = pytest.mark.integration

#: Generous bounds: the suite must pass on a slow, busy 2-core machine.
TIMEOUT = 60.0
JOB_PATH = "/usr/local/bin:/usr/bin:/bin"
ADAPTER = SlurmAdapter()

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], what: str, within: float = TIMEOUT) -> T:
    """Await ``probe`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached within {within:.0f} s")
        await asyncio.sleep(0.2)


class CommandLines:
    """Every process's command line, sampled from /proc (what ``ps -ef`` shows) in a thread."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        raw = (entry / "cmdline").read_bytes()
                    except OSError:
                        continue  # the process ended meanwhile
                    if raw:
                        self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))
            self.samples += 1

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def alpha(slurm_sites: dict[str, LocalSlurmCluster]) -> LocalSlurmCluster:
    return slurm_sites["alpha"]


@pytest.fixture
def transport(sshd: LocalSSHD, alpha: LocalSlurmCluster) -> SSHTransport:
    """alpha's commands through the login node; status as the service account ``bob``."""
    return SSHTransport(sshd.connection(service_user="bob"), alpha.env(), timeout=TIMEOUT)


@pytest.fixture
def jobs(alpha: LocalSlurmCluster) -> Iterator[list[str]]:
    """Ids of the jobs a test submits; whatever is left is cancelled afterwards."""
    ids: list[str] = []
    yield ids
    if ids:
        subprocess.run(["scancel", *ids], env=alpha.client_env(), capture_output=True, check=False)


@pytest.fixture
def home(unix_users: list[str]) -> Path:
    """alice's home folder, where her jobs run."""
    return Path(pwd.getpwnam("alice").pw_dir)


@pytest.fixture
def stem(home: Path) -> Iterator[str]:
    """A unique file stem for files jobs write in alice's home (removed afterwards)."""
    name = f"continuum-ssh-test-{uuid.uuid4().hex[:12]}"
    yield name
    for path in home.glob(f"{name}*"):
        path.unlink(missing_ok=True)


def submit_argv(home: Path, output: str, env_names: list[str]) -> list[str]:
    spec = JobSpec(
        name="ssh-transport-test",
        partition="interactive",
        cores=1,
        memory_gb=1,
        walltime_minutes=10,
        workdir=str(home),
        output=output,
        env_names=env_names,
    )
    return ADAPTER.submit_argv(spec)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- the site's commands work through the login node -----------------------------------------------


async def test_submission_carries_secrets_in_the_environment_only(
    sshd: LocalSSHD, transport: SSHTransport, jobs: list[str], home: Path, stem: str
) -> None:
    result_file = home / f"{stem}.sha256"
    secret = secrets.token_hex(32)
    awkward = "two words, 'single' \"double\" $HOME `id` \\c %s\nnext line é\n\n"
    env = {"JUPYTERHUB_API_TOKEN": secret, "CONTINUUM_TEST_AWKWARD": awkward, "PATH": JOB_PATH}
    # the job hashes what it got, so the secret itself is never written anywhere
    script = (
        "#!/bin/bash\n"
        "set -euo pipefail\n"
        '{ printf %s "$JUPYTERHUB_API_TOKEN" | sha256sum\n'
        '  printf %s "$CONTINUUM_TEST_AWKWARD" | sha256sum\n'
        '  printf "%s\\n" "$SLURM_CLUSTER_NAME"\n'
        f'}} > "{result_file}.part"\n'
        f'mv "{result_file}.part" "{result_file}"\n'
    )
    argv = submit_argv(home, str(home / f"{stem}.log"), sorted(env))

    with CommandLines() as processes:
        result = await transport.run(argv, user="alice", env=env, stdin=script)

    assert result.returncode == 0, result.stderr
    jobs.append(ADAPTER.parse_submit(result.stdout))

    async def written() -> list[str] | None:
        return result_file.read_text().splitlines() if result_file.exists() else None

    lines = await eventually(written, f"{result_file} written by the job")
    assert [line.split()[0] for line in lines[:2]] == [sha256(secret), sha256(awkward)]
    # the site's SLURM_CONF reached sbatch on the login node: the job ran on alpha
    assert lines[2] == "alpha"
    # the sampler saw the submission's ssh client, and no command line held the secret
    assert processes.samples > 1
    assert any(f"-p {sshd.port}" in line and "-l alice" in line for line in processes.seen)
    assert not [line for line in processes.seen if secret in line]
    log = sshd.log()
    assert "Accepted publickey for alice" in log
    assert secret not in log


async def test_status_of_several_jobs_in_one_call_then_cancel(
    sshd: LocalSSHD, transport: SSHTransport, jobs: list[str], home: Path
) -> None:
    for _ in range(3):
        result = await transport.run(
            submit_argv(home, "/dev/null", ["PATH"]),
            user="alice",
            env={"PATH": JOB_PATH},
            stdin="#!/bin/bash\nsleep 300\n",
        )
        assert result.returncode == 0, result.stderr
        jobs.append(ADAPTER.parse_submit(result.stdout))
    logins = sshd.log().count("Accepted publickey for bob")

    result = await transport.run(ADAPTER.status_argv(jobs))  # user=None: the service account

    statuses = ADAPTER.parse_status(result.returncode, result.stdout, result.stderr, jobs)
    assert {s.state for s in statuses.values()} <= {JobState.PENDING, JobState.RUNNING}, statuses
    assert sshd.log().count("Accepted publickey for bob") == logins + 1

    cancelled = await transport.run(ADAPTER.cancel_argv(jobs), user="alice")
    assert cancelled.returncode == 0, cancelled.stderr

    async def all_gone() -> bool:
        result = await transport.run(ADAPTER.status_argv(jobs))
        found = ADAPTER.parse_status(result.returncode, result.stdout, result.stderr, jobs)
        return all(s.state is JobState.GONE for s in found.values())

    await eventually(all_gone, "cancelled jobs gone from squeue")


async def test_remote_failures_come_back_as_results(
    transport: SSHTransport, alpha: LocalSlurmCluster
) -> None:
    refused = await transport.run(
        ["sbatch", "--parsable", "--partition=no-such-partition", "--output=/dev/null"],
        user="alice",
        stdin="#!/bin/bash\ntrue\n",
    )
    plain = await transport.run(["sh", "-c", "echo out; echo err >&2; exit 3"], user="alice")
    # 255 is ssh's own status: the remote command's 255 comes back as 254
    worst = await transport.run(["sh", "-c", "exit 255"], user="alice")

    assert refused.returncode != 0
    assert "invalid partition" in refused.stderr.lower()
    assert plain == CommandResult(3, "out\n", "err\n")
    assert worst.returncode == 254


# -- the connection's failures are clear ---------------------------------------------------------


async def test_host_key_mismatch_is_refused(sshd: LocalSSHD, tmp_path: Path) -> None:
    impostor = keygen(tmp_path / "other_host_key", "impostor")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {' '.join(impostor.split()[:2])}\n")
    transport = SSHTransport(sshd.connection(known_hosts=str(known_hosts)), timeout=TIMEOUT)

    with pytest.raises(TransportError, match=r"host key of 127\.0\.0\.1:.* does not match"):
        await transport.run(["true"], user="alice")


async def test_unknown_host_key_is_refused(sshd: LocalSSHD, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    transport = SSHTransport(sshd.connection(known_hosts=str(empty)), timeout=TIMEOUT)

    with pytest.raises(TransportError, match=r"host key of 127\.0\.0\.1:.* is not in"):
        await transport.run(["true"], user="alice")


async def test_wrong_key_is_refused(sshd: LocalSSHD, tmp_path: Path) -> None:
    keygen(tmp_path / "stranger", "stranger")
    transport = SSHTransport(
        sshd.connection(identity_file=str(tmp_path / "stranger")), timeout=TIMEOUT
    )

    with pytest.raises(TransportError, match="refused the hub's key for alice"):
        await transport.run(["true"], user="alice")


async def test_unreachable_login_node(sshd: LocalSSHD) -> None:
    # a port nothing listens on
    transport = SSHTransport(sshd.connection(port=free_port()), timeout=TIMEOUT)

    with pytest.raises(TransportError, match=r"cannot reach the SSH server of 127\.0\.0\.1"):
        await transport.run(["true"], user="alice")


async def test_command_outliving_the_timeout_is_killed_on_both_ends(sshd: LocalSSHD) -> None:
    transport = SSHTransport(sshd.connection(), timeout=3)
    start = time.monotonic()

    with pytest.raises(TransportError, match=r"sleep on 127\.0\.0\.1:.* did not answer within 3 s"):
        await transport.run(["sleep", "47"], user="alice")
    assert time.monotonic() - start < 15

    async def remote_gone() -> bool:
        pgrep = await asyncio.create_subprocess_exec("pgrep", "-u", "alice", "-f", "^sleep 47$")
        return await pgrep.wait() == 1

    await eventually(remote_gone, "the remote sleep ended", within=15)
