"""The idle timeout a user may choose for a Dask cluster (``continuum_hub.gateway.options``)."""

from __future__ import annotations

from typing import Any

import pytest
from dask_gateway_server.models import User

from continuum_hub.gateway.options import Limits, cluster_options
from continuum_spawners.sites import SiteRegistry

pytestmark = pytest.mark.gateway

REGISTRY = SiteRegistry.from_dict(
    {
        "sites": [
            {
                "name": "alpha",
                "scheduler": "slurm",
                "access": {"groups": ["vo.hep"]},
                "partitions": [{"name": "batch", "default": True, "max_cores": 4,
                                "max_memory_gb": 8, "max_walltime": "08:00:00"}],
            }
        ]
    }
)  # fmt: skip
LIMITS = Limits(max_clusters=2, max_workers=4, max_cores=8, max_gpus=0, source={})


def configured(idle_timeout: float, request: dict[str, Any]) -> dict[str, Any]:
    options = cluster_options(REGISTRY, ["vo.hep"], LIMITS, idle_timeout)
    parsed = options.parse_options({"site": "alpha", **request})
    return dict(options.get_configuration(parsed, User("u", groups=["vo.hep"])))


@pytest.mark.parametrize(
    ("gateway_timeout", "request_", "expected"),
    [
        (1800.0, {}, 1800.0),  # the gateway's own by default
        (1800.0, {"idle_timeout_minutes": 0.25}, 15.0),
        (1800.0, {"idle_timeout_minutes": 2}, 120.0),
        (600.0, {"idle_timeout_minutes": 10}, 600.0),
        (0.0, {}, None),  # no idle timeout: no field, the config keeps 0
    ],
    ids=["default", "shortest", "integer-minutes", "longest", "never"],
)
def test_users_may_shorten_the_idle_timeout(
    gateway_timeout: float, request_: dict[str, Any], expected: float | None
) -> None:
    assert configured(gateway_timeout, request_).get("idle_timeout") == expected


@pytest.mark.parametrize(
    ("gateway_timeout", "request_", "message"),
    [
        (1800.0, {"idle_timeout_minutes": 31}, "idle_timeout_minutes must be <= 30"),
        (1800.0, {"idle_timeout_minutes": 0.1}, "idle_timeout_minutes must be >= 0.25"),
        (0.0, {"idle_timeout_minutes": 5}, "idle_timeout_minutes"),
    ],
    ids=["longer-than-the-gateway", "too-short", "not-offered"],
)
def test_other_idle_timeouts_are_refused(
    gateway_timeout: float, request_: dict[str, Any], message: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        configured(gateway_timeout, request_)
