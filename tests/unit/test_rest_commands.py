"""The slurmrestd transport's translation: the adapter's commands as requests, and slurmrestd's
JSON (as Slurm 22.05's ``v0.0.38`` writes it) read back as the commands' output, which the
unchanged :class:`SlurmAdapter` parsers then read; the token file's rules; the registry keys."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from continuum_spawners.schedulers import transport_for
from continuum_spawners.schedulers.base import JobSpec, JobState
from continuum_spawners.schedulers.rest_commands import (
    errors_text,
    job_properties,
    name_lines,
    named_jobs,
    partitions,
    ping_lines,
    read_command,
    squeue_lines,
)
from continuum_spawners.schedulers.slurm import SlurmAdapter
from continuum_spawners.schedulers.slurmrest import SlurmRestTransport, read_token
from continuum_spawners.schedulers.transport import SAFE_PATH, TransportError
from continuum_spawners.sites import RegistryError, RestConnection, SiteRegistry

ADAPTER = SlurmAdapter()
SPEC = JobSpec(
    name="continuum-alice",
    partition="gpu",
    cores=2,
    memory_gb=4,
    walltime_minutes=60,
    workdir="/home/alice",
    output="/home/alice/out-%j.log",
    gpus=1,
    gpu_type="demo",
    env_names=("JUPYTERHUB_API_TOKEN", "USER"),
    dependency=("12",),
    reservation="ws-1",
)


def job(job_id: int, state: str, **fields: object) -> dict[str, object]:
    """One record of ``GET /jobs`` with the fields the translation reads (as 22.05 writes)."""
    return {
        "job_id": job_id,
        "array_job_id": 0,
        "array_task_id": None,
        "array_task_string": "",
        "job_state": state,
        "state_reason": "None",
        "nodes": "",
        "start_time": 0,
        "name": "continuum-alice",
        "user_name": "alice",
        **fields,
    }


def test_submission_carries_every_option_and_only_the_exported_environment():
    command = read_command(ADAPTER.submit_argv(SPEC))
    env = {"JUPYTERHUB_API_TOKEN": "secret", "USER": "alice", "NOT_EXPORTED": "x"}
    assert command.kind == "submit"
    assert job_properties(command.options, env) == {
        "name": "continuum-alice",
        "partition": "gpu",
        "time_limit": 60,
        "nodes": [1, 1],
        "tasks": 1,
        "cpus_per_task": 2,
        "memory_per_node": 4096,
        "current_working_directory": "/home/alice",
        "standard_output": "/home/alice/out-%j.log",
        "dependency": "afterok:12",
        "kill_on_invalid_dependency": True,
        "gres": "gpu:demo:1",
        "reservation": "ws-1",
        "environment": {"PATH": SAFE_PATH, "JUPYTERHUB_API_TOKEN": "secret", "USER": "alice"},
    }


def test_export_none_sends_only_the_fixed_path_and_a_missing_value_is_refused():
    plain = JobSpec("n", "p", 1, 1, 5, "/tmp", "/tmp/o")
    options = read_command(ADAPTER.submit_argv(plain)).options
    assert job_properties(options, {"SECRET": "s"})["environment"] == {"PATH": SAFE_PATH}
    named = read_command(
        ADAPTER.submit_argv(JobSpec("n", "p", 1, 1, 5, "/", "/o", env_names=("A",)))
    )
    with pytest.raises(TransportError, match="exported variable A has no value"):
        job_properties(named.options, {})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (ADAPTER.estimate_argv(SPEC), "no start estimates"),
        (["sacct", "-X"], "sacct -X cannot run over slurmrestd"),
        (["scontrol", "create", "reservation"], "scontrol create cannot run"),
        (["sbatch", "--parsable", "--wrap=rm -rf /"], "--wrap has no slurmrestd equivalent"),
        (["squeue", "--jobs=1;2"], "not a job id"),
        (["scancel", "-1"], "not a job id"),
        (["module", "spider"], "module spider cannot run"),
        ([], "no command"),
    ],
    ids=[
        "estimate",
        "sacct",
        "reservation",
        "unknown-option",
        "bad-ids",
        "bad-cancel",
        "other",
        "empty",
    ],
)
def test_commands_without_a_rest_form_are_refused_by_name(argv, message):
    with pytest.raises(TransportError, match=message):
        read_command(argv)


def test_the_adapters_other_commands_are_recognised():
    assert read_command(ADAPTER.probe_argv()).kind == "ping"
    assert read_command(ADAPTER.cancel_argv(["5", "6"])).job_ids == ("5", "6")
    assert read_command(ADAPTER.cancel_name_argv("dg-abc")).kind == "cancel_name"
    find = read_command(ADAPTER.find_name_argv("dg-abc"))
    assert (find.kind, find.name) == ("find", "dg-abc")
    status = read_command(ADAPTER.status_argv(["7", "8"]))
    assert (status.kind, status.job_ids) == ("status", ("7", "8"))


def test_status_of_many_jobs_reads_as_squeue_through_the_adapters_parser():
    started = int(datetime(2026, 12, 5, 8, 0, 0).timestamp())
    jobs = [
        job(7, "RUNNING", nodes="beta-g1", start_time=started),
        job(8, "PENDING", state_reason="Resources"),
        job(9, "COMPLETED", nodes="beta-g1"),
        job(99, "RUNNING"),  # not asked for
        job(31, "RUNNING", array_job_id=30, array_task_id=1, nodes="beta-g1"),
        job(
            30,
            "PENDING",
            array_job_id=30,
            array_task_string="2-3",
            state_reason="JobArrayTaskLimit",
        ),
    ]
    ids = ["7", "8", "9", "10", "30"]
    text = squeue_lines(jobs, ids)
    assert "99|" not in text
    assert text.splitlines()[0] == "7|RUNNING|None|beta-g1|2026-12-05T08:00:00"
    statuses = ADAPTER.parse_status(0, text, "", ids)
    assert statuses["7"].state is JobState.RUNNING and statuses["7"].node == "beta-g1"
    assert statuses["7"].start_time == "2026-12-05T08:00:00"
    assert (statuses["8"].state, statuses["8"].reason) == (JobState.PENDING, "Resources")
    assert statuses["8"].start_time == ""
    assert statuses["9"].state is JobState.GONE
    assert (statuses["10"].state, statuses["10"].reason) == (JobState.GONE, "not in queue")
    # the array shows its liveliest task; its pending range is expanded task by task
    assert statuses["30"].state is JobState.RUNNING
    assert statuses["30_1"].state is JobState.RUNNING
    assert statuses["30_2"].state is statuses["30_3"].state is JobState.PENDING


def test_a_field_holding_the_separator_cannot_shift_columns():
    text = squeue_lines([job(7, "PENDING", state_reason="a|b")], ["7"])
    assert ADAPTER.parse_status(0, text, "", ["7"])["7"].reason == "a b"


def test_jobs_by_name_are_the_users_own_and_arrays_are_listed_once():
    jobs = [
        job(1, "RUNNING", name="dg-x"),
        job(2, "RUNNING", name="dg-x", user_name="bob"),
        job(4, "PENDING", name="dg-x", array_job_id=3, array_task_string="1-2"),
        job(5, "RUNNING", name="dg-x", array_job_id=3, array_task_id=0),
        job(6, "RUNNING", name="other"),
    ]
    mine = named_jobs(jobs, "alice", "dg-x")
    assert [j["job_id"] for j in mine] == [1, 4, 5]
    assert name_lines(mine) == "1\n3\n"


def test_ping_reads_as_scontrol_ping_for_the_probe():
    up, text = ping_lines([{"hostname": "vm", "ping": "UP", "status": 0, "mode": "primary"}])
    assert (up, text) == (0, "Slurmctld(primary) at vm is UP\n")
    assert ADAPTER.parse_probe(up, text, "")
    down, text = ping_lines([{"hostname": "vm", "ping": "DOWN", "mode": "primary"}])
    assert down == 1 and not ADAPTER.parse_probe(down, text, "")
    assert ping_lines([])[0] == 1


def test_errors_and_partitions_are_read_from_the_answers():
    body = {
        "errors": [
            {"description": "Unable to find JobId=9", "error": "Invalid job id specified"},
            {"error": "Access/permission denied"},
        ]
    }
    assert errors_text(body) == "Unable to find JobId=9; Access/permission denied"
    assert errors_text({"errors": []}) == ""
    found = partitions(
        {
            "partitions": [
                {"name": "gpu", "state": "UP", "nodes": "beta-g1", "total_cpus": 4,
                 "max_time_limit": 720, "default_time_limit": 4294967294},
            ]
        }
    )  # fmt: skip
    assert [(p.name, p.state, p.nodes, p.total_cpus) for p in found] == [
        ("gpu", "UP", "beta-g1", 4)
    ]
    assert (found[0].max_time_minutes, found[0].default_time_minutes) == (720, None)


def write(path: Path, text: str, mode: int) -> str:
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def test_token_file_must_be_private_and_its_content_is_never_in_a_message(tmp_path):
    assert read_token(write(tmp_path / "a", "SLURM_JWT=abc.def.ghi\n", 0o600)) == "abc.def.ghi"
    assert read_token(write(tmp_path / "b", "abc.def.ghi", 0o400)) == "abc.def.ghi"
    with pytest.raises(TransportError, match="must be a 0600 regular file") as raised:
        read_token(write(tmp_path / "c", "SLURM_JWT=topsecret", 0o644))
    assert "topsecret" not in str(raised.value)
    with pytest.raises(TransportError, match="holds no token"):
        read_token(write(tmp_path / "d", "SLURM_JWT=\n", 0o600))
    with pytest.raises(TransportError, match="cannot read the slurmrestd token"):
        read_token(str(tmp_path / "missing"))
    os.symlink(tmp_path / "a", tmp_path / "link")
    with pytest.raises(TransportError, match="cannot read"):
        read_token(str(tmp_path / "link"))


async def test_an_unreachable_slurmrestd_is_a_transport_error_naming_it(tmp_path):
    from continuum_federation.process import free_port

    token = write(tmp_path / "t", "SLURM_JWT=abc", 0o600)
    url = f"http://127.0.0.1:{free_port()}"
    transport = SlurmRestTransport(RestConnection(url, token, "root"), timeout=5)
    with pytest.raises(TransportError, match=f"cannot reach slurmrestd at {url}"):
        await transport.run(ADAPTER.probe_argv())


async def test_a_slurmrestd_that_never_answers_is_given_up_after_the_timeout(tmp_path):
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # take the request, answer nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    token = write(tmp_path / "t", "SLURM_JWT=abc", 0o600)
    transport = SlurmRestTransport(RestConnection(f"http://127.0.0.1:{port}", token), timeout=1)
    started = time.monotonic()
    async with server:
        with pytest.raises(TransportError, match=r"cannot reach slurmrestd .*Timeout"):
            await transport.run(ADAPTER.status_argv(["1"]))
    assert time.monotonic() - started < 5


REST = {
    "transport": "slurmrestd",
    "url": "https://rest.gamma.example.org:6820",
    "token_file": "/etc/t",
}


def registry(connection: dict[str, object]) -> SiteRegistry:
    entry = {
        "name": "gamma",
        "scheduler": "slurm",
        "connection": connection,
        "partitions": [
            {"name": "p", "default": True, "max_cores": 1, "max_memory_gb": 1,
             "max_walltime": "01:00:00"}
        ],
    }  # fmt: skip
    return SiteRegistry.from_dict({"sites": [entry]}, environ={})


def test_registry_keys_of_the_slurmrestd_transport():
    site = registry({**REST, "service_user": "slurm"}).get("gamma")
    assert (site.transport, site.ssh) == ("slurmrestd", None)
    assert site.rest == RestConnection("https://rest.gamma.example.org:6820", "/etc/t", "slurm")
    assert isinstance(transport_for(site), SlurmRestTransport)


def test_registry_key_of_the_ssh_login_account():
    ssh = {"transport": "ssh", "host": "login", "identity_file": "/k", "known_hosts": "/h"}
    site = registry({**ssh, "login_user": "sitelogin"}).get("gamma")
    assert (site.ssh.login_user, site.ssh.service_user, site.rest) == ("sitelogin", None, None)
    with pytest.raises(RegistryError, match="connection/login_user"):
        registry({**ssh, "login_user": "Site Login"})


@pytest.mark.parametrize(
    ("connection", "message"),
    [
        ({**REST, "url": "ftp://x"}, "at sites/0/connection/url"),
        ({**REST, "url": "http://x/api?q=1"}, "at sites/0/connection/url"),
        ({**REST, "token_file": "token"}, "at sites/0/connection/token_file"),
        ({"transport": "slurmrestd", "url": "http://x"}, "'token_file' is a required property"),
        ({**REST, "host": "login"}, "host needs transport: ssh"),
        ({"transport": "local", "url": "http://x"}, "url needs transport: slurmrestd"),
        ({"service_user": "slurm"}, "service_user needs transport: ssh or slurmrestd"),
        ({**REST, "login_user": "hub"}, "login_user needs transport: ssh"),
    ],
    ids=[
        "scheme",
        "path",
        "relative-token",
        "no-token",
        "ssh-field",
        "stray-url",
        "stray-user",
        "stray-login",
    ],
)
def test_registry_refuses_a_wrong_slurmrestd_connection(connection, message):
    with pytest.raises(RegistryError, match=message):
        registry(connection)
