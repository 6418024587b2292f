"""Per-user totals of the gateway (continuum_hub.gateway.totals and the options' limits)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from dask_gateway_server.backends.base import Backend
from dask_gateway_server.backends.db_base import DBBackendBase
from traitlets import TraitError
from traitlets.config import Config

from continuum_hub.gateway.backend import SiteSlurmBackend
from continuum_hub.gateway.options import GatewayLimits, Limits
from continuum_hub.gateway.totals import (
    NOTES,
    Usage,
    allowance,
    explain,
    note,
    notes_middleware,
    usage,
)

pytestmark = pytest.mark.gateway


def limits(**values: int) -> Limits:
    base = {"max_clusters": 2, "max_workers": 4, "max_cores": 8, "max_gpus": 2}
    return Limits(**{**base, **values}, source={"max_total_workers": "vo.hep"})


@pytest.mark.parametrize(
    ("lim", "others", "cores", "gpus", "expected"),
    [
        # no totals set: max_clusters × the per-cluster limit, never tighter than those
        (limits(), Usage(), 1, 0, (8, "max_total_workers")),
        (limits(), Usage(4, 8, 0), 2, 0, (4, "max_total_cores")),
        # explicit totals
        (limits(max_total_workers=3), Usage(2, 2, 0), 1, 0, (1, "max_total_workers")),
        (limits(max_total_workers=3), Usage(3, 3, 0), 1, 0, (0, "max_total_workers")),
        (limits(max_total_cores=10), Usage(1, 4, 0), 4, 0, (1, "max_total_cores")),
        (limits(max_total_cores=10), Usage(1, 4, 0), 3, 0, (2, "max_total_cores")),
        (limits(max_total_gpus=2), Usage(1, 1, 1), 1, 1, (1, "max_total_gpus")),
        (limits(max_total_gpus=2), Usage(1, 1, 1), 1, 2, (0, "max_total_gpus")),
        # GPUs only bound GPU workers; a lowered total never gives a negative allowance
        (limits(max_total_gpus=0), Usage(), 1, 0, (8, "max_total_workers")),
        (limits(max_total_workers=1), Usage(3, 3, 0), 1, 0, (0, "max_total_workers")),
    ],
    ids=[
        "derived", "derived-cores", "workers", "workers-used-up", "cores", "cores-rounded-down",
        "gpus", "gpus-too-big", "no-gpu-worker", "lowered",
    ],
)  # fmt: skip
def test_allowance_is_what_the_other_clusters_leave(
    lim: Limits, others: Usage, cores: int, gpus: int, expected: tuple[int, str]
) -> None:
    assert allowance(lim, others, cores, gpus) == expected


def test_usage_sums_counts_times_worker_size() -> None:
    got = usage([(2, {"worker_cores": 3, "worker_gpus": 1}), (1, {"worker_cores": 2}), (0, {})])
    assert got == Usage(workers=3, cores=8, gpus=2)


@pytest.mark.parametrize(
    ("groups", "expected", "source"),
    [
        ([], {"workers": 8, "cores": 16, "gpus": 0}, "default"),
        (["vo.hep"], {"workers": 3, "cores": 16, "gpus": 0}, "vo.hep"),
        (["vo.hep", "vo.radio"], {"workers": 5, "cores": 16, "gpus": 4}, "vo.radio"),
        (["vo.big"], {"workers": 20, "cores": 160, "gpus": 0}, "default"),
    ],
    ids=["nobody", "one-group", "largest-of-two", "derived-from-group-limits"],
)
def test_totals_take_the_largest_value_of_the_users_groups(
    groups: list[str], expected: dict[str, int], source: str
) -> None:
    config = Config(
        {
            "GatewayLimits": {
                "groups": {
                    "vo.hep": {"max_total_workers": 3},
                    "vo.radio": {"max_total_workers": 5, "max_total_gpus": 4},
                    "vo.big": {"max_workers": 10, "max_cores": 80},
                }
            }
        }
    )
    got = GatewayLimits(config=config).for_groups(groups)
    assert {what: got.total(what) for what in expected} == expected
    assert got.source["max_total_workers"] == source


def test_total_settings_are_checked() -> None:
    with pytest.raises((TraitError, ValueError), match="non-negative"):
        GatewayLimits(config=Config({"GatewayLimits": {"default": {"max_total_cores": -2}}}))


def test_the_message_names_the_limit_its_group_and_the_other_clusters() -> None:
    lim = limits(max_total_workers=3)
    message = explain(lim, Usage(2, 2, 0), 1, "max_total_workers")
    assert message.startswith("your limit of 3 workers over all your clusters (group vo.hep)")
    assert "your other clusters use 2 workers" in message
    assert "at most 1 workers" in message
    derived = explain(limits(), Usage(4, 8, 0), 4, "max_total_cores")
    assert derived.startswith("your limit of 16 cores over all your clusters (the default)")


async def _answer(path: str, body: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    async def handler(request: web.Request) -> web.Response:
        for message in notes:
            note(message)
        return web.json_response(body)

    app = web.Application(middlewares=[notes_middleware])
    app.router.add_post(path, handler)
    async with TestClient(TestServer(app)) as client:
        response = await client.post(path)
        assert response.status == 200
        return dict(await response.json())


@pytest.mark.parametrize(
    ("path", "body", "notes", "expected"),
    [
        ("/api/v1/clusters/c/scale", {"ok": True, "msg": None}, [], {"ok": True, "msg": None}),
        ("/api/v1/clusters/c/scale", {"ok": True, "msg": None}, ["capped"],
         {"ok": False, "msg": "capped"}),
        ("/api/v1/clusters/c/adapt", {"ok": False, "msg": "stock."}, ["totals"],
         {"ok": False, "msg": "stock. totals"}),
        ("/api/v1/clusters/c/other", {"ok": True, "msg": None}, ["ignored"],
         {"ok": True, "msg": None}),
    ],
    ids=["no-note", "scale-capped", "adapt-both-notes", "other-route"],
)  # fmt: skip
async def test_notes_reach_the_scale_and_adapt_answers(
    path: str, body: dict[str, Any], notes: list[str], expected: dict[str, Any]
) -> None:
    assert await _answer(path, body, notes) == expected


def test_a_note_outside_a_request_goes_nowhere() -> None:
    note("nobody listens")  # no error, nothing kept
    assert NOTES.get() is None


# -- the backend applies them (SiteSlurmBackend, with a stand-in for dask-gateway's database) ----


@dataclass
class Record:
    """What the backend reads of a cluster in dask-gateway's database."""

    name: str
    count: int
    worker_cores: int = 1
    username: str = "alice"
    groups: tuple[str, ...] = ("vo.hep",)
    active: bool = True

    @property
    def config(self) -> dict[str, Any]:
        groups = list(self.groups)
        return {"worker_cores": self.worker_cores, "worker_gpus": 0, "user_groups": groups}

    def is_active(self) -> bool:
        return self.active


class Database:
    def __init__(self, *records: Record) -> None:
        self.records = {r.name: r for r in records}

    def get_cluster(self, name: str) -> Record | None:
        return self.records.get(name)

    def list_clusters(self, username: str) -> list[Record]:
        return [r for r in self.records.values() if r.username == username and r.active]


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> tuple[SiteSlurmBackend, list[dict[str, Any]]]:
    """A backend with alice's (vo.hep) clusters ``a`` (2 workers) and ``b`` (0), bob's ``c`` (3
    workers, no group), and a total of 3 workers for vo.hep; returns it and the messages that
    went on (to the scheduler, or to dask-gateway's own heartbeat handling)."""
    sent: list[dict[str, Any]] = []

    async def forward(self: Any, cluster: Any, msg: dict[str, Any]) -> None:
        sent.append(msg)

    async def heartbeat(self: Any, name: str, msg: dict[str, Any]) -> None:
        sent.append(msg)

    monkeypatch.setattr(Backend, "forward_message_to_scheduler", forward)
    monkeypatch.setattr(DBBackendBase, "on_cluster_heartbeat", heartbeat)
    config = Config(
        {
            "SiteSlurmBackend": {"api_url": "http://127.0.0.1:9/api", "python_prefix": "/x"},
            "GatewayLimits": {"groups": {"vo.hep": {"max_total_workers": 3}}},
        }
    )
    backend = SiteSlurmBackend(config=config)
    backend.db = Database(Record("a", 2), Record("b", 0), Record("c", 3, username="bob", groups=()))
    return backend, sent


@pytest.mark.parametrize(
    ("cluster", "msg", "expected", "noted"),
    [
        ("b", {"op": "scale", "count": 1}, {"op": "scale", "count": 1}, None),
        ("b", {"op": "scale", "count": 4}, {"op": "scale", "count": 1},
         "Scaling to 1 workers instead of 4: your limit of 3 workers over all your clusters "
         "(group vo.hep): your other clusters use 2 workers"),
        ("a", {"op": "scale", "count": 3}, {"op": "scale", "count": 3}, None),
        ("b", {"op": "adapt", "minimum": 2, "maximum": 4, "active": True},
         {"op": "adapt", "minimum": 1, "maximum": 1, "active": True},
         "Adapting between 1 and 1 workers"),
        ("b", {"op": "adapt", "minimum": 0, "maximum": 4, "active": False},
         {"op": "adapt", "minimum": 0, "maximum": 4, "active": False}, None),
    ],
    ids=["fits", "scale-capped", "others-are-bobs", "adapt-capped", "adapt-off"],
)  # fmt: skip
async def test_scale_and_adapt_are_capped_with_a_note(
    gateway: tuple[SiteSlurmBackend, list[dict[str, Any]]],
    cluster: str,
    msg: dict[str, Any],
    expected: dict[str, Any],
    noted: str | None,
) -> None:
    backend, sent = gateway
    notes: list[str] = []
    token = NOTES.set(notes)
    try:
        await backend.forward_message_to_scheduler(SimpleNamespace(name=cluster), msg)
    finally:
        NOTES.reset(token)
    assert sent == [expected]
    if noted is None:
        assert notes == []
    else:
        assert len(notes) == 1 and notes[0].startswith(noted), notes


@pytest.mark.parametrize(
    ("cluster", "count", "expected"),
    [("b", 5, 1), ("b", 1, 1), ("a", 3, 3), ("a", 9, 3), ("c", 9, 8)],
    ids=["capped", "fits", "grows-into-the-rest", "beyond-all", "bob-has-the-default"],
)
async def test_heartbeats_are_capped(
    gateway: tuple[SiteSlurmBackend, list[dict[str, Any]]], cluster: str, count: int, expected: int
) -> None:
    backend, sent = gateway
    await backend.on_cluster_heartbeat(cluster, {"count": count, "active_workers": []})
    assert sent == [{"count": expected, "active_workers": []}]
