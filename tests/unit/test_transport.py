"""Transports: argv only, exact environment, sudo or ssh for other users, timeouts."""

import os
import pwd
import shlex

import pytest

from continuum_spawners.schedulers import transport_for
from continuum_spawners.schedulers.ssh import PROLOGUE, SSHTransport
from continuum_spawners.schedulers.transport import LocalTransport, TransportError
from continuum_spawners.sites import SiteRegistry, SSHConnection

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


# -- SSH transport: the ssh argument list, the environment on stdin, ssh's failures ---------------

SSH_SECRET = "tok-3f1a9c secret"


def ssh_site(**connection):
    doc = {
        "sites": [
            {
                "name": "gamma",
                "scheduler": "slurm",
                "connection": connection,
                "partitions": [
                    {"name": "p", "max_cores": 1, "max_memory_gb": 1, "max_walltime": "1:00"}
                ],
            }
        ]
    }
    return SiteRegistry.from_dict(doc, environ={}).get("gamma")


def ssh_transport(**changes):
    fields = {
        "host": "login.gamma.example.org",
        "port": 2222,
        "identity_file": "/etc/hub/id_ed25519",
        "known_hosts": "/etc/hub/known_hosts",
        "service_user": None,
    }
    return SSHTransport(
        SSHConnection(**{**fields, **changes}), {"SLURM_CONF": "/etc/slurm/g.conf"}, timeout=20
    )


def test_ssh_argv_is_fixed_options_then_the_joined_command():
    argv = ssh_transport().command(["sbatch", "--job-name=a b", "--export=TOKEN_X"], "alice")

    assert argv[:-1] == [
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
        "UserKnownHostsFile=/etc/hub/known_hosts",
        "-o",
        "GlobalKnownHostsFile=none",
        "-o",
        "ConnectTimeout=10",
        "-i",
        "/etc/hub/id_ed25519",
        "-p",
        "2222",
        "-l",
        "alice",
        "login.gamma.example.org",
        "--",
    ]
    # the login shell splits the remote command back into exactly these words
    assert shlex.split(argv[-1]) == [
        "/bin/sh",
        "-c",
        PROLOGUE,
        "continuum-ssh",
        "timeout",
        "--kill-after=5",
        "20",
        "sbatch",
        "--job-name=a b",
        "--export=TOKEN_X",
    ]


def test_ssh_secrets_go_on_stdin_not_the_command_line():
    transport = ssh_transport()
    argv = transport.command(["sbatch"], "alice")
    data = transport.stdin_bytes({"TOKEN_X": SSH_SECRET}, "#!/bin/bash\n")

    assert not [word for word in argv if "tok-3f1a9c" in word or "SLURM_CONF" in word]
    assert data == (
        b"SLURM_CONF=/etc/slurm/g.conf\nTOKEN_X=tok-3f1a9c\\0040secret\n\n#!/bin/bash\n"
    )


@pytest.mark.parametrize(
    ("user", "service_user", "login"),
    [("alice", "svc", "alice"), (None, "svc", "svc"), (None, None, ME)],
    ids=["user", "service-account", "hub-account"],
)
def test_ssh_login_account(user, service_user, login):
    assert ssh_transport(service_user=service_user).login(user) == login


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BAD NAME": "x"}, "cannot be an environment variable name"),
        ({"-o": "x"}, "cannot be an environment variable name"),
        ({"X": "nul\0byte"}, "NUL byte"),
    ],
    ids=["blank", "option", "nul"],
)
def test_ssh_env_that_cannot_travel_is_refused(env, message):
    with pytest.raises(TransportError, match=message):
        ssh_transport().stdin_bytes(env, None)


def test_ssh_user_that_is_no_account_name_is_refused():
    with pytest.raises(TransportError, match="not an account name"):
        ssh_transport().command(["squeue"], "-oProxyCommand=x")


async def test_ssh_remote_command_restores_env_and_stdin_in_a_posix_shell():
    # what the login node runs, run here: the login shell gets the remote command as one string
    transport = ssh_transport()
    awkward = "a b 'c' \"d\" $HOME `id` \\c %s\nline é\n\n"
    remote = transport.command(
        ["sh", "-c", 'printf "%s|%s|" "$SLURM_CONF" "$AWKWARD"; cat; exit 255'], "alice"
    )[-1]
    data = transport.stdin_bytes({"AWKWARD": awkward}, "the job script\n")

    result = await LocalTransport().run(["bash", "-c", remote], stdin=data.decode())

    assert result.stdout == f"/etc/slurm/g.conf|{awkward}|the job script\n"
    # 255 is kept for ssh's own failures
    assert result.returncode == 254
    cut = await LocalTransport().run(["bash", "-c", remote], stdin="X=1\n")
    assert (cut.returncode, cut.stderr) == (255, "continuum-ssh: environment header cut short\n")


@pytest.mark.parametrize(
    ("stderr", "message"),
    [
        (
            "@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
            "Host key verification failed.\n",
            "does not match /etc/hub/known_hosts",
        ),
        (
            "No ED25519 host key is known for [login]:2222 and you have requested strict "
            "checking.\nHost key verification failed.\n",
            "is not in /etc/hub/known_hosts",
        ),
        ("alice@login: Permission denied (publickey).\n", "refused the hub's key for alice"),
        (
            "Warning: Identity file /etc/hub/id_ed25519 not accessible: No such file\n",
            "cannot use the hub's key /etc/hub/id_ed25519",
        ),
        (
            "ssh: Could not resolve hostname login: Name or service not known\n",
            "cannot resolve the login node's name",
        ),
        ("ssh: connect to host login port 2222: Connection refused\n", "cannot reach"),
        ("ssh: connect to host login port 2222: Connection timed out\n", "cannot reach"),
        ("continuum-ssh: environment header cut short\n", "did not take the environment"),
        ("something new\n", "failed: something new"),
    ],
    ids=["changed", "unknown", "auth", "key-file", "dns", "refused", "timeout", "shell", "other"],
)
def test_ssh_failures_are_explained(stderr, message):
    text = ssh_transport().explain(stderr, "alice")
    assert text.startswith("ssh to login.gamma.example.org:2222 as alice")
    assert message in text


def test_transport_for_follows_the_registry():
    local = transport_for(ssh_site(env={"SLURM_CONF": "/x"}), timeout=5)
    remote = transport_for(
        ssh_site(
            transport="ssh",
            host="login.example.org",
            identity_file="/k",
            known_hosts="/h",
            env={"SLURM_CONF": "/x"},
        ),
        timeout=5,
    )

    assert isinstance(local, LocalTransport)
    assert isinstance(remote, SSHTransport)
    assert (remote.connection.port, remote.site_env, remote.timeout) == (
        22,
        {"SLURM_CONF": "/x"},
        5,
    )


def test_ssh_login_account_runs_the_users_commands_through_sudo():
    transport = ssh_transport(login_user="sitelogin", service_user="bob")
    argv = transport.command(["sbatch", "--parsable"], "alice", {"TOKEN_X", "SLURM_CONF"})
    assert argv[argv.index("-l") + 1] == "sitelogin"
    # the header's names (never values) kept through sudo, as the local transport does
    assert shlex.split(argv[-1])[7:] == [
        *("sudo", "-n", "-u", "alice", "--preserve-env=SLURM_CONF,TOKEN_X", "--"),
        *("sbatch", "--parsable"),
    ]
    # status and the probe run as the login account itself
    for user in (None, "sitelogin"):
        status = transport.command(["squeue"], user)
        assert status[status.index("-l") + 1] == "sitelogin"
        assert "sudo" not in shlex.split(status[-1])
    with pytest.raises(TransportError, match="not a POSIX account name"):
        transport.command(["squeue"], "-oProxyCommand=x")
