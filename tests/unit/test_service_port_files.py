"""Every port file of our services (``service-port.json``, ``gateway-ports.json``) is 0600.

The files are written by :func:`continuum_hub.services.kept_ports`: a new file is created 0600
whatever the umask, and a file kept from before (0644) is made 0600 when it is read again.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from continuum_federation.hub import GATEWAY_PORTS_FILE, gateway_ports
from continuum_hub.catalogue.service import CatalogueService
from continuum_hub.services import PORT_FILE
from continuum_hub.workflows.service import WorkflowService


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_services_port_files_are_private(tmp_path: Path):
    old = os.umask(0o022)  # the usual umask, which made these files 0644
    try:
        for kind in (CatalogueService, WorkflowService):
            state = tmp_path / kind.service_name
            service = kind(state_dir=str(state))
            port = service.choose_port()
            saved = state / PORT_FILE
            assert json.loads(saved.read_text()) == {"port": port}
            assert mode(saved) == 0o600 and mode(state) == 0o700
            assert not (state / f"{PORT_FILE}.tmp").exists()
        ports = gateway_ports(tmp_path / "hub" / GATEWAY_PORTS_FILE)
        assert mode(tmp_path / "hub" / GATEWAY_PORTS_FILE) == 0o600 and len(ports) == 3
    finally:
        os.umask(old)


def test_a_port_file_kept_from_before_becomes_private(tmp_path: Path):
    first = CatalogueService(state_dir=str(tmp_path)).choose_port()
    saved = tmp_path / PORT_FILE
    saved.chmod(0o644)  # written by an older release
    again = CatalogueService(state_dir=str(tmp_path)).choose_port()
    assert again == first and mode(saved) == 0o600
