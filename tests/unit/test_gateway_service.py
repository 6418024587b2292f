"""The Dask Gateway's hub side, process configuration, job building and dashboard sessions."""

from __future__ import annotations

import json
import os
import shlex
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_gateway_server.backends.db_base import Cluster, JobStatus
from dask_gateway_server.utils import FrozenAttrDict
from traitlets.config import Config

from continuum_hub.gateway import ACCESS_SCOPE, SERVICE_NAME
from continuum_hub.gateway.app import CONFIG_ENV, load_config
from continuum_hub.gateway.auth import TOKEN_SCOPE
from continuum_hub.gateway.backend import SiteSlurmBackend
from continuum_hub.gateway.dashboard import Signer
from continuum_hub.gateway.jobs import SiteClusterConfig
from continuum_hub.gateway.service import add_gateway_service
from continuum_spawners.schedulers import clear_monitors

pytestmark = pytest.mark.gateway

REGISTRY = """
sites:
  - name: alpha
    scheduler: slurm
    connection: {env: {SLURM_CONF: "${TEST_SLURM_CONF_ALPHA}"}}
    bind_address: 127.0.0.1
    partitions:
      - {name: interactive, default: true, max_cores: 4, max_memory_gb: 8, max_walltime: "08:00:00"}
  - name: beta
    scheduler: slurm
    environments:
      - {name: python, default: true}
      - {name: cupy, launcher: /opt/cupy/bin/continuum-singleuser, modules: [cuda/12, python/3.11]}
    partitions:
      - {name: gpu, max_cores: 4, max_memory_gb: 16, max_gpus: 2, gpu_type: demo,
         max_walltime: "12:00:00"}
"""


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "sites.yaml"
    path.write_text(REGISTRY)
    monkeypatch.setenv("TEST_SLURM_CONF_ALPHA", "/etc/slurm-alpha/slurm.conf")
    return path


def hub_config(registry: Path, **sections: dict[str, Any]) -> Config:
    c = Config()
    c.SiteSpawner.registry_path = str(registry)
    c.JupyterHub.bind_url = "http://127.0.0.1:8000/"
    for name, values in sections.items():
        c[name] = Config(values)
    return c


# -- the hub side ------------------------------------------------------------------------------


def test_the_service_and_everything_servers_need(registry: Path) -> None:
    c = hub_config(registry, GatewayService={"port": 9001, "tcp_port": 9002, "api_port": 9003})
    gateway = add_gateway_service(c)
    assert gateway is not None
    (service,) = c.JupyterHub.services
    assert service["name"] == SERVICE_NAME and service["url"] == "http://127.0.0.1:9001"
    assert service["command"][1:] == ["-m", "continuum_hub.gateway"]
    assert service["oauth_no_confirm"] is True
    # the registry's ${VAR} reaches the gateway; its config carries no secret
    env = service["environment"]
    assert env["TEST_SLURM_CONF_ALPHA"] == "/etc/slurm-alpha/slurm.conf"
    config = json.loads(env[CONFIG_ENV])
    assert config["DaskGateway"]["address"] == "127.0.0.1:9003"
    assert config["Proxy"] == {
        "address": "127.0.0.1:9001",
        "tcp_address": "127.0.0.1:9002",
        "prefix": "/services/dask-gateway",
    }
    assert config["HubTokenAuthenticator"]["jupyterhub_service_name"] == SERVICE_NAME
    assert config["SiteSlurmBackend"]["stop_clusters_on_shutdown"] is False
    assert config["SiteClusterConfig"] == {"idle_timeout": 1800.0, "scheduler_in_worker_job": True}
    assert not {"db_encrypt_keys", "api_token"} & set(config["SiteSlurmBackend"])
    # users and their servers' tokens may use it; servers need no configuration
    assert ACCESS_SCOPE in c.JupyterHub.extra_user_scopes
    assert ACCESS_SCOPE in c.Spawner.server_token_scopes
    (role,) = c.JupyterHub.load_roles
    assert role["name"] == "server" and ACCESS_SCOPE in role["scopes"]
    assert c.Spawner.environment == {
        "DASK_GATEWAY__ADDRESS": "http://127.0.0.1:9001/services/dask-gateway",
        "DASK_GATEWAY__PROXY_ADDRESS": "gateway://127.0.0.1:9002",
        "DASK_GATEWAY__PUBLIC_ADDRESS": "http://127.0.0.1:8000/services/dask-gateway",
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
    }
    assert c.Spawner.post_stop_hook == gateway.stop_user_clusters


def test_what_the_deployment_set_is_kept(registry: Path) -> None:
    def earlier_hook(spawner: Any) -> None:
        pass

    c = hub_config(
        registry,
        Spawner={
            "environment": {"LANG": "C.UTF-8", "DASK_GATEWAY__ADDRESS": "https://mine"},
            "server_token_scopes": ["users:activity!user", "custom:x"],
            "post_stop_hook": earlier_hook,
        },
        GatewayLimits={"groups": {"vo.x": {"max_gpus": 1}}},
        AccountMapper={"default_policy": {"policy": "pattern", "pattern": "{username}"}},
    )
    c.SiteSpawner.account_resolver_class = "continuum_spawners.account_map.AccountMapper"
    c.JupyterHub.load_roles = [{"name": "server", "scopes": ["users:activity!user"]}]
    add_gateway_service(c)
    assert c.Spawner.environment["LANG"] == "C.UTF-8"
    assert c.Spawner.environment["DASK_GATEWAY__ADDRESS"] == "https://mine"
    assert c.Spawner.server_token_scopes == ["users:activity!user", "custom:x", ACCESS_SCOPE]
    assert c.JupyterHub.load_roles[0]["scopes"] == ["users:activity!user", ACCESS_SCOPE]
    assert c.Spawner.post_stop_hook is not earlier_hook  # chained
    config = json.loads(c.JupyterHub.services[0]["environment"][CONFIG_ENV])
    assert config["GatewayLimits"] == {"groups": {"vo.x": {"max_gpus": 1}}}
    assert config["AccountMapper"]["default_policy"]["policy"] == "pattern"
    resolver = config["SiteSlurmBackend"]["account_resolver_class"]
    assert resolver == "continuum_spawners.account_map.AccountMapper"
    # loading the config twice adds nothing twice
    add_gateway_service(c)
    assert len(c.JupyterHub.services) == 1


def test_disabled_adds_nothing(registry: Path) -> None:
    c = hub_config(registry, GatewayService={"enabled": False})
    assert add_gateway_service(c) is None
    assert "services" not in c.JupyterHub and "environment" not in c.Spawner


def test_token_scope_is_the_token_apis() -> None:
    from continuum_hub.identity.token_api import SCOPE

    assert TOKEN_SCOPE == SCOPE


# -- the process -------------------------------------------------------------------------------


def test_secrets_are_private_files_made_once(tmp_path: Path) -> None:
    state = tmp_path / "gateway"
    environ = {CONFIG_ENV: json.dumps({"ContinuumGateway": {"state_dir": str(state)}})}
    first = load_config(environ)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("encrypt_key", "cookie_secret"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600
    again = load_config(environ)
    assert first.SiteSlurmBackend.db_encrypt_keys == again.SiteSlurmBackend.db_encrypt_keys
    assert first.SiteSlurmBackend.db_url == f"sqlite:///{state / 'gateway.sqlite'}"
    with pytest.raises(SystemExit, match="started by the hub"):
        load_config({})


# -- jobs ----------------------------------------------------------------------------------------


def backend(registry: Path, **options: Any) -> SiteSlurmBackend:
    config = Config(
        {
            "SiteSlurmBackend": {
                "registry_path": str(registry),
                "api_url": "http://127.0.0.1:9001/services/dask-gateway/api",
                "python_prefix": "/opt/env",
                **options,
            }
        }
    )
    return SiteSlurmBackend(config=config)


def cluster(site: str, **overrides: Any) -> Cluster:
    config = SiteClusterConfig(site=site, **overrides)
    return Cluster(
        name="0123456789abcdef0123456789abcdef",
        username="root",
        token="the-cluster-token",
        options={},
        config=FrozenAttrDict(config.to_dict()),
        status=JobStatus.CREATED,
        target=JobStatus.RUNNING,
        state={"account": "root"},
        tls_cert=b"cert",
        tls_key=b"key",
    )


async def test_scheduler_job_argv_script_and_environment(registry: Path) -> None:
    gw = backend(registry, token_agent=[])
    argv, env, script = gw.get_submit_cmd_env_stdin(
        cluster(
            "alpha", partition="interactive", walltime_minutes=30, account="hep", idle_timeout=90
        )
    )
    staging = "/root/.dask-gateway/0123456789abcdef0123456789abcdef"
    assert argv[:2] == ["sbatch", "--parsable"]
    assert f"--job-name=dg-{'0123456789abcdef' * 2}" in argv
    assert {"--partition=interactive", "--time=30", "--account=hep", f"--chdir={staging}"} <= set(
        argv
    )
    assert not any(a.startswith("--gres") for a in argv)
    # secrets travel in the environment, named by --export, never on the command line
    assert "the-cluster-token" not in " ".join(argv) + script
    assert env["DASK_GATEWAY_API_TOKEN"] == "the-cluster-token"
    export = next(a for a in argv if a.startswith("--export="))
    assert set(export.removeprefix("--export=").split(",")) == set(env)
    assert env["SLURM_CONF"] == "/etc/slurm-alpha/slurm.conf"
    assert env["PATH"].startswith("/opt/env/bin:")
    command = shlex.split(script.splitlines()[-1].removeprefix("exec "))
    assert command[:2] == ["/opt/env/bin/dask", "scheduler"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    # an idle cluster shuts itself down (the scheduler's gateway preload)
    assert command[command.index("--dg-idle-timeout") + 1] == "90.0"
    assert "BEARER_TOKEN_FILE" not in env


async def test_gpu_worker_job(registry: Path) -> None:
    gw = backend(registry, token_agent=["/opt/env/bin/agent", "--out", "{token_file}"])
    c = cluster(
        "beta", partition="gpu", worker_gpus=1, gpu_type="demo", worker_cores=2,
        worker_memory=3 * 2**30, software_environment="cupy",
    )  # fmt: skip
    c.scheduler_address = "tls://127.0.0.1:4567"

    class Worker:
        name = "w1"

    argv, env, script = gw.get_submit_cmd_env_stdin(c, Worker())
    assert {"--gres=gpu:demo:1", "--cpus-per-task=2", "--mem=3G"} <= set(argv)
    assert env["CONTINUUM_ENVIRONMENT"] == "cupy" and env["CONTINUUM_GPUS"] == "1"
    lines = script.splitlines()
    # the environment's modules, quoted; its own dask; the GPU as a dask resource
    assert "module load cuda/12 python/3.11" in lines
    command = shlex.split(lines[-1].removeprefix("exec "))
    assert command[:3] == ["/opt/cupy/bin/dask", "worker", "tls://127.0.0.1:4567"]
    assert command[-2:] == ["--resources", "GPU=1"]
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - no bind_address
    # the token setup step: the agent fed from the creator's token, when there is one
    staging = "/root/.dask-gateway/0123456789abcdef0123456789abcdef"
    assert env["BEARER_TOKEN_FILE"] == f"{staging}/bearer_token"
    setup = next(line for line in lines if line.startswith("if [ -f "))
    assert f"/opt/env/bin/agent --out {staging}/bearer_token &" in setup


# -- dashboard sessions ----------------------------------------------------------------------


def test_signed_values_resist_tampering_and_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = Signer(os.urandom(32))
    value = signer.sign("alice", 60)
    assert signer.unsign(value) == "alice"
    data, expiry, mac = value.split(".")
    assert signer.unsign(f"{data}.{int(expiry) + 999}.{mac}") is None
    assert (
        signer.unsign(value.replace(data, Signer(b"x" * 32).sign("bob", 60).split(".")[0])) is None
    )
    assert Signer(os.urandom(32)).unsign(value) is None
    assert signer.unsign(None) is None and signer.unsign("a.b") is None
    monkeypatch.setattr(time, "time", lambda: int(expiry) + 1)
    assert signer.unsign(value) is None


# -- status --------------------------------------------------------------------------------------


class FakeTransport:
    """Answers squeue as a site would; records the commands."""

    def __init__(self, running: set[str]) -> None:
        self.running = running
        self.calls: list[list[str]] = []

    async def run(self, argv: list[str], **kwargs: Any) -> Any:
        from continuum_spawners.schedulers.transport import CommandResult

        self.calls.append(list(argv))
        ids = next(a for a in argv if a.startswith("--jobs=")).removeprefix("--jobs=").split(",")
        out = "".join(
            f"{i}|RUNNING|None|n1|2026-01-01T00:00:00\n" for i in ids if i in self.running
        )
        return CommandResult(0, out, "")


@pytest.fixture
def monitors() -> Iterator[None]:
    """The process's shared site monitors: none at the start, the test's forgotten after it."""
    clear_monitors()
    yield
    clear_monitors()


async def test_one_status_query_per_site_for_all_jobs(registry: Path, monitors: None) -> None:
    gw = backend(registry, token_agent=[])
    sites = {name: FakeTransport(running={"11", "12", "21"}) for name in ("alpha", "beta")}
    for name, transport in sites.items():
        gw.monitor(gw.registry.get(name)).transport = transport
    jobs = []
    for site, job_id in (("alpha", "11"), ("alpha", "12"), ("alpha", "13"), ("beta", "21")):
        c = cluster(site)
        c.state = {"account": "root", "job_id": job_id}
        jobs.append(c)
    assert await gw._do_check(jobs) == [True, True, False, True]
    assert [len(t.calls) for t in sites.values()] == [1, 1]
    assert "--jobs=11,12,13" in sites["alpha"].calls[0]
    # the worker check right after reuses the answer
    assert await gw._do_check(jobs[:2]) == [True, True]
    assert len(sites["alpha"].calls) == 1
