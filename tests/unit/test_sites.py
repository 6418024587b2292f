"""The site registry: loading, validation errors with file positions, ssh connections, walltime
parsing, access rules."""

import re
from pathlib import Path

import pytest
import yaml

from continuum_spawners.impact import estimate, model_for
from continuum_spawners.registry_schema import locate
from continuum_spawners.sites import (
    RegistryError,
    SiteRegistry,
    SSHConnection,
    format_walltime,
    parse_walltime,
)

DEMO = Path(__file__).resolve().parents[2] / "hub-config" / "sites.demo.yaml"
ENV = {"CONTINUUM_SLURM_CONF_ALPHA": "/a.conf", "CONTINUUM_SLURM_CONF_BETA": "/b.conf"}


def minimal(**site):
    return {
        "sites": [
            {
                "name": "alpha",
                "scheduler": "slurm",
                "partitions": [
                    {"name": "p", "max_cores": 2, "max_memory_gb": 4, "max_walltime": "01:00:00"}
                ],
                **site,
            }
        ]
    }


def test_demo_registry_loads():
    registry = SiteRegistry.from_file(DEMO, ENV)
    assert [s.name for s in registry] == ["alpha", "beta"]
    alpha, beta = registry.get("alpha"), registry.get("beta")
    assert alpha.env == {"SLURM_CONF": "/a.conf"}
    assert alpha.default_partition.name == "interactive"
    assert beta.partition("gpu").max_gpus == 2
    assert [s.name for s in registry.for_groups(["vo.hep.example"])] == ["alpha"]
    assert [s.name for s in registry.for_groups(["vo.radio.example"])] == ["alpha", "beta"]
    assert registry.for_groups([]) == []


@pytest.mark.parametrize(
    "change,message",
    [
        ({"name": "Bad Name"}, "at sites/0/name"),
        ({"scheduler": "lsf"}, "at sites/0/scheduler"),
        ({"surprise": 1}, "Additional properties"),
        ({"partitions": []}, "at sites/0/partitions"),
        (
            {
                "partitions": [
                    {"name": "p", "max_cores": 0, "max_memory_gb": 1, "max_walltime": "1:00"}
                ]
            },
            "at sites/0/partitions/0/max_cores",
        ),
        (
            {
                "partitions": [
                    {"name": "p", "max_cores": 1, "max_memory_gb": 1, "max_walltime": "soon"}
                ]
            },
            "max_walltime",
        ),
        (
            {
                "partitions": [
                    {
                        "name": "p",
                        "max_cores": 1,
                        "max_memory_gb": 1,
                        "max_walltime": "01:00:00",
                        "default_walltime": "02:00:00",
                    }
                ]
            },
            "default_walltime exceeds",
        ),
        ({"connection": {"env": {"SLURM_CONF": "${NOT_SET_ANYWHERE}"}}}, "NOT_SET_ANYWHERE"),
        ({"connection": {"env": {"bad name": "x"}}}, "connection/env"),
    ],
    ids=[
        "name",
        "scheduler",
        "unknown-key",
        "no-partitions",
        "cores",
        "walltime",
        "default-wall",
        "env-unset",
        "env-name",
    ],
)
def test_invalid_registry_never_half_loads(change, message):
    with pytest.raises(RegistryError, match=message):
        SiteRegistry.from_dict(minimal(**change), environ={})


def test_duplicate_site(tmp_path):
    doc = minimal()
    doc["sites"].append(doc["sites"][0])
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(RegistryError, match=f"{path}: site 'alpha' is defined twice"):
        SiteRegistry.from_file(path)


def test_unreadable_and_bad_yaml(tmp_path):
    with pytest.raises(RegistryError, match="cannot read"):
        SiteRegistry.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites: [\n")
    with pytest.raises(RegistryError, match="not valid YAML"):
        SiteRegistry.from_file(bad)


@pytest.mark.parametrize(
    "text,minutes",
    [("01:00:00", 60), ("1:30", 90), ("2-00:00:00", 2880), ("00:00:01", 1), ("08:00", 480)],
)
def test_walltime(text, minutes):
    assert parse_walltime(text) == minutes


def test_walltime_format_and_errors():
    assert format_walltime(90) == "1:30"
    with pytest.raises(ValueError):
        parse_walltime("1h")


# -- SSH connections ------------------------------------------------------------------------------

SSH = {
    "transport": "ssh",
    "host": "login.gamma.example.org",
    "identity_file": "/etc/continuum-hub/ssh/id_ed25519",
    "known_hosts": "/etc/continuum-hub/ssh/known_hosts",
}


def test_ssh_connection_loads_with_defaults():
    site = SiteRegistry.from_dict(minimal(connection=SSH), environ={}).get("alpha")
    assert site.transport == "ssh"
    assert site.ssh == SSHConnection(
        host="login.gamma.example.org",
        port=22,
        identity_file="/etc/continuum-hub/ssh/id_ed25519",
        known_hosts="/etc/continuum-hub/ssh/known_hosts",
        service_user=None,
    )
    full = {**SSH, "port": 2222, "service_user": "jupyterhub", "env": {"SLURM_CONF": "/s.conf"}}
    site = SiteRegistry.from_dict(minimal(connection=full), environ={}).get("alpha")
    assert (site.ssh.port, site.ssh.service_user, site.env) == (
        2222,
        "jupyterhub",
        {"SLURM_CONF": "/s.conf"},
    )


def test_local_is_the_default_transport():
    site = SiteRegistry.from_dict(minimal(), environ={}).get("alpha")
    assert (site.transport, site.ssh) == ("local", None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host": "-oProxyCommand=sh"}, "at sites/0/connection/host"),
        ({"host": "user@login"}, "at sites/0/connection/host"),
        ({"host": "a..b"}, "at sites/0/connection/host"),
        ({"port": 0}, "at sites/0/connection/port: 0 is less than the minimum of 1"),
        ({"port": 65536}, "at sites/0/connection/port: 65536 is greater than the maximum"),
        ({"port": "22"}, "at sites/0/connection/port: '22' is not of type 'integer'"),
        ({"identity_file": "keys/id"}, "at sites/0/connection/identity_file"),
        ({"known_hosts": "/etc/known hosts"}, "at sites/0/connection/known_hosts"),
        ({"known_hosts": "/etc/%u/known_hosts"}, "at sites/0/connection/known_hosts"),
        ({"service_user": "Root Admin"}, "at sites/0/connection/service_user"),
        ({"host": None}, "at sites/0/connection: 'host' is a required property"),
        ({"known_hosts": None}, "'known_hosts' is a required property"),
        ({"transport": "local"}, "host needs transport: ssh"),
        ({"transport": "rsh"}, "at sites/0/connection/transport"),
    ],
    ids=[
        "host-option",
        "host-user",
        "host-empty-label",
        "port-0",
        "port-high",
        "port-string",
        "key-relative",
        "known-hosts-blank",
        "known-hosts-token",
        "service-user",
        "no-host",
        "no-known-hosts",
        "ssh-field-with-local",
        "unknown-transport",
    ],
)
def test_invalid_ssh_connection(change, message):
    connection = {k: v for k, v in {**SSH, **change}.items() if v is not None}
    with pytest.raises(RegistryError, match=re.escape(message)):
        SiteRegistry.from_dict(minimal(connection=connection), environ={})


# -- errors name the file, line and column ---------------------------------------------------------

REGISTRY = """\
# a registry with one mistake, put in by the tests below
sites:
  - name: alpha
    scheduler: slurm
    connection:
      transport: ssh
      host: login.alpha.example.org
      identity_file: /etc/hub/id_ed25519
      known_hosts: /etc/hub/known_hosts
      env: {SLURM_CONF: "${SLURM_CONF_ALPHA}"}
    partitions:
      - {name: short, max_cores: 4, max_memory_gb: 8, max_walltime: "08:00:00"}
      - name: long
        max_cores: 4
        max_memory_gb: 8
        max_walltime: "2-00:00:00"
"""


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (
            "        max_cores: 4\n",
            "        max_cores: 0\n",
            "14:20: at sites/0/partitions/1/max_cores: 0 is less than the minimum of 1",
        ),
        (
            "max_memory_gb: 8, max_walltime",
            "max_memory_gb: -1, max_walltime",
            "12:52: at sites/0/partitions/0/max_memory_gb: -1 is less than the minimum of 1",
        ),
        (
            "      host: login.alpha.example.org\n",
            "      host: login.alpha.example.org\n      colour: blue\n",
            "8:7: at sites/0/connection: Additional properties are not allowed "
            "('colour' was unexpected)",
        ),
        (
            "      known_hosts: /etc/hub/known_hosts\n",
            "",
            "6:7: at sites/0/connection: 'known_hosts' is a required property",
        ),
        (
            '"2-00:00:00"\n',
            '"2-00:00:00"\n        default_walltime: "3-00:00:00"\n',
            "17:27: at sites/alpha/partitions/long: default_walltime exceeds max_walltime",
        ),
        (
            "      transport: ssh\n",
            "      transport: local\n",
            "7:7: at sites/alpha/connection: host needs transport: ssh",
        ),
        (
            "SLURM_CONF_ALPHA",
            "NOT_SET",
            "10:25: at sites/0/connection/env/SLURM_CONF: environment variable NOT_SET is not set",
        ),
    ],
    ids=["value", "flow-mapping", "unknown-key", "missing-key", "cross-field", "stray", "env"],
)
def test_file_errors_name_line_and_column(tmp_path, old, new, where):
    assert old in REGISTRY
    path = tmp_path / "sites.yaml"
    path.write_text(REGISTRY.replace(old, new, 1))
    with pytest.raises(RegistryError) as caught:
        SiteRegistry.from_file(path, environ={"SLURM_CONF_ALPHA": "/a.conf"})
    assert str(caught.value) == f"{path}:{where}"


def test_the_unchanged_file_loads_and_from_dict_keeps_path_only_messages(tmp_path):
    path = tmp_path / "sites.yaml"
    path.write_text(REGISTRY)
    registry = SiteRegistry.from_file(path, environ={"SLURM_CONF_ALPHA": "/a.conf"})
    assert registry.get("alpha").ssh.host == "login.alpha.example.org"

    data = yaml.safe_load(REGISTRY.replace("        max_cores: 4\n", "        max_cores: 0\n"))
    with pytest.raises(RegistryError) as caught:
        SiteRegistry.from_dict(data, environ={"SLURM_CONF_ALPHA": "/a.conf"})
    assert str(caught.value) == "at sites/0/partitions/1/max_cores: 0 is less than the minimum of 1"


def test_yaml_syntax_errors_name_line_and_column(tmp_path):
    path = tmp_path / "sites.yaml"
    path.write_text("sites:\n  - name: alpha\n    partitions: [\n")
    with pytest.raises(RegistryError, match=re.escape(f"{path}:4:1: not valid YAML: ")):
        SiteRegistry.from_file(path)


def test_locate_falls_back_to_the_nearest_existing_parent():
    text = "sites:\n  - name: alpha\n    partitions:\n      - {name: p}\n"
    mark = locate(text, ("sites", 0, "partitions", 0, "max_cores"))
    assert (mark.line + 1, mark.column + 1) == (4, 9)
    assert locate(text, ("sites", 5)).line == 1
    assert locate("", ("sites",)) is None
    assert locate("sites: [\n", ("sites",)) is None


def test_environments_power_and_partition_access():
    doc = minimal(
        environments=[
            {"name": "root-6", "display_name": "ROOT 6", "modules": ["root/6.30", "python/3.11"]},
            {"name": "plain", "default": True, "launcher": "/opt/plain/bin/continuum-singleuser"},
        ],
        power={"watts_per_core": 10, "watts_per_gpu": 300, "pue": 1.5, "grid_gco2e_per_kwh": 200},
        partitions=[
            {"name": "p", "max_cores": 2, "max_memory_gb": 4, "max_walltime": "01:00:00"},
            {
                "name": "vip",
                "max_cores": 2,
                "max_memory_gb": 4,
                "max_walltime": "01:00:00",
                "access": {"groups": ["vo.vip"]},
            },
        ],
    )
    site = SiteRegistry.from_dict(doc, environ={}).get("alpha")
    assert site.default_environment.name == "plain"
    assert site.environment("root-6").modules == ("root/6.30", "python/3.11")
    use = estimate(model_for(site), cores=2, gpus=1, memory_gb=0, hours=1)
    assert (round(use.energy_kwh, 3), round(use.co2e_kg, 4)) == (0.48, 0.096)
    registry = SiteRegistry.from_dict(doc, environ={})
    assert [p.name for p in registry.for_groups(["anyone"])[0].partitions] == ["p"]
    assert [p.name for p in registry.for_groups(["vo.vip"])[0].partitions] == ["p", "vip"]


@pytest.mark.parametrize(
    "change,message",
    [
        ({"environments": [{"name": "a"}, {"name": "a"}]}, "environment is listed twice"),
        (
            {"environments": [{"name": "a", "default": True}, {"name": "b", "default": True}]},
            "more than one default environment",
        ),
        ({"environments": [{"name": "a", "modules": ["x; rm -rf /"]}]}, "modules/0"),
        ({"environments": [{"name": "a", "launcher": "relative/bin"}]}, "launcher"),
        ({"power": {"watts_per_core": 10, "pue": 0.5, "grid_gco2e_per_kwh": 1}}, "pue"),
    ],
    ids=["env-twice", "two-defaults", "module-injection", "relative-launcher", "pue-below-1"],
)
def test_invalid_environments_and_power(change, message):
    with pytest.raises(RegistryError, match=message):
        SiteRegistry.from_dict(minimal(**change), environ={})


def test_rse_lists_load_and_map_storage_to_sites():
    assert SiteRegistry.from_dict(minimal(), environ={}).get("alpha").rses == ()
    registry = SiteRegistry.from_dict(minimal(rse=["ALPHA_DISK", "ALPHA-TAPE"]), environ={})
    assert registry.get("alpha").rses == ("ALPHA_DISK", "ALPHA-TAPE")
    demo = SiteRegistry.from_file(DEMO, ENV)
    assert {rse: site.name for site in demo for rse in site.rses} == {
        "ALPHA_DISK": "alpha",
        "BETA_DISK": "beta",
        "BETA_TAPE": "beta",
    }


@pytest.mark.parametrize(
    "rses,message",
    [
        (["alpha_disk"], "at sites/0/rse/0"),
        (["A", "A"], "at sites/0/rse: .* non-unique"),
        (["../ETC"], "at sites/0/rse/0"),
        ("ALPHA_DISK", "at sites/0/rse: 'ALPHA_DISK' is not of type 'array'"),
    ],
    ids=["lower-case", "twice", "path", "not-a-list"],
)
def test_invalid_rse_lists(rses, message):
    with pytest.raises(RegistryError, match=message):
        SiteRegistry.from_dict(minimal(rse=rses), environ={})


def test_an_rse_belongs_to_one_site():
    data = minimal(rse=["SHARED"])
    data["sites"].append({**data["sites"][0], "name": "beta"})
    with pytest.raises(RegistryError, match="at sites/beta/rse: SHARED is already at site alpha"):
        SiteRegistry.from_dict(data, environ={})
