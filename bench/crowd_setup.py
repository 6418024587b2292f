"""crowd_setup: the federation and the two hubs of the crowd benchmarks (see :mod:`crowd`).

:func:`federation` starts a private munge, real Slurm sites (their nodes declared large enough
for every user's job), the OpenID provider with generated users (:func:`generated_people`; Unix
accounts of the same name, created if missing and kept) and yields a :class:`Federation` whose
:meth:`~Federation.hub` makes the two hubs that differ only in their spawner: ``site``
(``continuum-site``, servers are Slurm jobs) and ``local`` (JupyterHub's
``LocalProcessSpawner``).
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the tests' browser-like sign-in helpers

from continuum_federation.accounts import ensure_unix_user  # noqa: E402
from continuum_federation.idp import OpenIDProvider, hub_client, with_passwords  # noqa: E402
from continuum_federation.munge import MungeDaemon  # noqa: E402
from continuum_federation.process import free_port  # noqa: E402
from continuum_federation.slurm import LocalSlurmCluster, load_cluster_specs  # noqa: E402
from fixtures.hub import admin_hub  # noqa: E402

HUBS = ("site", "local")
#: the page that proves a JupyterLab server answers, and the one of a lean server (a core
#: ``jupyter_server`` page behind its login, present without any extension or file)
LAB_PAGE = "/user/{user}/lab"
LEAN_PAGE = "/user/{user}/kernelspecs/python3/logo-64x64.png"


def generated_people(
    prefix: str, count: int, entitlements: Sequence[str], first: int = 1
) -> list[dict[str, Any]]:
    """Users ``<prefix>01`` … (three digits from 100 users on) holding ``entitlements``."""
    width = 3 if count >= 100 else 2
    return [
        {
            "username": f"{prefix}{number:0{width}d}",
            "name": f"Generated User {number}",
            "email": f"{prefix}{number:0{width}d}@continuum.example",
            "voperson_id": f"{prefix}{number:0{width}d}@id.continuum.example",
            "entitlements": list(entitlements),
        }
        for number in range(first, count + 1)
    ]


@dataclass
class Federation:
    """Started sites and provider of :func:`federation`; :meth:`hub` makes its hubs."""

    root: Path
    sites: dict[str, LocalSlurmCluster]
    idp: OpenIDProvider
    registry: Path
    ports: dict[str, int]

    def hub(self, name: str, extra: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
        """The (not started) hub ``name`` (``site`` or ``local``) with ``extra`` config."""
        config: dict[str, dict[str, Any]] = copy.deepcopy(dict(extra or {}))  # type: ignore[arg-type]
        if name == "local":
            config.setdefault("JupyterHub", {})["spawner_class"] = "localprocess"
        return admin_hub(
            self.root / name,
            REPO,
            self.idp,
            self.sites,
            self.ports[name],
            config,
            f"hub-{name}",
            self.registry,
        )


@contextlib.contextmanager
def federation(
    sites: Sequence[str], people: list[dict[str, Any]], jobs_per_site: int
) -> Iterator[Federation]:
    """Munge, the demo's Slurm ``sites`` (each node declared with ``jobs_per_site`` CPUs and
    2 GiB each), the provider with ``people`` (passwords made here) and a registry of those
    sites; everything in a throwaway folder, stopped and removed on exit."""
    if os.geteuid() != 0:
        sys.exit("run as root (starts Slurm daemons, creates the users' accounts)")
    people = with_passwords(people)
    for person in people:
        ensure_unix_user(person["username"])
    specs = load_cluster_specs(REPO / "images" / "slurm" / "clusters.yaml")
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="continuum-bench-")))
        root.chmod(0o755)  # jobs running as the users read slurm.conf below it
        munge = stack.enter_context(MungeDaemon(root / "munge"))
        started: dict[str, LocalSlurmCluster] = {}
        for name in sites:
            spec = copy.deepcopy(specs[name])
            for node in spec["nodes"]:  # declared: one core and 2 GiB per user's job
                node["cpus"] = max(node["cpus"], jobs_per_site)
                node["memory_mb"] = max(node["memory_mb"], 2048 * jobs_per_site + 1024)
            cluster = LocalSlurmCluster(name, spec, root / "slurm", munge.socket)
            started[name] = stack.enter_context(cluster)
        ports = {name: free_port() for name in HUBS}
        secret = os.urandom(16).hex()
        clients = [hub_client(port, secret, f"hub-{name}") for name, port in ports.items()]
        idp = stack.enter_context(OpenIDProvider(root / "idp", REPO, users=people, clients=clients))
        registry = root / "sites.yaml"  # the demo registry's entries of these sites
        demo = yaml.safe_load((REPO / "hub-config" / "sites.demo.yaml").read_text())
        demo["sites"] = [s for s in demo["sites"] if s["name"] in sites]
        registry.write_text(yaml.safe_dump(demo))
        yield Federation(root, started, idp, registry, ports)


def wait_running(hub: Any, timeout: float = 300.0) -> None:
    """Wait until ``hub`` has started its managed services (``/hub/health`` answers before).

    A crowd arriving while the services start is another experiment: on a loaded machine a
    service that does not answer within its ``timeout`` makes JupyterHub exit (found here).
    """
    log = Path(hub.state_dir) / "jupyterhub.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "JupyterHub is now running" in log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"{hub.url} did not start its services within {timeout:.0f} s")


def hub_errors(log: Path, lines: int = 30) -> str:
    """The first ``lines`` error lines (and tracebacks) of a hub's log."""
    found = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith(("[E ", "[ERROR", "Traceback", "    ")) or "Error:" in line
    ]
    return "\n".join(f"    | {line[:200]}" for line in found[:lines])


def keep_log(fed: Federation, name: str, logs: Path | None) -> None:
    """Copy hub ``name``'s logs (``<name>.log``; its proxy's, where it has its own, as
    ``<name>-proxy.log``) into ``logs`` (when given) before its folder is removed."""
    if logs is None:
        return
    logs.mkdir(parents=True, exist_ok=True)
    shutil.copy(fed.root / name / "jupyterhub.log", logs / f"{name}.log")
    if (fed.root / name / "proxy.log").exists():
        shutil.copy(fed.root / name / "proxy.log", logs / f"{name}-proxy.log")
