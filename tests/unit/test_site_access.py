"""One way to reach a site: ``adapter_for``, ``transport_for`` and the shared ``monitor_for``,
used alike by the spawner and the Dask Gateway; and a spawn that validates its options once,
against a registry that is not looked at on every use.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado import web
from traitlets.config import Config

from continuum_hub.gateway.backend import SiteSlurmBackend
from continuum_spawners import accounts, choices, sites
from continuum_spawners.schedulers import (
    ADAPTERS,
    adapter_for,
    clear_monitors,
    monitor_for,
    transport_for,
)
from continuum_spawners.schedulers.slurm import SlurmAdapter
from continuum_spawners.schedulers.ssh import SSHTransport
from continuum_spawners.schedulers.transport import LocalTransport
from continuum_spawners.sites import Partition, RegistryError, Site, SiteRegistry, SSHConnection
from continuum_spawners.spawner import SiteSpawner

PART = Partition("p", max_cores=4, max_memory_gb=8, max_walltime_minutes=120,
                 default_walltime_minutes=60)  # fmt: skip
SSH = SSHConnection("login.gamma.example.org", "/etc/hub/key", "/etc/hub/known_hosts", port=2222)

REGISTRY = """
sites:
  - name: alpha
    scheduler: slurm
    connection: {env: {SLURM_CONF: /etc/slurm-alpha/slurm.conf}}
    partitions:
      - {name: interactive, default: true, max_cores: 4, max_memory_gb: 8, max_walltime: "08:00:00"}
      - {name: batch, max_cores: 8, max_memory_gb: 16, max_walltime: "24:00:00"}
  - name: beta
    scheduler: slurm
    partitions:
      - {name: gpu, max_cores: 4, max_memory_gb: 16, max_gpus: 2, max_walltime: "12:00:00"}
"""


def site(**fields: object) -> Site:
    return Site(**{"name": "gamma", "scheduler": "slurm", "partitions": (PART,), **fields})


@pytest.fixture(autouse=True)
def fresh_monitors() -> Iterator[None]:
    """The process's shared monitors: none at the start, the test's forgotten after it."""
    clear_monitors()
    yield
    clear_monitors()


# -- adapters and transports, by kind -----------------------------------------------------------


def test_adapter_for_resolves_the_scheduler_kind():
    assert ADAPTERS == {"slurm": SlurmAdapter}
    assert isinstance(adapter_for(site()), SlurmAdapter)


@pytest.mark.parametrize("kind", ["htcondor", "pbs", ""], ids=["htcondor", "pbs", "empty"])
def test_adapter_for_refuses_an_unknown_kind(kind):
    with pytest.raises(ValueError, match=rf"site gamma: no scheduler adapter for '{kind}' "):
        adapter_for(site(scheduler=kind))
    # and the registry accepts only the kinds there is an adapter for
    part = {"name": "p", "max_cores": 1, "max_memory_gb": 1, "max_walltime": "01:00:00"}
    doc = {"sites": [{"name": "gamma", "scheduler": kind, "partitions": [part]}]}
    with pytest.raises(RegistryError, match=r"at sites/0/scheduler: .* is not one of \['slurm'\]"):
        SiteRegistry.from_dict(doc, environ={})


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"env": {"SLURM_CONF": "/x"}}, LocalTransport),
        ({"transport": "ssh", "ssh": SSH, "env": {"SLURM_CONF": "/x"}}, SSHTransport),
    ],
    ids=["local", "ssh"],
)
def test_transport_for_resolves_the_connection_kind(fields, kind):
    transport = transport_for(site(**fields), timeout=7)
    assert type(transport) is kind
    assert (transport.site_env, transport.timeout) == ({"SLURM_CONF": "/x"}, 7)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"transport": "firecrest"}, "site gamma: no transport 'firecrest' \\(known kinds: "),
        ({"transport": "ssh"}, "site gamma: transport ssh without a host"),
        ({"transport": "slurmrestd"}, "site gamma: transport slurmrestd without a URL"),
    ],
    ids=["unknown", "ssh-without-host", "slurmrestd-without-url"],
)
def test_transport_for_refuses_what_it_cannot_reach(fields, message):
    with pytest.raises(ValueError, match=message):
        transport_for(site(**fields))


# -- one monitor per site, for the spawner and the gateway alike --------------------------------


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "sites.yaml"
    path.write_text(REGISTRY)
    return path


@pytest.fixture
def passwd(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine knows the account ``alice`` (and no other)."""

    def entry(name: str) -> pwd.struct_passwd | None:
        if name != "alice":
            return None
        return pwd.struct_passwd((name, "x", 2000, 2000, "", "/home/alice", "/bin/sh"))

    monkeypatch.setattr(accounts, "passwd_entry", entry)


def spawner_for(registry_file: Path, **traits: object) -> SiteSpawner:
    user = SimpleNamespace(
        name="alice", groups=[SimpleNamespace(name="vo.hep.example")], url="/user/alice/"
    )
    config = Config({"SiteSpawner": {"registry_path": str(registry_file), **traits}})
    return SiteSpawner(user=user, config=config)


def gateway_for(registry_file: Path) -> SiteSlurmBackend:
    return SiteSlurmBackend(
        config=Config({"SiteSlurmBackend": {"registry_path": str(registry_file)}})
    )


def test_spawner_and_gateway_share_the_site_monitor(registry_file: Path, passwd: None) -> None:
    spawner, gateway = spawner_for(registry_file, command_timeout=12), gateway_for(registry_file)
    spawner.request = spawner.check_options({"site": "alpha"})
    # the spawner's site is the user's view of it (their partitions), the gateway's the registry's
    assert spawner.site is not gateway.registry.get("alpha")
    monitor = spawner.monitor(spawner.site)
    assert gateway.monitor(gateway.registry.get("alpha")) is monitor
    assert monitor_for(gateway.registry.get("alpha")) is monitor
    assert (monitor.name, monitor.transport.timeout) == ("alpha", 12)  # the first caller's
    assert type(monitor.adapter) is SlurmAdapter
    assert monitor.transport.site_env == {"SLURM_CONF": "/etc/slurm-alpha/slurm.conf"}
    # another site, or the same one reached another way, has a monitor of its own
    beta = gateway.registry.get("beta")
    assert gateway.monitor(beta) is spawner.monitor(beta) is not monitor
    moved = site(name="alpha", env={"SLURM_CONF": "/etc/slurm-alpha/new.conf"})
    assert monitor_for(moved) is not monitor


# -- a spawn validates once, against the registry as it is ---------------------------------------


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The options each validation of the spawner checked."""
    seen: list[dict] = []
    validate = choices.validate_options

    def counted(options, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(dict(options))
        return validate(options, *args, **kwargs)

    monkeypatch.setattr(choices, "validate_options", counted)
    return seen


FORM = {"target": ["alpha/batch"], "cores": ["2"], "memory_gb": ["4"], "walltime": ["1:30"]}


def test_form_spawn_validates_once(registry_file: Path, passwd: None, validations: list) -> None:
    spawner = spawner_for(registry_file)
    options = spawner.options_from_form(FORM)
    spawner._apply_options(options)  # what JupyterHub calls next, with the same options
    assert len(validations) == 1
    request = spawner.request
    assert (request.site, request.partition, request.cores, request.walltime_minutes) == (
        "alpha",
        "batch",
        2,
        90,
    )
    # the request carries the registry's objects the job is built from
    assert request.site_entry is spawner.site and request.site_entry.name == "alpha"
    assert request.partition_entry is request.site_entry.partition("batch")
    assert spawner.job_spec([]).partition == "batch"
    # the REST API (no form) validates once too, and never takes a stale hand-over
    spawner.options_from_form(FORM)
    spawner._apply_options({"site": "beta"})
    assert [v.get("site") for v in validations] == ["alpha", "alpha", "beta"]
    assert spawner.request.site == "beta"


def test_form_shows_the_last_choice_with_one_validation(
    registry_file: Path, passwd: None, validations: list
) -> None:
    spawner = spawner_for(registry_file)
    spawner.user_options = {"site": "alpha", "partition": "batch", "cores": 3}
    html = spawner._render_options_form()
    assert 'value="alpha/batch" selected' in html and 'value="3"' in html
    assert validations == [spawner.user_options]
    # a refused form: the message, and the form again (its last choice validated once more)
    with pytest.raises(web.HTTPError) as info:
        spawner.options_from_form({**FORM, "cores": ["64"]})
    assert (
        info.value.status_code == 400 and "cores must be between 1 and 8" in info.value.log_message
    )
    assert len(validations) == 2


def test_running_server_does_not_reread_the_registry(
    registry_file: Path, passwd: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawner = spawner_for(registry_file, registry_check_interval=3600)
    spawner._apply_options({"site": "alpha"})
    looks: list[str] = []
    stat = os.stat

    def counted(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path) == str(registry_file):
            looks.append(str(path))
        return stat(path, *args, **kwargs)

    monkeypatch.setattr(sites.os, "stat", counted)
    # the operator removes alpha: the running server keeps the site it was started with
    registry_file.write_text(REGISTRY.split("  - name: beta")[0].replace("alpha", "gamma"))
    for _ in range(5):
        assert spawner.site.name == "alpha"
        spawner.monitor(spawner.site)
        assert spawner.job_info()["site_label"] == "alpha"
    assert spawner.registry.get("alpha") is not None  # within registry_check_interval
    assert looks == []
    # a spawn looks at the file: alpha is gone
    with pytest.raises(web.HTTPError) as info:
        spawner._apply_options({"site": "alpha"})
    assert (info.value.status_code, info.value.log_message) == (400, "unknown site 'alpha'")
    assert looks == [str(registry_file)]
    assert spawner.registry.get("alpha") is None and spawner.registry.get("gamma") is not None


def test_saved_request_finds_its_site_once(registry_file: Path, passwd: None) -> None:
    spawner = spawner_for(registry_file)
    saved = {"site": "alpha", "partition": "batch", "cores": 1, "memory_gb": 2, "gpus": 0,
             "walltime_minutes": 60, "environment": "default"}  # fmt: skip
    spawner.load_state({"job_id": "17", "request": saved, "account": "alice"})
    assert spawner.request.site_entry is None  # a hub restart: nothing carried yet
    # the saved job is watched at once: the hub's first status query of the site covers it
    # with every other restored server's (one call per site, whatever their number)
    assert "17" in spawner.monitor(spawner.registry.get("alpha")).watched
    assert spawner.site is spawner.site is spawner.request.site_entry
    assert spawner.request.partition_entry.name == "batch"
    assert spawner.get_state()["request"] == saved  # what is saved: the values only
