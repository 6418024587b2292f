"""The per-site probe (``continuum_site_up``) and the hub's Continuum metrics switch.

Slurm's probe is parsed from recorded ``scontrol ping`` transcripts (Slurm 22.05); the probe
runs the real ``scontrol`` where the outcome needs no cluster (a ``slurm.conf`` whose controller
port nobody listens on: down at once); a cluster going down and coming back is in
``tests/integration/test_metrics_prometheus.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from traitlets.config import Config

from continuum_federation.process import free_port
from continuum_hub.hub_metrics import (
    ContinuumMetrics,
    SiteProbe,
    add_continuum_metrics,
    probe_sites,
    set_continuum_collectors,
)
from continuum_hub.metrics import ALL
from continuum_spawners import site_health
from continuum_spawners.schedulers.slurm import SlurmAdapter
from continuum_spawners.schedulers.transport import CommandResult, LocalTransport, TransportError

pytestmark = pytest.mark.operations

UP = "Slurmctld(primary) at vm is UP\n"
DOWN = (
    "Slurmctld(primary) at vm is DOWN\n*****************************************\n"
    "** RESTORE SLURMCTLD DAEMON TO SERVICE **\n*****************************************\n"
)
REGISTRY_YAML = """\
sites:
  - name: {name}
    display_name: Probe test site
    scheduler: slurm
    connection:
      transport: local
      env: {{SLURM_CONF: {conf}}}
    partitions:
      - {{name: batch, default: true, max_cores: 2, max_memory_gb: 2, max_walltime: "01:00:00"}}
"""


def site_up(site: str) -> float | None:
    return REGISTRY.get_sample_value("continuum_site_up", {"site": site})


def nobody_listening(folder: Path) -> Path:
    """A ``slurm.conf`` whose controller is a free port of this machine (nothing answers)."""
    conf = folder / "slurm.conf"
    conf.write_text(
        f"ClusterName=nobody\nSlurmctldHost=nobody(127.0.0.1)\nSlurmctldPort={free_port()}\n"
    )
    return conf


async def eventually(check: Callable[[], bool], within: float = 10.0) -> bool:
    """Whether ``check()`` holds within ``within`` seconds (asked every 20 ms)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


@pytest.mark.parametrize(
    ("returncode", "stdout", "up"),
    [
        (0, UP, True),
        (1, DOWN, False),
        (0, "Slurmctld(primary) at a is DOWN\nSlurmctld(backup) at b is UP\n", True),
        (0, "", False),  # exit 0 without a controller saying UP: not trusted
        (1, "", False),
    ],
    ids=["up", "down", "backup-up", "silent", "failed"],
)
def test_slurm_probe_reads_scontrol_ping(returncode, stdout, up):
    adapter = SlurmAdapter()
    assert adapter.probe_argv() == ["scontrol", "ping"]
    assert adapter.parse_probe(returncode, stdout, "") is up


class Scontrol:
    """``scontrol ping`` at the boundary: up, down, or the transport failing."""

    def __init__(self) -> None:
        self.answer: CommandResult | Exception = CommandResult(0, UP, "")
        self.calls: list[list[str]] = []

    async def run(self, argv, **kwargs):
        self.calls.append(list(argv))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_probe_sets_the_gauge_and_logs_changes_only(caplog):
    scontrol = Scontrol()
    probe = SiteProbe("probe-site", SlurmAdapter(), scontrol)
    caplog.set_level(logging.INFO, logger="continuum_hub.hub_metrics")
    assert await probe.check() is True and site_up("probe-site") == 1
    scontrol.answer = CommandResult(1, DOWN, "")
    assert await probe.check() is False and site_up("probe-site") == 0
    scontrol.answer = TransportError("ssh: connect to host login.example: timed out")
    assert await probe.check() is False and site_up("probe-site") == 0
    scontrol.answer = CommandResult(0, UP, "")
    assert await probe.check() is True and site_up("probe-site") == 1
    assert scontrol.calls == [["scontrol", "ping"]] * 4 and probe.probes == 4
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3, messages  # up, down, up again: the second failure is not logged
    assert "does not answer (Slurmctld(primary) at vm is DOWN)" in messages[1]


async def test_a_site_without_a_reachable_scheduler_is_down(tmp_path):
    transport = LocalTransport({"SLURM_CONF": str(nobody_listening(tmp_path))}, timeout=10)
    probe = SiteProbe("probe-nowhere", SlurmAdapter(), transport, valid_for=60)
    assert await probe.check() is False
    assert site_up("probe-nowhere") == 0
    # what the spawner reads: the form, "soonest" and spawns (tests/unit/test_site_health.py)
    health = site_health.BOARD.get("probe-nowhere")
    assert health is not None and not health.up and health.valid_for == 60
    assert "probe-nowhere" in site_health.BOARD.down(["probe-nowhere", "probe-site"])


async def test_probe_sites_probes_every_site_each_interval():
    first, second = Scontrol(), Scontrol()
    probes = [
        SiteProbe("probe-a", SlurmAdapter(), first),
        SiteProbe("probe-b", SlurmAdapter(), second),
    ]
    task = asyncio.ensure_future(probe_sites(probes, interval=0.05))
    assert await eventually(lambda: min(p.probes for p in probes) >= 3)
    task.cancel()
    assert site_up("probe-a") == 1 and site_up("probe-b") == 1


def continuum_names() -> set[str]:
    return {f.name for f in REGISTRY.collect() if f.name.startswith("continuum_")}


def test_switching_the_collectors_off_and_on_again():
    try:
        assert set_continuum_collectors(False) == len(ALL)
        assert not continuum_names()  # /hub/metrics would serve JupyterHub's own only
        assert set_continuum_collectors(False) == 0
    finally:
        assert set_continuum_collectors(True) == len(ALL)
    assert {m._name for m in ALL} <= continuum_names()
    assert set_continuum_collectors(True) == 0


def test_metrics_off_starts_no_probe(tmp_path):
    c = Config()
    c.ContinuumMetrics.enabled = False
    c.SiteSpawner.registry_path = str(tmp_path / "not-read.yaml")
    try:
        assert add_continuum_metrics(c) is None
        assert "continuum_site_up" not in continuum_names()
    finally:
        set_continuum_collectors(True)


async def test_config_starts_the_probe_of_every_registry_site(tmp_path):
    registry = tmp_path / "sites.yaml"
    registry.write_text(REGISTRY_YAML.format(name="probe-config", conf=nobody_listening(tmp_path)))
    c = Config()
    c.SiteSpawner.registry_path = str(registry)
    c.ContinuumMetrics.site_probe_interval = 0.2
    task = add_continuum_metrics(c)
    assert task is not None
    try:  # the first round runs at once
        assert await eventually(lambda: site_up("probe-config") == 0)
    finally:
        task.cancel()
    # an answer counts for three intervals and a timeout (default 10 s), then no longer
    assert site_health.BOARD.get("probe-config").valid_for == pytest.approx(10.6)
    c.ContinuumMetrics.site_probe_interval = 0
    assert add_continuum_metrics(c) is None


def test_no_probe_outside_a_running_loop(tmp_path):
    metrics = ContinuumMetrics(site_probe_interval=5)
    assert metrics.apply(str(tmp_path / "not-read.yaml")) is None  # a config check, no hub
    with pytest.raises(Exception, match="less than"):
        ContinuumMetrics(site_probe_interval=-1)
