"""The demo hub keeps its Dask Gateway ports across restarts (``continuum_federation.hub``)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from continuum_federation.hub import (
    GATEWAY_PORT_NAMES,
    GATEWAY_PORTS_FILE,
    LocalHub,
    gateway_ports,
)

pytestmark = pytest.mark.gateway


def test_ports_are_saved_and_used_again_while_free(tmp_path: Path) -> None:
    path = tmp_path / "hub" / "gateway-ports.json"
    first = gateway_ports(path)
    assert set(first) == set(GATEWAY_PORT_NAMES)
    assert len(set(first.values())) == 3
    assert json.loads(path.read_text()) == first
    assert gateway_ports(path) == first  # a restart finds them again


def test_a_taken_port_is_replaced_and_the_choice_saved(tmp_path: Path) -> None:
    path = tmp_path / "gateway-ports.json"
    first = gateway_ports(path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first["tcp_port"]))
        taken.listen()
        second = gateway_ports(path)
    assert second["tcp_port"] != first["tcp_port"]
    assert (second["port"], second["api_port"]) == (first["port"], first["api_port"])
    assert json.loads(path.read_text()) == second


@pytest.mark.parametrize(
    "content", ["not json", "[1, 2]", '{"port": "80", "tcp_port": 70000}'], ids=str
)
def test_a_bad_file_gives_new_ports(tmp_path: Path, content: str) -> None:
    path = tmp_path / "gateway-ports.json"
    path.write_text(content)
    ports = gateway_ports(path)
    assert all(isinstance(p, int) and 1024 <= p <= 65535 for p in ports.values())
    assert json.loads(path.read_text()) == ports


def test_the_demo_hub_keeps_its_ports_and_test_hubs_do_not(tmp_path: Path) -> None:
    def hub(keep: bool) -> LocalHub:
        return LocalHub(
            tmp_path / "hub", tmp_path, issuer="http://127.0.0.1:1", client_id="c",
            client_secret="s", site_confs={}, keep_gateway_ports=keep,
        )  # fmt: skip

    demo = hub(keep=True)
    assert hub(keep=True).gateway_ports == demo.gateway_ports  # `continuum-hub demo` again
    assert (tmp_path / "hub" / GATEWAY_PORTS_FILE).is_file()
    assert hub(keep=False).gateway_ports != demo.gateway_ports  # tests: new ones
