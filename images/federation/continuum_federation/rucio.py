"""A real Rucio server for the demo and the tests: Rucio 41 on SQLite under waitress.

The ``rucio`` server package pins older SQLAlchemy, urllib3, packaging and jsonschema than the
hub needs, so it lives in its own environment (:data:`RUCIO_VENV`, made by ``images/setup.sh``);
this module talks to it through processes (the bootstrap, the WSGI server, the judge-cleaner)
and through ``rucio-clients`` from the hub's environment (everything else, over REST, as root).
A private memcached (Debian's) holds Rucio's cache: without one, Rucio recomputes its RSE
lookups and replica sorting for every file of a listing.

:class:`RucioServer` keeps everything in a private folder (0700): ``rucio.cfg`` (policy
``generic``, no ``traces`` endpoint: it needs a message broker), ``alembic.ini``, the SQLite
database, the root and catalogue-service passwords (0600), and one POSIX folder per RSE.  Its
bootstrap makes the root account, the demo users' accounts (``alice``, ``bob``, ``dave``) with
scopes ``user.<name>``, the scopes ``hep`` and ``radio``, and the RSEs of :data:`DEMO_RSES`
with Rucio's ``site`` attribute set to the registry's site, quotas for every account on every
RSE, and the catalogue service's identity (``userpass``, :data:`SERVICE_IDENTITY`) mapped to
every user account, so the service acts *as* each user's account (see the README).

Why SQLite: free-form DID metadata needs PostgreSQL, but the demo's metadata fits Rucio's fixed
columns (``project``, ``datatype``, ``campaign``, ``run_number``, ``stream_name``), and SQLite
starts in a second; visibility comes from the catalogue source's scope → VO map, not metadata.

No transfers run here (the conveyor needs FTS3): a rule to an RSE without the data stays
``REPLICATING``, which is the truth.  :meth:`RucioServer.run_judge_cleaner` runs Rucio's own
judge-cleaner once (it removes expired rules).
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from .hub import read_or_create_secret
from .process import ManagedProcess, ProcessError, Service, free_port, log_tail, port_open

RUCIO_VENV = Path(os.environ.get("CONTINUUM_RUCIO_VENV", "/opt/continuum-hub/rucio-venv"))
#: RSE → (registry site, RSE type)
DEMO_RSES: Mapping[str, tuple[str, str]] = {
    "ALPHA_DISK": ("alpha", "DISK"),
    "BETA_DISK": ("beta", "DISK"),
    "BETA_TAPE": ("beta", "TAPE"),
}
DEMO_ACCOUNTS = ("alice", "bob", "dave")
DEMO_SCOPES = ("hep", "radio")
#: how the catalogue sees the demo scopes: hep public, radio private to its VO
DEMO_SCOPE_RULES: Mapping[str, Mapping[str, str]] = {
    "hep": {"vo": "vo.hep.example", "visibility": "public"},
    "radio": {"vo": "vo.radio.example", "visibility": "vo"},
}
#: the catalogue service's Rucio identity (userpass), mapped to every user account
SERVICE_IDENTITY = "continuum-catalogue"
#: files per add_replicas / attach call: Rucio takes up to 1,000, but on SQLite one insert of
#: that many DIDs (about 40 columns each) passes SQLite's 32,766 bound variables
BATCH = 500
#: demo datasets: (scope, name, RSEs holding it, metadata, files)
DEMO_DATASETS: tuple[tuple[str, str, tuple[str, ...], dict[str, Any], int], ...] = (
    (
        "hep",
        "higgs-candidates-2024",
        ("ALPHA_DISK",),
        {"project": "hep-demo", "datatype": "AOD"},
        4,
    ),
    ("hep", "zmumu-calibration-2023", ("ALPHA_DISK", "BETA_DISK"), {"datatype": "NTUP"}, 3),
    ("radio", "radio-cyga-imaging-2024", ("BETA_DISK", "BETA_TAPE"), {"datatype": "MS"}, 3),
    ("radio", "radio-pulsar-survey-2025", ("ALPHA_DISK", "BETA_TAPE"), {"datatype": "FITS"}, 2),
)

_BOOTSTRAP = """
from rucio.db.sqla.util import build_database, create_base_vo, create_root_account
build_database(); create_base_vo(); create_root_account()
"""


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


class RucioServer(Service):
    """The Rucio server on 127.0.0.1, bootstrapped on its first start in ``state_dir``.

    Parameters
    ----------
    state_dir
        Private folder (created 0700) for the configuration, database, secrets and RSEs; a
        second start reuses what is there.
    port
        TCP port; a free one when ``None``.
    rses
        RSE name → (registry site, ``DISK``/``TAPE``).
    demo_data
        Whether the first start registers :data:`DEMO_DATASETS` (files written to the RSEs).
    venv
        The environment with the ``rucio`` server package and ``waitress``.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        port: int | None = None,
        rses: Mapping[str, tuple[str, str]] = DEMO_RSES,
        accounts: Sequence[str] = DEMO_ACCOUNTS,
        demo_data: bool = True,
        venv: Path = RUCIO_VENV,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.port = port if port is not None else free_port()
        self.rses = dict(rses)
        self.accounts = tuple(accounts)
        self.demo_data = demo_data
        self.venv = Path(venv)
        self.config_path = self.state_dir / "rucio.cfg"
        self.cache_port = free_port()
        self._process: ManagedProcess | None = None
        self._cache: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The server's (and its authentication's) URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_password_file(self) -> Path:
        """The catalogue service identity's password (0600)."""
        return self.state_dir / "service-password"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "rucio.log"

    def rse_path(self, rse: str) -> Path:
        """The POSIX folder behind ``rse``."""
        return self.state_dir / "rse" / rse

    def _env(self) -> dict[str, str]:
        return {**os.environ, "RUCIO_CONFIG": str(self.config_path)}

    def _write_config(self) -> None:
        db = self.state_dir / "rucio.db"
        package = next((self.venv / "lib").glob("python3*/site-packages/rucio"), None)
        if package is None or not (self.venv / "bin" / "waitress-serve").exists():
            raise ProcessError(f"the rucio server is not installed in {self.venv}: run setup.sh")
        root_password = read_or_create_secret(self.state_dir / "root-password")
        alembic = self.state_dir / "alembic.ini"
        _write_private(
            alembic,
            f"[alembic]\nscript_location = {package}/db/sqla/migrate_repo\n"
            f"sqlalchemy.url = sqlite:///{db}\n"
            "[loggers]\nkeys = root\n[handlers]\nkeys = console\n[formatters]\nkeys = generic\n"
            "[logger_root]\nlevel = WARN\nhandlers = console\n"
            "[handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nformatter = generic\n"
            "[formatter_generic]\nformat = %%(levelname)s %%(name)s %%(message)s\n",
        )
        # bootstrap identities other than root's userpass are left empty: Rucio's defaults name
        # CERN's certificates and keys
        empty = "".join(
            f"{kind}_{what} =\n"
            for kind in ("x509", "gss", "ssh")
            for what in ("identity", "email")
        )
        _write_private(
            self.config_path,
            "[common]\nloglevel = INFO\n"
            f"[cache]\nurl = 127.0.0.1:{self.cache_port}\n"
            f"[database]\ndefault = sqlite:///{db}\n"
            f"[alembic]\ncfg = {alembic}\n"
            "[bootstrap]\nuserpass_identity = root-admin\n"
            f"userpass_pwd = {root_password}\nuserpass_email = root@localhost\n{empty}"
            "[policy]\npermission = generic\nschema = generic\nlfn2pfn_algorithm_default = hash\n"
            # no `traces`: it needs a message broker
            "[api]\nendpoints = accounts, auth, config, dids, identities, locks, "
            "meta_conventions, ping, replicas, requests, rses, rules, scopes\n",
        )

    def _run(self, name: str, argv: list[str], timeout: float = 120) -> None:
        with open(self.state_dir / f"{name}.log", "ab") as log:
            result = subprocess.run(
                argv,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if result.returncode != 0:
            raise ProcessError(
                f"{name} failed ({result.returncode}):\n{log_tail(self.state_dir / f'{name}.log')}"
            )

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as answer:  # noqa: S310 - fixed http URL on 127.0.0.1
                return answer.status == 200
        except OSError:
            return False

    def start(self, timeout: float = 60.0) -> Self:
        """Write the configuration, bootstrap on the first start, serve, set up the demo."""
        if self._process is not None and self._process.running:
            return self
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        self._write_config()
        fresh = not (self.state_dir / "rucio.db").exists()
        if fresh:
            self._run("bootstrap", [str(self.venv / "bin" / "python"), "-c", _BOOTSTRAP])
        argv = [
            str(self.venv / "bin" / "waitress-serve"),
            "--host",
            "127.0.0.1",
            f"--port={self.port}",
            "--threads=8",
            "rucio.web.rest.flaskapi.v1.main:application",
        ]
        process = ManagedProcess("rucio", argv, self.state_dir, env=self._env())
        # Rucio caches RSE lookups and replica sorting in memcached; without one, listing the
        # replicas of 5,000 files recomputes them per file (a minute instead of seconds)
        cache = ManagedProcess(
            "memcached",
            [
                "memcached",
                "-u",
                "nobody",
                "-l",
                "127.0.0.1",
                "-p",
                str(self.cache_port),
                "-U",
                "0",
                "-m",
                "64",
            ],
            self.state_dir,
        )
        self._process, self._cache = process, cache
        try:
            cache.start_ready(lambda: port_open(self.cache_port), timeout)
            process.start_ready(self._ping, timeout)
            if not (self.state_dir / "set-up").exists():
                self._set_up()
                (self.state_dir / "set-up").touch()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (idempotent); the state folder stays."""
        for process in (self._process, self._cache):
            if process is not None:
                process.stop()
        self._process = self._cache = None

    def source_settings(self, name: str = "rucio") -> dict[str, Any]:
        """The catalogue's ``rucio`` source on this server (``CatalogueService.sources``)."""
        return {
            "name": name,
            "kind": "rucio",
            "label": "Rucio (demo)",
            "url": self.url,
            "password_file": str(self.service_password_file),
            "scopes": {scope: dict(rule) for scope, rule in DEMO_SCOPE_RULES.items()},
        }

    def client(self, account: str = "root") -> Any:
        """A ``rucio.client.Client`` for ``account`` (root's identity or the service's)."""
        from rucio.client import Client

        if account == "root":
            creds = {
                "username": "root-admin",
                "password": read_or_create_secret(self.state_dir / "root-password"),
            }
        else:
            creds = {
                "username": SERVICE_IDENTITY,
                "password": read_or_create_secret(self.service_password_file),
            }
        return Client(
            rucio_host=self.url,
            auth_host=self.url,
            account=account,
            auth_type="userpass",
            creds=creds,
            timeout=60,
        )

    def _set_up(self) -> None:
        """Accounts, scopes, RSEs (POSIX, ``site`` attribute), quotas, the service identity."""
        root = self.client()
        service_password = read_or_create_secret(self.service_password_file)
        for account in self.accounts:
            root.add_account(account, "USER", f"{account}@continuum.example")
            root.add_scope(account, f"user.{account}")
            root.add_identity(
                account,
                SERVICE_IDENTITY,
                "USERPASS",
                email="catalogue@continuum.example",
                default=False,
                password=service_password,
            )
        for scope in DEMO_SCOPES:
            root.add_scope("root", scope)
        for rse, (site, rse_type) in self.rses.items():
            folder = self.rse_path(rse)
            folder.mkdir(parents=True, exist_ok=True)
            root.add_rse(rse, deterministic=True, rse_type=rse_type)
            every = {"read": 1, "write": 1, "delete": 1}
            root.add_protocol(
                rse,
                {
                    "scheme": "file",
                    "hostname": "",
                    "port": 0,
                    "prefix": f"{folder}/",
                    "impl": "rucio.rse.protocols.posix.Default",
                    "domains": {
                        "lan": every,
                        "wan": {**every, "third_party_copy_read": 1, "third_party_copy_write": 1},
                    },
                },
            )
            root.add_rse_attribute(rse, "site", site)
            for account in self.accounts:
                root.set_local_account_limit(account, rse, 10**13)
        if self.demo_data:
            for scope, name, rses, meta, count in DEMO_DATASETS:
                files = [
                    (f"{name}.{i:03d}.dat", f"{name} part {i}\n".encode()) for i in range(count)
                ]
                self.add_dataset(scope, name, meta)
                self.add_files(scope, name, files, rses)

    def add_dataset(self, scope: str, name: str, meta: Mapping[str, Any] | None = None) -> None:
        """An empty dataset with fixed-column metadata (``datatype``, ``project``, …)."""
        root = self.client()
        root.add_dataset(scope, name)
        for key, value in (meta or {}).items():
            root.set_metadata(scope, name, key, value)

    def add_files(
        self,
        scope: str,
        dataset: str,
        files: Iterable[tuple[str, bytes]],
        rses: Sequence[str],
        write: bool = True,
    ) -> None:
        """``files`` (name, content) written to and registered at each of ``rses``, attached
        to ``dataset``.

        Files go where Rucio's deterministic path says (asked of the server once per batch);
        replicas and attachments are registered in batches of :data:`BATCH`.  ``write=False``
        registers without writing (tests of the catalogue alone: thousands of small files cost
        more file-system time than everything else).
        """
        root = self.client()
        items = list(files)
        for start in range(0, len(items), BATCH):
            chunk = items[start : start + BATCH]
            dids = [
                {
                    "scope": scope,
                    "name": fname,
                    "bytes": len(data),
                    "adler32": f"{zlib.adler32(data):08x}",
                }
                for fname, data in chunk
            ]
            for rse in rses if write else ():
                lfns = [f"{scope}:{fname}" for fname, _ in chunk]
                pfns = root.lfns2pfns(rse, lfns, operation="write")
                for fname, data in chunk:
                    path = Path(pfns[f"{scope}:{fname}"].removeprefix("file://"))
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
            for rse in rses:
                root.add_replicas(rse, dids)
            root.attach_dids(scope, dataset, [{"scope": scope, "name": d["name"]} for d in dids])

    def run_judge_cleaner(self) -> None:
        """Run Rucio's judge-cleaner once: expired rules are removed (their history stays)."""
        self._run("judge-cleaner", [str(self.venv / "bin" / "rucio-judge-cleaner"), "--run-once"])

    def __repr__(self) -> str:
        return f"<RucioServer {self.url}>"
