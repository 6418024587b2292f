"""The software catalogue source reaching a site's Lmod over SSH (its login node), as it
reaches every site: through ``transport_for`` — a real OpenSSH server (``sshd``) and Lmod's
real ``spider`` on the demo module trees."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from continuum_federation.modules import write_module_trees
from continuum_hub.catalogue.model import make_query
from continuum_hub.catalogue.sources.software import SoftwareSource
from fixtures.sshd import LocalSSHD

pytestmark = [pytest.mark.integration, pytest.mark.catalogue]


def ssh_registry(path: Path, sshd: LocalSSHD, modules: Path) -> Path:
    connection = sshd.connection(service_user="bob")
    site = {
        "name": "gamma",
        "scheduler": "slurm",
        "connection": {
            "transport": "ssh",
            "host": connection.host,
            "port": connection.port,
            "identity_file": connection.identity_file,
            "known_hosts": connection.known_hosts,
            "service_user": "bob",
        },
        "access": {"groups": ["vo.hep.example"]},
        "lmod": {"modulepath": [str(modules / "beta")]},
        "partitions": [
            {"name": "gpu", "max_cores": 4, "max_memory_gb": 8, "max_gpus": 1,
             "gpu_type": "a100", "max_walltime": "1:00:00"}
        ],
    }  # fmt: skip
    path.write_text(yaml.safe_dump({"sites": [site]}))
    return path


@pytest.fixture
def gamma_registry(sshd: LocalSSHD, federation_root: Path, tmp_path: Path) -> Path:
    """A registry of one SSH site, ``gamma``, whose Lmod trees are the demo's (written where
    the login node's ``bob`` can read them)."""
    modules = federation_root / "ssh-site-modules"
    write_module_trees(modules)
    return ssh_registry(tmp_path / "sites.yaml", sshd, modules)


async def test_spider_over_ssh(gamma_registry: Path) -> None:
    source = SoftwareSource(name="software", registry_path=str(gamma_registry), spider_timeout=30)
    health = await source.health()
    assert health.ok and not health.message, health
    page = await source.search(make_query("cuda gpu a100", groups=["vo.hep.example"]))
    assert [e.id for e in page.entries] == ["software:gamma/module/cuda/12.4"]
    assert page.entries[0].metadata["resources"]["gpu_types"] == ["a100"]
