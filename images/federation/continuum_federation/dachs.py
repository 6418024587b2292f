"""GAVO DaCHS as a throwaway IVOA TAP server with a demo table of radio observations.

DaCHS 2.7 (Debian's ``python3-gavo``: the ``dachs`` program) publishes tables through TAP, ADQL
and TAP_SCHEMA on PostgreSQL with pgsphere and q3c.  Here it runs entirely in a folder of its
own: a private PostgreSQL cluster (:class:`~.postgres.PostgresCluster`), its settings file
(``GAVOSETTINGS``; ``GAVOCUSTOM`` points at nothing so no ``~/.gavorc`` is read) with a private
``rootDir``, never /etc/gavo.rc or /var/gavo.  Start: ``dachs init`` against the cluster, the
demo resource descriptor (:data:`RESOURCE_DESCRIPTOR`: table ``radio.observations``) and a
small registry (:data:`REGISTRY_DESCRIPTOR`: RegTAP's ``rr`` tables listing this server's TAP
service) imported with ``dachs imp``, then ``dachs serve start --foreground`` on 127.0.0.1 and
a free port, ready once ``/tap/availability`` answers.  A fresh start takes about 8 s on an
idle machine.

DaCHS runs as the calling account (root in the tests and the demo): its ``gavo`` group and
user, which the Debian server package would create, are configured to be root's own, so the
machine gets no accounts and no system service.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from .postgres import PostgresCluster
from .process import ManagedProcess, ProcessError, Service, free_port, log_tail

#: the demo table's ADQL name (schema ``radio`` in the resource descriptor below)
DEMO_TABLE = "radio.observations"
#: rows of the demo table
DEMO_ROWS = 300

RESOURCE_DESCRIPTOR = """\
<resource schema="radio">
  <meta name="title">Continuum demo radio observations</meta>
  <meta name="description">Radio continuum observations of the Continuum Hub demo
    (generated): pointings, time spans, frequency bands and where the data lie.</meta>
  <meta name="creationDate">2026-01-01T00:00:00</meta>
  <meta name="subject">radio-astronomy</meta>
  <meta name="creator.name">Continuum Hub demo</meta>
  <table id="observations" onDisk="True" adql="True" primary="obs_id">
    <meta name="description">Radio observations: pointing centre, time span (MJD), frequency
      range (MHz), band, telescope, target and the URL of the observation's data.</meta>
    <index columns="ra,dec" kind="q3c"/>
    <column name="obs_id" type="text" ucd="meta.id;meta.main"
      description="Observation identifier"/>
    <column name="target" type="text" ucd="meta.id;src" description="Target name"/>
    <column name="ra" type="double precision" unit="deg" ucd="pos.eq.ra;meta.main"
      description="Right ascension (ICRS) of the pointing centre"/>
    <column name="dec" type="double precision" unit="deg" ucd="pos.eq.dec;meta.main"
      description="Declination (ICRS) of the pointing centre"/>
    <column name="t_min" type="double precision" unit="d" ucd="time.start;obs.exposure"
      description="Start of the observation (MJD)"/>
    <column name="t_max" type="double precision" unit="d" ucd="time.end;obs.exposure"
      description="End of the observation (MJD)"/>
    <column name="freq_min" type="double precision" unit="MHz" ucd="em.freq;stat.min"
      description="Lowest observed frequency"/>
    <column name="freq_max" type="double precision" unit="MHz" ucd="em.freq;stat.max"
      description="Highest observed frequency"/>
    <column name="band" type="text" ucd="instr.bandpass" description="Band name"/>
    <column name="telescope" type="text" ucd="instr.tel" description="Telescope"/>
    <column name="access_url" type="text" ucd="meta.ref.url"
      description="Where the observation's data are"/>
  </table>
  <data id="import">
    <sources>data/observations.csv</sources>
    <csvGrammar/>
    <make table="observations">
      <rowmaker idmaps="*"/>
    </make>
  </data>
</resource>
"""

#: a small IVOA registry (RegTAP 1.1's tables ``rr.resource``, ``rr.capability``,
#: ``rr.interface``, ``rr.res_subject``, the columns pyvo's ``regsearch`` reads) holding this
#: server's own TAP service, so that registry discovery runs against a real RegTAP schema
#: (DaCHS's RegTAP functions ``ivo_hasword``, ``ivo_string_agg`` serve it); Debian's DaCHS
#: ships no RegTAP resource of its own (GAVO's is a separate, unpackaged descriptor)
REGISTRY_DESCRIPTOR = """\
<resource schema="rr">
  <meta name="title">Continuum demo registry</meta>
  <meta name="description">The demo's resources in the Registry Relational Schema.</meta>
  <meta name="creationDate">2026-01-01T00:00:00</meta>
  <meta name="subject">virtual-observatory</meta>
  <table id="resource" onDisk="True" adql="True" primary="ivoid">
    <column name="ivoid" type="text"/><column name="res_type" type="text"/>
    <column name="created" type="timestamp"/><column name="short_name" type="text"/>
    <column name="res_title" type="text"/><column name="updated" type="timestamp"/>
    <column name="content_level" type="text"/><column name="res_description" type="text"/>
    <column name="reference_url" type="text"/><column name="creator_seq" type="text"/>
    <column name="content_type" type="text"/><column name="source_format" type="text"/>
    <column name="source_value" type="text"/><column name="res_version" type="text"/>
    <column name="region_of_regard" type="real"/><column name="waveband" type="text"/>
    <column name="rights" type="text"/><column name="rights_uri" type="text"/>
    <column name="harvested_from" type="text"/>
    <column name="validation_level" type="smallint" required="True"/>
  </table>
  <table id="capability" onDisk="True" adql="True">
    <column name="ivoid" type="text"/><column name="cap_index" type="smallint" required="True"/>
    <column name="cap_name" type="text"/><column name="cap_type" type="text"/>
    <column name="cap_description" type="text"/><column name="standard_id" type="text"/>
  </table>
  <table id="interface" onDisk="True" adql="True">
    <column name="ivoid" type="text"/><column name="intf_index" type="smallint" required="True"/>
    <column name="cap_index" type="smallint" required="True"/><column name="intf_type" type="text"/>
    <column name="intf_role" type="text"/><column name="std_version" type="text"/>
    <column name="query_type" type="text"/><column name="result_type" type="text"/>
    <column name="wsdl_url" type="text"/><column name="url_use" type="text"/>
    <column name="access_url" type="text"/><column name="mirror_url" type="text"/>
    <column name="authenticated_only" type="smallint" required="True"/>
  </table>
  <table id="res_subject" onDisk="True" adql="True">
    <column name="ivoid" type="text"/><column name="res_subject" type="text"/>
  </table>
  <data id="import_resource"><sources>data/resource.csv</sources><csvGrammar/>
    <make table="resource"><rowmaker idmaps="*"/></make></data>
  <data id="import_capability"><sources>data/capability.csv</sources><csvGrammar/>
    <make table="capability"><rowmaker idmaps="*"/></make></data>
  <data id="import_interface"><sources>data/interface.csv</sources><csvGrammar/>
    <make table="interface"><rowmaker idmaps="*"/></make></data>
  <data id="import_res_subject"><sources>data/res_subject.csv</sources><csvGrammar/>
    <make table="res_subject"><rowmaker idmaps="*"/></make></data>
</resource>
"""
#: the demo TAP service's identifier in the registry
DEMO_IVOID = "ivo://continuum.example/radio/tap"

#: radio sources of the demo (name, ra, dec in degrees, ICRS)
TARGETS = (
    ("Cas A", 350.8584, 58.8117),
    ("Cyg A", 299.8682, 40.7339),
    ("Tau A", 83.6331, 22.0145),
    ("Vir A", 187.7059, 12.3911),
    ("3C 196", 123.4001, 48.2174),
    ("3C 295", 212.8354, 52.2025),
    ("Her A", 252.7840, 4.9926),
    ("Hydra A", 139.5236, -12.0955),
    ("Fornax A", 50.6738, -37.2083),
    ("Pictor A", 79.9572, -45.7790),
)
#: band name → (telescope, lowest MHz, highest MHz)
BANDS = {
    "LBA": ("LOFAR", 30.0, 80.0),
    "HBA": ("LOFAR", 120.0, 168.0),
    "L": ("MeerKAT", 856.0, 1712.0),
    "C": ("VLA", 4000.0, 8000.0),
}


def demo_rows(count: int = DEMO_ROWS, seed: int = 11) -> list[dict[str, object]]:
    """The demo table's rows: the same ones for the same arguments (tests compare with them).

    Pointings scatter within 0.5° of a target; observations last 1-8 hours between MJD 60000
    and 60600 (2023-02-25 to 2024-10-17).
    """
    rng = random.Random(seed)  # noqa: S311 (demo data, reproducible on purpose)
    rows = []
    for number in range(count):
        target, ra, dec = TARGETS[number % len(TARGETS)]
        band = list(BANDS)[rng.randrange(len(BANDS))]
        telescope, low, high = BANDS[band]
        start = round(60000 + rng.uniform(0, 600), 5)
        obs_id = f"{telescope.lower()}-{number:04d}"
        rows.append(
            {
                "obs_id": obs_id,
                "target": target,
                "ra": round((ra + rng.uniform(-0.5, 0.5)) % 360, 5),
                "dec": round(dec + rng.uniform(-0.5, 0.5), 5),
                "t_min": start,
                "t_max": round(start + rng.uniform(1, 8) / 24, 5),
                "freq_min": low,
                "freq_max": high,
                "band": band,
                "telescope": telescope,
                "access_url": f"https://archive.radio.example/{telescope.lower()}/{obs_id}.ms",
            }
        )
    return rows


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a local URL)
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class DachsServer(Service):
    """Start and stop DaCHS with the demo table.

    Parameters
    ----------
    state_dir
        A folder for the server (its PostgreSQL cluster, settings, rootDir, logs); emptied on
        every start (the server is throwaway; a start takes seconds).
    port
        HTTP port on 127.0.0.1; a free one when ``None``.
    sync_timeout
        Seconds DaCHS lets one synchronous TAP query run (``[async]defaultExecTimeSync``), the
        server's own bound behind the clients' request timeouts.
    max_rows
        The most rows a query may return however large its MAXREC (``[async]hardMAXREC``).
    """

    state_dir: Path
    port: int | None = None
    sync_timeout: int = 30
    max_rows: int = 100_000
    rows: list[dict[str, object]] = field(default_factory=demo_rows)
    postgres: PostgresCluster | None = None
    process: ManagedProcess | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tap_url(self) -> str:
        """The TAP service's URL (what ``pyvo.dal.TAPService`` takes)."""
        return f"{self.base_url}/tap"

    @property
    def root_dir(self) -> Path:
        return self.state_dir / "root"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["GAVOSETTINGS"] = str(self.state_dir / "gavo.rc")
        env["GAVOCUSTOM"] = str(self.state_dir / "no-gavorc")
        return env

    def _dachs(self, *args: str) -> None:
        """Run one ``dachs`` command (its output to ``dachs-commands.log``)."""
        log = self.state_dir / "dachs-commands.log"
        with open(log, "ab") as output:
            result = subprocess.run(
                ["dachs", *args],
                env=self._env(),
                cwd=self.root_dir / "inputs",
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        if result.returncode != 0:
            raise ProcessError(
                f"dachs {' '.join(args)} failed (status {result.returncode}); last lines of "
                f"{log}:\n{log_tail(log)}"
            )

    def _write_settings(self) -> None:
        assert self.port is not None
        (self.state_dir / "gavo.rc").write_text(
            "[general]\n"
            f"rootDir: {self.root_dir}\n"
            # the accounts the server package would create: root's own instead
            "gavoGroup: root\n"
            "group: root\n"
            "logLevel: warning\n"
            "[web]\n"
            "bindAddress: 127.0.0.1\n"
            f"serverPort: {self.port}\n"
            f"serverURL: {self.base_url}\n"
            "user: root\n"
            "[async]\n"
            f"defaultExecTimeSync: {self.sync_timeout}\n"
            "defaultMAXREC: 1000\n"
            f"hardMAXREC: {self.max_rows}\n"
        )

    def registry_records(self) -> dict[str, list[dict[str, object]]]:
        """The registry's rows (table → rows): this server's TAP service."""
        ivoid, stamp = DEMO_IVOID, "2026-01-01T00:00:00"
        resource = {
            "ivoid": ivoid, "res_type": "vs:catalogservice", "created": stamp,
            "short_name": "radio TAP", "res_title": "Continuum demo radio archive",
            "updated": stamp, "content_level": "research",
            "res_description": "Radio continuum observations (LOFAR, MeerKAT, VLA) of bright "
            "radio sources: pointings, time spans, frequency bands and data URLs.",
            "reference_url": self.base_url, "creator_seq": "Continuum Hub demo",
            "content_type": "archive", "source_format": "", "source_value": "",
            "res_version": "1", "region_of_regard": 0.5, "waveband": "radio",
            "rights": "public", "rights_uri": "", "harvested_from": "",
            "validation_level": 2,
        }  # fmt: skip
        capability = {
            "ivoid": ivoid, "cap_index": 1, "cap_name": "tap", "cap_type": "tr:tableaccess",
            "cap_description": "The archive's table access service",
            "standard_id": "ivo://ivoa.net/std/tap",
        }  # fmt: skip
        interface = {
            "ivoid": ivoid, "intf_index": 1, "cap_index": 1, "intf_type": "vs:paramhttp",
            "intf_role": "std", "std_version": "1.1", "query_type": "", "result_type": "",
            "wsdl_url": "", "url_use": "base", "access_url": self.tap_url, "mirror_url": "",
            "authenticated_only": 0,
        }  # fmt: skip
        subjects = [{"ivoid": ivoid, "res_subject": word} for word in ("radio-astronomy", "radio")]
        return {
            "resource": [resource],
            "capability": [capability],
            "interface": [interface],
            "res_subject": subjects,
        }

    def _write_resources(self) -> None:
        """The demo table's and the registry's resource descriptors and rows."""
        tables = {("radio", "observations"): self.rows}
        tables.update({("rr", name): rows for name, rows in self.registry_records().items()})
        for (schema, table), rows in tables.items():
            folder = self.root_dir / "inputs" / schema
            (folder / "data").mkdir(parents=True, exist_ok=True)
            with open(folder / "data" / f"{table}.csv", "w", newline="") as out:
                writer = csv.DictWriter(out, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        (self.root_dir / "inputs" / "radio" / "q.rd").write_text(RESOURCE_DESCRIPTOR)
        (self.root_dir / "inputs" / "rr" / "q.rd").write_text(REGISTRY_DESCRIPTOR)

    @property
    def registry_url(self) -> str:
        """The RegTAP endpoint (the same TAP service: its ``rr`` schema)."""
        return self.tap_url

    def start(self) -> Self:
        """A fresh DaCHS with the demo table, serving TAP on :attr:`tap_url`."""
        if shutil.which("dachs") is None:
            raise ProcessError("GAVO DaCHS is not installed (python3-gavo): run images/setup.sh")
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.state_dir.mkdir(parents=True)
        self.port = self.port or free_port()
        try:
            self.postgres = PostgresCluster(self.state_dir / "postgres").start()
            dsn = self.postgres.dsn("gavo")
            self.postgres.createdb("gavo")
            self._write_settings()
            (self.root_dir / "inputs").mkdir(parents=True)
            self._dachs("init", "-d", dsn)
            self._write_resources()
            self._dachs("imp", "radio/q")
            self._dachs("imp", "rr/q")
            self.process = ManagedProcess(
                "dachs", ["dachs", "serve", "start", "--foreground"], self.state_dir, self._env()
            )
            self.process.start_ready(lambda: _http_ok(f"{self.tap_url}/availability"), 60)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and its database (idempotent)."""
        if self.process is not None:
            self.process.stop()
            self.process = None
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None
