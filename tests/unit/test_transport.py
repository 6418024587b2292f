"""The local transport: argv only, exact environment, sudo for other users, timeouts."""

import os
import pwd

import pytest

from continuum_spawners.transport import LocalTransport, TransportError

ME = pwd.getpwuid(os.getuid()).pw_name


def test_command_for_another_user_preserves_only_given_env():
    transport = LocalTransport({"SLURM_CONF": "/etc/x.conf"})
    argv, env = transport.command(["sbatch", "--parsable"], "alice", {"TOKEN_X": "secret"})
    assert argv == [
        "sudo",
        "-n",
        "-u",
        "alice",
        "--preserve-env=SLURM_CONF,TOKEN_X",
        "sbatch",
        "--parsable",
    ]
    assert env == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "SLURM_CONF": "/etc/x.conf",
        "TOKEN_X": "secret",
    }
    assert "secret" not in " ".join(argv)


def test_command_as_self_needs_no_sudo():
    argv, _ = LocalTransport().command(["squeue"], ME, {})
    assert argv == ["squeue"]


async def test_run_passes_env_and_stdin_not_hub_environment(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "must-not-leak")
    result = await LocalTransport({"SITE_X": "1"}).run(
        ["sh", "-c", 'cat; echo "$SITE_X ${JUPYTERHUB_CRYPT_KEY:-unset}"'], stdin="hello "
    )
    assert result.returncode == 0
    assert result.stdout == "hello 1 unset\n"


async def test_run_reports_failure_and_timeout():
    result = await LocalTransport().run(["sh", "-c", "echo oops >&2; exit 3"])
    assert (result.returncode, result.stderr) == (3, "oops\n")
    with pytest.raises(TransportError, match="did not answer within"):
        await LocalTransport(timeout=0.2).run(["sleep", "5"])
    with pytest.raises(TransportError, match="cannot run"):
        await LocalTransport().run(["/nonexistent/sbatch"])
