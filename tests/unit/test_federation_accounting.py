"""The local federation's accounting configuration (rendered files only; nothing starts):
the sites' ``slurm.conf`` with and without a slurmdbd, and slurmdbd's own files.

The daemons themselves are exercised by ``tests/integration/test_slurm_accounting.py``.
"""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from continuum_federation.mariadb import MariaDBServer
from continuum_federation.slurm import LocalSlurmCluster, load_cluster_specs
from continuum_federation.slurm_conf import render_slurm_conf
from continuum_federation.slurmdbd import SlurmDBD
from fixtures.slurm import ACCOUNTED_FIXTURE, accounting_wanted

REPO = Path(__file__).resolve().parents[2]


def beta(tmp_path: Path, accounting: tuple[str, int] | None) -> LocalSlurmCluster:
    """The demo's GPU site, with ports set as ``write_config`` would (nothing written)."""
    spec = load_cluster_specs(REPO / "images" / "slurm" / "clusters.yaml")["beta"]
    site = LocalSlurmCluster("beta", spec, tmp_path, tmp_path / "munge.socket", accounting)
    site.ctld_port, site.slurmd_ports = 6817, {"beta-g1": 6818}
    return site


def settings(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and "#" not in line)


def test_without_accounting_nothing_is_recorded(tmp_path: Path) -> None:
    conf = settings(render_slurm_conf(beta(tmp_path, None)))
    assert conf["AccountingStorageType"] == "accounting_storage/none"
    assert conf["JobAcctGatherType"] == "jobacct_gather/none"
    assert "AccountingStorageHost" not in conf and "AccountingStorageTRES" not in conf


def test_with_accounting_every_job_goes_to_slurmdbd(tmp_path: Path) -> None:
    conf = settings(render_slurm_conf(beta(tmp_path, ("127.0.0.1", 6819))))
    assert conf["AccountingStorageType"] == "accounting_storage/slurmdbd"
    assert (conf["AccountingStorageHost"], conf["AccountingStoragePort"]) == ("127.0.0.1", "6819")
    # slurmdbd is reached through the federation's munged, not the system's socket
    assert conf["AccountingStoragePass"] == str(tmp_path / "munge.socket")
    assert conf["AccountingStorageTRES"] == "gres/gpu"
    assert conf["JobAcctGatherType"] == "jobacct_gather/linux"
    assert conf["ClusterName"] == "beta"


def test_slurmdbd_files_keep_the_password_private(tmp_path: Path) -> None:
    database = MariaDBServer(tmp_path / "mariadb", port=3307, password="f00d" * 8)
    dbd = SlurmDBD(tmp_path / "dbd", tmp_path / "munge.socket", database, port=6819)
    dbd.write_config()
    private = dbd.conf_dir / "slurmdbd.conf"
    info = private.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == 0  # slurmdbd's own demand
    conf = settings(private.read_text())
    assert conf["StoragePass"] == "f00d" * 8 and conf["StoragePort"] == "3307"
    assert conf["StorageType"] == "accounting_storage/mysql" and conf["DbdPort"] == "6819"
    assert conf["CommunicationParameters"] == "NoInAddrAny"  # loopback only, not 0.0.0.0
    client = dbd.conf_dir / "slurm.conf"
    assert stat.S_IMODE(client.stat().st_mode) == 0o644
    assert "f00d" not in client.read_text()
    assert dbd.address == (settings(client.read_text())["AccountingStorageHost"], 6819)


def item(marker: str | None = None, fixtures: tuple[str, ...] = ()) -> SimpleNamespace:
    """What :func:`accounting_wanted` reads of a collected test."""
    return SimpleNamespace(
        get_closest_marker=lambda name: object() if name == marker else None,
        fixturenames=fixtures,
    )


@pytest.mark.parametrize(
    ("items", "wanted"),
    [
        ([item("integration", ("slurm_sites",))], False),
        ([item(), item("accounting")], True),
        ([item(fixtures=("hub", ACCOUNTED_FIXTURE))], True),
        ([], False),
    ],
)
def test_accounting_starts_only_for_tests_that_need_it(
    items: list[SimpleNamespace], wanted: bool
) -> None:
    assert accounting_wanted(items) is wanted  # type: ignore[arg-type]
