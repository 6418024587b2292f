"""Hub-managed services that Continuum Hub adds to every deployment.

Added by :func:`add_managed_services` after all configuration layers are loaded, so a
deployment's own ``JupyterHub.services`` / ``load_roles`` (which replace lists, not extend them)
keep them.  Configured through the ``CullerService`` section.  The helpers below serve every
service added that way (the Dask Gateway's, the workflow and catalogue services'
``add_*_service``): the service entry, the servers' environment, the hub's public URL, and
:func:`grant_service_access` (users and servers' tokens may call a service), and
:func:`kept_ports` (a service's ports kept across the hub's restarts).

:class:`ManagedService` is the shared hub side of a Continuum service process run as
``python -m PACKAGE`` (workflows, catalogue): its options (address, kept port, state folder),
the service entry with the process's config in its environment, its role on the hub's API,
the users' access scope and the servers' ``CONTINUUM_<NAME>_URL``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, Int, Integer, Unicode
from traitlets.config import Config, Configurable

from .workshops.usable import events_environment

#: a ``${VAR}`` reference in the site registry
ENV_REFERENCE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")
CULLER = "idle-culler"
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


class CullerService(Configurable):
    """``jupyterhub-idle-culler`` as a managed service: idle servers are stopped, and stopping a
    server cancels its batch job, so no Slurm job outlives an abandoned session."""

    enabled = Bool(True, config=True, help="Run the idle culler.")
    timeout = Int(
        3600,
        config=True,
        help="Seconds without activity after which a server is stopped (its job cancelled).",
    )
    cull_every = Int(
        0,
        config=True,
        help="Seconds between the culler's checks; 0 means half of ``timeout``.",
    )
    max_age = Int(
        0,
        config=True,
        help="Seconds after which a server is stopped even if active; 0 means never "
        "(a job's walltime ends it anyway).",
    )

    def service(self) -> dict[str, Any]:
        """The ``JupyterHub.services`` entry."""
        every = self.cull_every or max(1, self.timeout // 2)
        return {
            "name": CULLER,
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={self.timeout}",
                f"--cull-every={every}",
                f"--max-age={self.max_age}",
            ],
        }


def add_managed_services(c: Config) -> None:
    """Append the managed services and their roles to ``c`` (idempotent)."""
    culler = CullerService(config=c)
    if not culler.enabled:
        return
    hub = c.JupyterHub
    services = list(hub.services) if "services" in hub else []
    roles = list(hub.load_roles) if "load_roles" in hub else []
    if not any(s.get("name") == CULLER for s in services):
        services.append(culler.service())
    if not any(r.get("name") == CULLER for r in roles):
        roles.append({"name": CULLER, "scopes": CULLER_SCOPES, "services": [CULLER]})
    hub.services = services
    hub.load_roles = roles


def add_service_entry(c: Config, entry: dict[str, Any]) -> bool:
    """Append a managed service to ``JupyterHub.services``; ``False`` if one of its name is
    there already (the configuration loaded twice)."""
    hub = c.JupyterHub
    services = list(hub.services) if "services" in hub else []
    if any(s.get("name") == entry["name"] for s in services):
        return False
    hub.services = [*services, entry]
    return True


def add_server_environment(c: Config, environment: dict[str, str]) -> None:
    """Variables for every server's environment (the deployment's own values win)."""
    current = dict(c.Spawner.environment) if "environment" in c.Spawner else {}
    c.Spawner.environment = {**environment, **current}


def resolver_name(c: Config) -> str | None:
    """``SiteSpawner.account_resolver_class`` as an import string (a service's process maps
    hub users to site accounts as the hub's spawner does), or ``None`` where it is not set."""
    resolver = c.SiteSpawner.get("account_resolver_class")
    if resolver is not None and not isinstance(resolver, str):
        resolver = f"{resolver.__module__}.{resolver.__qualname__}"
    return resolver


def copied_sections(c: Config, names: tuple[str, ...]) -> dict[str, Any]:
    """The sections ``names`` of ``c`` that are set, as JSON-able dicts for a process."""
    return {name: json.loads(json.dumps(dict(c[name]))) for name in names if name in c}


#: the account mapping's sections, which a service's process maps hub users with
RESOLVER_SECTIONS = ("AccountResolver", "AccountMapper", "WorkshopAccountMapper")


def resolver_sections(c: Config) -> dict[str, Any]:
    """The hub's account mapping sections for a service's process.  Workshop guests are found
    there by their guest-pool lease (the events' database stays the hub's)."""
    sections = copied_sections(c, RESOLVER_SECTIONS)
    sections.setdefault("WorkshopAccountMapper", {})["guest_lookup"] = "leases"
    return sections


def registry_environment(c: Config) -> dict[str, str]:
    """The values of the site registry's ``${VAR}`` references (e.g. each local site's
    ``SLURM_CONF``), which a service's process needs to read the same registry, and where the
    workshop events are (a running event's site is its participants' too:
    :mod:`continuum_hub.workshops.usable`)."""
    text = Path(c.SiteSpawner.registry_path).read_text()
    names = sorted(set(ENV_REFERENCE.findall(text)))
    found = {name: os.environ[name] for name in names if name in os.environ}
    return {**found, **events_environment(c)}


def hub_public_url(hub: Config) -> str:
    """The hub's public URL from its config section: ``public_url``, else ``bind_url``."""
    base = hub.public_url if "public_url" in hub else hub.get("bind_url", "")
    return str(base or "").rstrip("/")


#: JupyterHub's `server` role, which a deployment's Spawner.server_token_scopes replaces
SERVER_ROLE_SCOPES = ["users:activity!user", "access:servers!server"]


def grant_service_access(c: Config, scope: str) -> None:
    """Let every user, and the token in every server, use a service (``scope`` is its
    ``access:services!service=NAME``).

    Users get it through ``JupyterHub.extra_user_scopes``; servers' tokens through the
    ``server`` role and ``Spawner.server_token_scopes`` (whichever decides; a callable
    ``server_token_scopes`` is the deployment's own and left alone).
    """
    hub = c.JupyterHub
    scopes = set(hub.extra_user_scopes) if "extra_user_scopes" in hub else set()
    hub.extra_user_scopes = scopes | {scope}
    roles = [dict(r) for r in hub.load_roles] if "load_roles" in hub else []
    server = next((r for r in roles if r.get("name") == "server"), None)
    if server is None:
        roles.append({"name": "server", "scopes": [*SERVER_ROLE_SCOPES, scope]})
    elif scope not in server.get("scopes", []):
        server["scopes"] = [*server.get("scopes", SERVER_ROLE_SCOPES), scope]
    hub.load_roles = roles
    spawner = c.Spawner
    token_scopes = spawner.server_token_scopes if "server_token_scopes" in spawner else None
    if not callable(token_scopes):
        token_scopes = list(token_scopes or SERVER_ROLE_SCOPES)
        if scope not in token_scopes:
            token_scopes.append(scope)
        spawner.server_token_scopes = token_scopes


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now (as they do: ``SO_REUSEADDR``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def kept_ports(path: Path | None, names: Sequence[str], host: str = "127.0.0.1") -> dict[str, int]:
    """Ports by name for a service, the same after a restart of the hub while they are free.

    The ports saved in ``path`` (a JSON file, e.g. in the service's state folder) are used
    again, so what learned the service's address before a restart (servers'
    ``CONTINUUM_WORKFLOWS_URL``, running clusters' schedulers) reaches it after; a port taken,
    missing or invalid is replaced by a free one and the choice saved (atomic rename; the
    folder made 0700 when missing; the file 0600, as every file of a service's state).
    Without ``path``: free ports, saved nowhere.
    """
    saved: Any = {}
    if path is not None and path.is_file():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            saved = {}  # unreadable: choose anew
    ports = {}
    for name in names:
        port = saved.get(name) if isinstance(saved, dict) else None
        ok = isinstance(port, int) and 1024 <= port <= 65535 and port_free(port, host)
        ports[name] = port if ok else free_port(host)
    if path is not None and ports != saved:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        # created 0600, never widened by the umask; fchmod for a leftover temporary file
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            os.fchmod(fd, 0o600)
            out.write(json.dumps(ports))
        temporary.replace(path)
    elif path is not None and path.is_file():
        path.chmod(0o600)  # a file kept from before this rule (it was 0644)
    return ports


def add_role(c: Config, name: str, scopes: Sequence[str], service: str) -> None:
    """Give ``service`` the role ``name`` with ``scopes`` on the hub's API (once)."""
    hub = c.JupyterHub
    roles = [dict(r) for r in hub.load_roles] if "load_roles" in hub else []
    if not any(r.get("name") == name for r in roles):
        roles.append({"name": name, "scopes": list(scopes), "services": [service]})
    hub.load_roles = roles


#: where a managed service's port is kept across the hub's restarts (in its state folder)
PORT_FILE = "service-port.json"


class ManagedService(Configurable):
    """The hub side of a Continuum service process (``python -m <module>``) behind the proxy.

    Subclasses name the service (:attr:`service_name`, :attr:`module`, :attr:`config_env`,
    :attr:`url_env`, :attr:`role_scopes`) and build the process's traitlets config
    (:meth:`process_config`); :meth:`add_to` does the rest.  The service listens on
    ``ip:port`` — ``port``, else the one kept in ``state_dir/service-port.json`` while it is
    free (:func:`kept_ports`), so servers started before a restart of the hub still find it.
    """

    #: the JupyterHub service's name (``/services/<name>/``)
    service_name = ""
    #: the process: ``python -m <module>``
    module = ""
    #: the environment variable carrying the process's config (JSON)
    config_env = ""
    #: the servers' environment variable naming the service's URL
    url_env = ""
    #: the service's role on the hub's API (named ``<name>-service``; none when empty)
    role_scopes: tuple[str, ...] = ()

    enabled = Bool(True, config=True, help="Run this service as a hub-managed service.")
    start_timeout = Integer(
        120,
        config=True,
        help="""Seconds the hub waits for the service to answer when it starts it (JupyterHub's
        ``Service.timeout``, 30 by default, after which the hub gives up and exits: too short
        for a busy machine).""",
    )
    ip = Unicode("127.0.0.1", config=True, help="Address the service's REST API listens on.")
    port = Integer(
        0,
        config=True,
        help="""Port of the REST API (the hub's proxy forwards /services/<name>/ to it).  0: the
        port kept in ``state_dir/service-port.json`` while it is free, else a free one (saved
        there), so that servers started before a restart of the hub find the service.""",
    )
    connect_host = Unicode(
        "127.0.0.1",
        config=True,
        help="Host name by which the hub's proxy and users' servers reach the service.",
    )
    state_dir = Unicode(
        "",
        config=True,
        help="Folder (0700) of the service's state.  Default: <name> in the hub's working folder.",
    )
    extra_service_config = Dict(
        {},
        config=True,
        help="""More traitlets config for the service process, ``{section: {name: value}}``
        (e.g. ``WorkflowLimits``, a catalogue source kind's section); applied last.""",
    )

    @property
    def access_scope(self) -> str:
        """The scope a token needs to call the service."""
        return f"access:services!service={self.service_name}"

    @property
    def state_path(self) -> str:
        """The state folder, absolute (default: the service's name in the hub's folder)."""
        return os.path.abspath(self.state_dir or os.path.join(os.getcwd(), self.service_name))

    def choose_port(self) -> int:
        """The configured port, else the kept one (:data:`PORT_FILE`): chosen once, so the
        proxy's route and the servers' environment agree, and the same after a restart."""
        if not self.port:
            path = Path(self.state_path) / PORT_FILE
            self.port = kept_ports(path, ("port",), self.ip)["port"]
        return self.port

    @property
    def url(self) -> str:
        """Where the hub's proxy and the servers reach the service."""
        return f"http://{self.connect_host}:{self.port}"

    def registry_path(self, c: Config) -> str:
        """The site registry's path (absolute); the service cannot run without it."""
        registry = c.SiteSpawner.registry_path if "registry_path" in c.SiteSpawner else ""
        if not registry:
            name = type(self).__name__
            raise SystemExit(f"{name} needs the site registry (SiteSpawner.registry_path)")
        return os.path.abspath(registry)

    def process_config(self, c: Config) -> dict[str, Any]:
        """The service process's traitlets config (JSON-able; no secrets)."""
        raise NotImplementedError

    def base_settings(self, c: Config) -> dict[str, Any]:
        """The settings every service process has (``continuum_hub.service_api.ServiceSettings``):
        address, state folder, database URL (``db_url`` where the subclass has it), registry."""
        return {
            "ip": self.ip,
            "port": self.port,
            "state_dir": self.state_path,
            "db_url": getattr(self, "db_url", ""),
            "registry_path": self.registry_path(c),
        }

    def with_sections(
        self, c: Config, config: dict[str, Any], sections: tuple[str, ...]
    ) -> dict[str, Any]:
        """``config`` with the hub's ``sections`` that are set (e.g. limits), the account
        mapping's (:func:`resolver_sections`) and :attr:`extra_service_config` applied last."""
        config.update(copied_sections(c, sections))
        config.update(resolver_sections(c))
        for section, values in self.extra_service_config.items():
            config.setdefault(section, {}).update(values)
        return config

    def service(self, c: Config) -> dict[str, Any]:
        """The ``JupyterHub.services`` entry."""
        environment = {
            self.config_env: json.dumps(self.process_config(c)),
            **registry_environment(c),
        }
        return {
            "name": self.service_name,
            "url": self.url,
            "command": [sys.executable, "-m", self.module],
            "cwd": os.getcwd(),
            "environment": environment,
            "timeout": self.start_timeout,
        }

    def server_environment(self) -> dict[str, str]:
        """Where servers (lab extensions, command-line tools) find the service."""
        return {self.url_env: f"{self.url}/services/{self.service_name}/"}

    def add_to(self, c: Config) -> bool:
        """Add the service, its role, the users' scope and the servers' environment to ``c``;
        ``False`` when disabled or already added (the configuration loaded twice)."""
        if not self.enabled:
            return False
        self.choose_port()
        if not add_service_entry(c, self.service(c)):
            return False
        if self.role_scopes:
            add_role(c, f"{self.service_name}-service", self.role_scopes, self.service_name)
        grant_service_access(c, self.access_scope)
        add_server_environment(c, self.server_environment())
        return True
