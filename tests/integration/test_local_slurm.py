"""The local Slurm sites: real jobs as real users on two independent clusters.

Drives the ``slurm_sites`` fixture (``alpha`` and ``beta``, see ``images/slurm/clusters.yaml``)
with ``sudo -n -u USER sbatch``, as the hub's spawner will.  Every wait is a bounded poll.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from continuum_federation.munge import MungeDaemon
from continuum_federation.process import log_tail
from continuum_federation.slurm import LocalSlurmCluster, local_host_address
from continuum_federation.slurm_spec import ClusterSpecError, parse_cluster_spec
from fixtures.slurm import job_state, run_as, sbatch_as, wait_until

pytestmark = pytest.mark.integration

#: Generous bounds: the suite must pass on a slow, busy 2-core machine.
JOB_START_TIMEOUT = 60.0
JOB_END_TIMEOUT = 60.0


class Jobs:
    """Jobs submitted by one test; whatever is left is cancelled afterwards."""

    def __init__(self) -> None:
        self.submitted: list[tuple[LocalSlurmCluster, str]] = []

    def submit(self, user: str, site: LocalSlurmCluster, script: str, *options: str) -> str:
        job_id = sbatch_as(user, site, script, options)
        self.submitted.append((site, job_id))
        return job_id

    def wait_running(self, site: LocalSlurmCluster, job_id: str) -> float:
        """Wait until the job runs; return the seconds it took from this call."""
        start = time.monotonic()

        def running() -> bool:
            state = job_state(site, job_id)
            assert state in ("PENDING", "CONFIGURING", "RUNNING"), (
                f"job {job_id} on {site.name} is {state or 'gone'}; slurmctld log:\n"
                f"{log_tail(site.log_dir / 'slurmctld.log')}"
            )
            return state == "RUNNING"

        wait_until(running, JOB_START_TIMEOUT, interval=0.02, what=f"job {job_id} running")
        return time.monotonic() - start


@pytest.fixture
def jobs(slurm_sites: dict[str, LocalSlurmCluster]) -> Iterator[Jobs]:
    tracker = Jobs()
    yield tracker
    for site, job_id in tracker.submitted:
        subprocess.run(["scancel", job_id], env=site.client_env(), capture_output=True, check=False)


@pytest.fixture
def token(unix_users: list[str]) -> Iterator[str]:
    """A unique file stem for files jobs write in the test users' homes (removed afterwards)."""
    stem = f"continuum-test-{uuid.uuid4().hex[:12]}"
    yield stem
    for user in unix_users:
        for path in Path(os.path.expanduser(f"~{user}")).glob(f"{stem}*"):
            path.unlink(missing_ok=True)


def wait_for_file(path: Path, job_log: Path) -> str:
    def content() -> str | None:
        return path.read_text() if path.exists() else None

    try:
        return wait_until(content, JOB_END_TIMEOUT, what=f"{path} written by the job")
    except AssertionError as err:
        log = job_log.read_text() if job_log.exists() else "(no job output)"
        raise AssertionError(f"{err}; job output:\n{log}") from None


def home(user: str) -> Path:
    return Path(os.path.expanduser(f"~{user}"))


# -- the sites run jobs --------------------------------------------------------------------------


@pytest.mark.parametrize("site_name", ["alpha", "beta"])
def test_job_runs_on_its_cluster_as_the_user(
    slurm_sites: dict[str, LocalSlurmCluster],
    unix_users: list[str],
    jobs: Jobs,
    token: str,
    site_name: str,
) -> None:
    site = slurm_sites[site_name]
    result = home("alice") / f"{token}.txt"
    job_log = home("alice") / f"{token}.log"
    # written under a temporary name, then renamed, so the test never reads half a file
    script = (
        "#!/bin/bash\n"
        "set -e\n"
        f'printf "%s\\n%s\\n" "$(id -un)" "$SLURM_CLUSTER_NAME" > "{result}.part"\n'
        f'mv "{result}.part" "{result}"\n'
    )
    jobs.submit("alice", site, script, f"--output={job_log}", "--job-name=whoami")

    lines = wait_for_file(result, job_log).splitlines()

    assert lines == ["alice", site_name]
    assert result.stat().st_uid == home("alice").stat().st_uid


def test_idle_cluster_starts_a_job_within_a_second_or_two(
    slurm_sites: dict[str, LocalSlurmCluster],
    unix_users: list[str],
    jobs: Jobs,
    record_property: pytest.RecordProperty,
) -> None:
    site = slurm_sites["alpha"]
    # Let jobs of earlier tests leave the node, so this measures an idle cluster
    wait_until(lambda: not site.job_ids(), JOB_END_TIMEOUT, what="alpha idle")
    start = time.monotonic()
    job_id = jobs.submit("bob", site, "#!/bin/bash\nsleep 60\n", "--output=/dev/null")
    jobs.wait_running(site, job_id)
    latency = time.monotonic() - start

    record_property("sbatch_to_running_s", round(latency, 3))
    print(f"sbatch -> RUNNING on idle alpha: {latency:.3f} s")
    # slurmctld schedules from a 1 s loop; the margin is for a loaded machine
    assert latency < 10.0


def test_user_scancel_removes_running_job(
    slurm_sites: dict[str, LocalSlurmCluster], unix_users: list[str], jobs: Jobs
) -> None:
    site = slurm_sites["alpha"]
    job_id = jobs.submit("bob", site, "#!/bin/bash\nsleep 300\n", "--output=/dev/null")
    jobs.wait_running(site, job_id)

    result = run_as("bob", ["scancel", job_id], env=site.env())

    assert result.returncode == 0, result.stderr
    wait_until(
        lambda: job_state(site, job_id) == "", JOB_END_TIMEOUT, what=f"job {job_id} left squeue"
    )
    marker = f"SLURM_JOB_ID={job_id}".encode()
    wait_until(
        lambda: not [pid for pid in site.leftover_pids() if marker in _environ(pid)],
        JOB_END_TIMEOUT,
        what=f"processes of job {job_id} gone",
    )


def test_another_user_cannot_cancel_the_job(
    slurm_sites: dict[str, LocalSlurmCluster], unix_users: list[str], jobs: Jobs
) -> None:
    site = slurm_sites["alpha"]
    job_id = jobs.submit("bob", site, "#!/bin/bash\nsleep 300\n", "--output=/dev/null")
    jobs.wait_running(site, job_id)

    result = run_as("dave", ["scancel", job_id], env=site.env())

    assert result.returncode != 0
    assert "Access/permission denied" in result.stderr
    assert job_state(site, job_id) == "RUNNING"


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


def test_gpu_job_gets_its_gres(
    slurm_sites: dict[str, LocalSlurmCluster], unix_users: list[str], jobs: Jobs, token: str
) -> None:
    site = slurm_sites["beta"]
    result = home("carol") / f"{token}.env"
    job_log = home("carol") / f"{token}.log"
    script = (
        "#!/bin/bash\n"
        "set -e\n"
        f'{{ echo "SLURM_JOB_GPUS=${{SLURM_JOB_GPUS-unset}}"\n'
        '  echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}"\n'
        '  echo "SLURM_GPUS_ON_NODE=${SLURM_GPUS_ON_NODE-unset}"\n'
        f'}} > "{result}.part"\n'
        f'mv "{result}.part" "{result}"\n'
        "sleep 300\n"
    )
    job_id = jobs.submit("carol", site, script, f"--output={job_log}", "--gres=gpu:1")
    jobs.wait_running(site, job_id)

    env = dict(line.split("=", 1) for line in wait_for_file(result, job_log).splitlines())
    detail = subprocess.run(
        ["scontrol", "--details", "show", "job", job_id],
        env=site.client_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert re.search(r"\bGRES=gpu:demo:1\(IDX:[01]\)", detail), detail
    # the fake device files make Slurm 22.05 export the device index like on a real GPU node
    assert env["CUDA_VISIBLE_DEVICES"] in ("0", "1")
    assert env["SLURM_JOB_GPUS"] == env["CUDA_VISIBLE_DEVICES"]
    assert env["SLURM_GPUS_ON_NODE"] == "1"


def test_cluster_without_gpus_rejects_a_gpu_job(
    slurm_sites: dict[str, LocalSlurmCluster], unix_users: list[str]
) -> None:
    site = slurm_sites["alpha"]
    result = run_as(
        "alice",
        ["sbatch", "--parsable", "--gres=gpu:1", "--output=/dev/null"],
        env=site.env(),
        input="#!/bin/bash\ntrue\n",
    )

    assert result.returncode != 0
    assert "Invalid generic resource" in result.stderr


# -- the sites are independent and private --------------------------------------------------------


def test_clusters_do_not_see_each_others_jobs(
    slurm_sites: dict[str, LocalSlurmCluster], unix_users: list[str], jobs: Jobs, token: str
) -> None:
    alpha, beta = slurm_sites["alpha"], slurm_sites["beta"]
    job_id = jobs.submit(
        "dave", beta, "#!/bin/bash\nsleep 300\n", "--output=/dev/null", f"--job-name={token}"
    )
    jobs.wait_running(beta, job_id)

    def names(site: LocalSlurmCluster) -> list[str]:
        return subprocess.run(
            ["squeue", "--noheader", "--all", "--format=%j"],
            env=site.client_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()

    assert token in names(beta)
    assert token not in names(alpha)
    assert alpha.ctld_port != beta.ctld_port
    assert not set(alpha.ports) & set(beta.ports)


def test_daemons_listen_on_loopback_only(slurm_sites: dict[str, LocalSlurmCluster]) -> None:
    _, address = local_host_address()
    listening = subprocess.run(
        ["ss", "--listening", "--tcp", "--udp", "--numeric", "--processes", "--no-header"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    ours = {port for site in slurm_sites.values() for port in site.ports}
    seen: set[int] = set()
    for line in listening:
        fields = line.split()
        # Netid State Recv-Q Send-Q Local:Port Peer:Port [Process]
        local = fields[4]
        host, _, port = local.rpartition(":")
        is_slurm = re.search(r'"(slurmctld|slurmd|slurmstepd|munged)"', line) is not None
        if is_slurm or int(port) in ours:
            assert host == address, f"bound beyond loopback: {line}"
            seen.add(int(port))

    assert ours <= seen, f"ports {sorted(ours - seen)} of the sites are not listening"


def test_munge_socket_serves_ordinary_users(munge: MungeDaemon, unix_users: list[str]) -> None:
    cred = run_as("alice", ["munge", "--no-input", f"--socket={munge.socket}"])
    assert cred.returncode == 0, cred.stderr

    decoded = run_as("bob", ["unmunge", f"--socket={munge.socket}"], input=cred.stdout)

    assert decoded.returncode == 0, decoded.stderr
    assert re.search(r"^UID:\s+alice\b", decoded.stdout, re.MULTILINE), decoded.stdout
    assert munge.key_path.stat().st_mode & 0o077 == 0


# -- specs ----------------------------------------------------------------------------------------


def test_demo_specs_describe_alpha_and_beta(slurm_sites: dict[str, LocalSlurmCluster]) -> None:
    alpha, beta = slurm_sites["alpha"], slurm_sites["beta"]

    assert list(alpha.partitions) == ["interactive", "batch"]
    assert alpha.default_partition == "interactive"
    assert alpha.partitions["interactive"].max_time_seconds == 8 * 3600
    assert alpha.partitions["batch"].max_time_seconds == 2 * 24 * 3600
    assert beta.default_partition == "gpu"
    assert beta.nodes["beta-g1"].gpus == 2
    assert alpha.env() == {"SLURM_CONF": str(alpha.conf_path)}
    states = beta.sinfo_states()
    assert set(states) == {"beta-g1"}


GOOD_SPEC = {
    "nodes": [{"name": "n1", "cpus": 2, "memory_mb": 1024}],
    "partitions": [{"name": "p", "default": True, "max_time": "1:00:00"}],
}


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("Bad Name", {}, "cluster name"),
        ("ok", {"nodes": [{"name": "n1", "cpus": "2", "memory_mb": 1024}]}, "cpus"),
        ("ok", {"nodes": [{"name": "n1", "cpus": True, "memory_mb": 1024}]}, "cpus"),
        ("ok", {"nodes": [{"name": "n1;x", "cpus": 2, "memory_mb": 1024}]}, "name"),
        ("ok", {"nodes": [{"name": "n1", "cpus": 2, "memory_mb": 1, "gres": ["gpu"]}]}, "gres"),
        ("ok", {"partitions": [{"name": "p", "default": True, "max_time": 28800}]}, "quoted"),
        ("ok", {"partitions": [{"name": "p", "max_time": "1:00:00"}]}, "default"),
        ("ok", {"partitions": [{"name": "p", "default": True, "max_time": "soon"}]}, "max_time"),
        ("ok", {"extra": 1}, "unknown keys"),
    ],
)
def test_bad_specs_are_rejected(name: str, change: dict, message: str) -> None:
    with pytest.raises(ClusterSpecError, match=message):
        parse_cluster_spec(name, {**GOOD_SPEC, **change})
