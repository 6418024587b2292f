"""Dask Gateway cluster options and per-user limits (``continuum_hub.gateway.options``)."""

from __future__ import annotations

from typing import Any

import pytest
from dask_gateway_server.models import User
from traitlets import TraitError
from traitlets.config import Config

from continuum_hub.gateway.options import (
    GIB,
    GatewayLimits,
    Limits,
    cluster_label,
    cluster_options,
    resolve,
)
from continuum_spawners.sites import SiteRegistry

pytestmark = pytest.mark.gateway

REGISTRY = SiteRegistry.from_dict(
    {
        "sites": [
            {
                "name": "alpha",
                "scheduler": "slurm",
                "access": {"groups": ["vo.hep", "vo.radio"]},
                "account": "hep-dask",
                "partitions": [
                    {"name": "interactive", "default": True, "max_cores": 4,
                     "max_memory_gb": 8, "max_walltime": "08:00:00"},
                    {"name": "batch", "max_cores": 16, "max_memory_gb": 64,
                     "max_walltime": "2-00:00:00"},
                ],
            },
            {
                "name": "beta",
                "scheduler": "slurm",
                "access": {"groups": ["vo.radio"]},
                "environments": [
                    {"name": "python", "default": True},
                    {"name": "cupy", "launcher": "/opt/cupy/bin/continuum-singleuser"},
                ],
                "partitions": [
                    {"name": "gpu", "max_cores": 4, "max_memory_gb": 16, "max_gpus": 2,
                     "gpu_type": "demo", "max_walltime": "12:00:00"},
                ],
            },
        ]
    }
)  # fmt: skip

RADIO = GatewayLimits(config=Config({"GatewayLimits": {"groups": {"vo.radio": {"max_gpus": 2}}}}))


def limits(**values: int) -> Limits:
    base = {"max_clusters": 2, "max_workers": 4, "max_cores": 8, "max_gpus": 2}
    return Limits(**{**base, **values}, source={})


def parsed(groups: list[str], request: dict[str, Any], lim: Limits | None = None) -> dict:
    """Field validation (dask-gateway) then :func:`resolve`, as the gateway does."""
    options = cluster_options(REGISTRY, groups, lim or limits())
    return options.get_configuration(options.parse_options(request), User("u", groups=groups))


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ([], {"max_clusters": 2, "max_workers": 4, "max_cores": 8, "max_gpus": 0}),
        (["vo.radio"], {"max_gpus": 2}),
        (["vo.hep", "vo.radio"], {"max_workers": 10, "max_gpus": 2}),
        (["vo.big"], {"max_workers": 10, "max_cores": 64}),
    ],
    ids=["nobody", "one-group", "largest-of-two", "several-limits"],
)
def test_limits_take_the_largest_value_of_the_users_groups(
    groups: list[str], expected: dict[str, int]
) -> None:
    config = Config(
        {
            "GatewayLimits": {
                "groups": {
                    "vo.hep": {"max_workers": 10},
                    "vo.radio": {"max_gpus": 2, "max_workers": 6},
                    "vo.big": {"max_workers": 10, "max_cores": 64},
                }
            }
        }
    )
    got = GatewayLimits(config=config).for_groups(groups)
    for name, value in expected.items():
        assert getattr(got, name) == value
    if "vo.hep" in groups and "vo.radio" in groups:
        assert got.source["max_workers"] == "vo.hep"
        assert "group vo.hep" in got.why("max_workers")
    if not groups:
        assert got.why("max_gpus") == "your limit of 0 GPUs (the default)"


@pytest.mark.parametrize(
    "setting",
    [
        {"default": {"max_nodes": 3}},
        {"default": {"max_workers": -1}},
        {"groups": {"vo.hep": {"max_cores": True}}},
        {"groups": {"vo.hep": ["max_cores"]}},
    ],
    ids=["unknown-limit", "negative", "bool", "not-a-mapping"],
)
def test_limit_settings_are_checked(setting: dict[str, Any]) -> None:
    with pytest.raises((TraitError, ValueError)):
        GatewayLimits(config=Config({"GatewayLimits": setting}))


def test_options_offer_only_the_sites_of_the_users_groups() -> None:
    spec = {
        f["field"]: f for f in cluster_options(REGISTRY, ["vo.hep"], limits()).get_specification()
    }
    assert spec["site"]["spec"]["options"] == ["alpha"]
    assert spec["worker_gpus"]["spec"]["max"] == 0
    radio = cluster_options(REGISTRY, ["vo.radio"], limits()).get_specification()
    assert next(f for f in radio if f["field"] == "site")["spec"]["options"] == ["alpha", "beta"]


def test_remote_sites_are_offered_and_a_down_site_is_marked_and_refused() -> None:
    remote = SiteRegistry.from_dict(
        {
            "sites": [
                {
                    "name": "gamma",
                    "scheduler": "slurm",
                    "connection": {
                        "transport": "ssh",
                        "host": "login.gamma.example.org",
                        "identity_file": "/etc/k",
                        "known_hosts": "/etc/kh",
                    },
                    "partitions": [
                        {"name": "short", "max_cores": 2, "max_memory_gb": 4,
                         "max_walltime": "01:00:00"}
                    ],
                },
                {
                    "name": "delta",
                    "scheduler": "slurm",
                    "connection": {
                        "transport": "slurmrestd",
                        "url": "https://rest.delta.example.org",
                        "token_file": "/etc/t",
                    },
                    "partitions": [
                        {"name": "short", "max_cores": 2, "max_memory_gb": 4,
                         "max_walltime": "01:00:00"}
                    ],
                },
            ]
        }
    )  # fmt: skip
    up = cluster_options(remote, ["vo.hep"], limits())
    config = up.get_configuration(up.parse_options({"site": "delta"}), User("u"))
    assert config["site"] == "delta"
    why = "Site gamma is unavailable: its scheduler has not answered since 10:00 UTC."
    options = cluster_options(remote, ["vo.hep"], limits(), down={"gamma": why})
    field = next(f for f in options.get_specification() if f["field"] == "site")
    # still listed, after the sites that answer, never the default; the label says why
    assert field["spec"]["options"] == ["delta", "gamma"]
    assert field["default"] == "delta"
    assert field["label"] == "Site (unavailable now: gamma)"
    with pytest.raises(ValueError, match="Site gamma is unavailable"):
        options.get_configuration(options.parse_options({"site": "gamma"}), User("u"))
    config = options.get_configuration(options.parse_options({}), User("u"))
    assert config["site"] == "delta"


def test_a_user_without_sites_gets_a_clear_refusal() -> None:
    options = cluster_options(REGISTRY, ["vo.none"], limits())
    with pytest.raises(ValueError, match="none of your groups gives access"):
        options.get_configuration(options.parse_options({}), User("u"))


def test_defaults_resolve_to_the_sites_default_partition_and_environment() -> None:
    config = parsed(["vo.hep"], {})
    assert config == {
        "site": "alpha",
        "partition": "interactive",
        "account": "hep-dask",
        "worker_cores": 1,
        "worker_memory": 2 * GIB,
        "worker_gpus": 0,
        "gpu_type": "",
        "software_environment": "default",
        "walltime_minutes": 60,
        "adaptive_minimum": 0,
        "adaptive_maximum": 0,
        "cluster_max_workers": 4,
    }


def test_gpu_workers_on_the_gpu_partition() -> None:
    config = parsed(
        ["vo.radio"], {"site": "beta", "worker_gpus": 1, "worker_cores": 2, "environment": "cupy"}
    )
    assert config["partition"] == "gpu" and config["gpu_type"] == "demo"
    assert config["software_environment"] == "cupy"
    # 2 GPUs allowed at 1 each, 8 cores at 2 each, 4 workers: the GPUs bound it
    assert config["cluster_max_workers"] == 2


@pytest.mark.parametrize(
    ("groups", "request_", "lim", "message"),
    [
        (["vo.hep"], {"site": "beta"}, None, "'beta' is not a valid option for site"),
        (["vo.hep"], {"colour": "red"}, None, "Unknown fields"),
        (["vo.hep"], {"worker_cores": "4"}, None, "must be an integer"),
        (["vo.hep"], {"worker_cores": 17}, None, "worker_cores must be <="),
        (["vo.hep"], {"worker_cores": 8}, None, "at most 4 cores on partition interactive"),
        (["vo.radio"], {"partition": "gpu"}, None, "site alpha has no partition 'gpu'"),
        (["vo.radio"], {"worker_gpus": 1}, None, "at most 0 GPUs on partition interactive"),
        (["vo.hep"], {"walltime_minutes": 600}, None, "walltime on partition interactive"),
        (["vo.radio"], {"environment": "cupy"}, None, "site alpha has no environment 'cupy'"),
        (["vo.hep"], {"adaptive_minimum": 3, "adaptive_maximum": 2}, None, "above the adaptive"),
        (["vo.hep"], {"adaptive_maximum": 5}, None, "adaptive_maximum must be <= 4"),
        (["vo.hep"], {"worker_cores": 4, "adaptive_maximum": 3}, None, "2 workers of 4 cores"),
        (["vo.hep"], {"worker_cores": 4}, limits(max_cores=2), "exceeds your limit of 2 cores"),
        (["vo.radio"], {"site": "beta", "worker_gpus": 1}, limits(max_gpus=0), "limit of 0 GPUs"),
        (["vo.hep"], {}, limits(max_workers=0), "no worker fits"),
        (["vo.hep"], {"name": "my cluster"}, None, "name must be 1 to 40 letters"),
        (["vo.hep"], {"name": "x" * 41}, None, "starting with a letter or digit, not 'xxx"),
    ],
    ids=[
        "site-of-other-group", "unknown-field", "wrong-type", "beyond-every-partition",
        "beyond-the-partition", "partition-of-other-site", "gpus-on-cpu-partition",
        "walltime", "environment-of-other-site", "adaptive-inverted", "adaptive-over-limit",
        "adaptive-over-core-budget", "cores-over-limit", "gpus-over-limit", "no-workers",
        "name-with-space", "name-too-long",
    ],
)  # fmt: skip
def test_refusals_say_why(
    groups: list[str], request_: dict[str, Any], lim: Limits | None, message: str
) -> None:
    with pytest.raises((ValueError, TypeError)) as excinfo:
        parsed(groups, request_, lim)
    assert message in str(excinfo.value)


def test_resolve_rechecks_the_site_against_the_groups() -> None:
    # options are built per request; a stale choice is checked again when resolved
    options = {"site": "beta", "partition": "default", "environment": "default",
               "worker_cores": 1, "worker_memory_gb": 1, "worker_gpus": 0,
               "walltime_minutes": 10, "adaptive_minimum": 0, "adaptive_maximum": 0}  # fmt: skip
    with pytest.raises(ValueError, match="you may not use site 'beta'"):
        resolve(options, REGISTRY, ["vo.hep"], limits())


def test_a_cluster_is_named_as_asked_or_after_its_site_and_partition() -> None:
    assert parsed(["vo.hep"], {"name": "my-run_2"})["site"] == "alpha"  # a valid name passes
    assert cluster_label("mine", {"beta-gpu-1"}, "beta", "gpu") == "mine"
    assert cluster_label("", set(), "beta", "gpu") == "beta-gpu-1"
    # the smallest number free among the user's active clusters
    assert cluster_label("", {"beta-gpu-1", "beta-gpu-3", ""}, "beta", "gpu") == "beta-gpu-2"
    with pytest.raises(ValueError, match="already have an active cluster named 'mine'"):
        cluster_label("mine", {"mine"}, "beta", "gpu")
