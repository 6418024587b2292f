"""The site registry: loading, validation errors, walltime parsing, access rules."""

from pathlib import Path

import pytest
import yaml

from continuum_spawners.sites import RegistryError, SiteRegistry, format_walltime, parse_walltime

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
