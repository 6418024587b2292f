"""Harvest a list of datasets: a YAML file (a list of mappings, or ``{datasets: [...]}``) or a
CSV file with a header row.

Keys (CSV columns): ``identifier`` (required), ``title``, ``description``, ``kind`` (default
``dataset``), ``vo``, ``visibility``, ``format``, ``size``, ``time_start``, ``time_end``,
``site`` (default the spec's), ``location`` (default the label), ``path``, ``keywords`` (a
YAML list, or words separated by ``;`` in CSV); any other key goes into the entry's metadata.
Rows with the same identifier are one entry with one replica per row (a dataset on two sites).
An entry's identifier is ``<site>/<label>/<identifier>`` with the spec's site and label (the
file's stem by default); its fingerprint is a checksum of its rows, so an unchanged row is not
written again.  A bad row is a problem; the others are harvested.
"""

from __future__ import annotations

import csv
import io
import json
import zlib
from pathlib import Path
from typing import Any

import yaml

from ..model import KINDS, Entry, Replica
from .describe import parse_time
from .spec import (
    NAME,
    Found,
    HarvestError,
    HarvestReport,
    HarvestSpec,
    check_item_name,
    check_visibility,
)

#: a list file larger than this is refused (bytes)
MAX_LIST_BYTES = 64 * 1024 * 1024
FIELDS = (
    "identifier",
    "title",
    "description",
    "kind",
    "vo",
    "visibility",
    "format",
    "size",
    "time_start",
    "time_end",
    "site",
    "location",
    "path",
    "keywords",
)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a YAML or CSV list; :class:`HarvestError` when it is not one."""
    if path.stat().st_size > MAX_LIST_BYTES:
        raise HarvestError(f"{path.name} is larger than {MAX_LIST_BYTES} bytes")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows: Any = list(csv.DictReader(io.StringIO(text, newline="")))
    else:
        try:
            rows = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise HarvestError(f"{path.name} is not valid YAML: {exc}") from None
        if isinstance(rows, dict):
            rows = rows.get("datasets")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise HarvestError(f"{path.name}: expected a list of datasets (mappings)")
    return [
        {str(k): v for k, v in row.items() if k is not None and v not in (None, "")} for row in rows
    ]


def _row(row: dict[str, Any], spec: HarvestSpec, label: str) -> dict[str, Any]:
    """A row checked and completed with the spec's defaults."""
    identifier = check_item_name(str(row.get("identifier", "")))
    row = {**row, "identifier": identifier}
    row.setdefault("vo", spec.vo)
    row.setdefault("visibility", spec.visibility)
    check_visibility(row["vo"], row["visibility"])
    row.setdefault("kind", "dataset")
    if row["kind"] not in KINDS:
        raise HarvestError(f"{identifier}: unknown kind {str(row['kind'])[:30]!r}")
    if not NAME.match(str(row.setdefault("site", spec.site))):
        raise HarvestError(f"{identifier}: not a site name: {str(row['site'])[:40]!r}")
    if "size" in row:
        try:
            row["size"] = int(row["size"])
        except (TypeError, ValueError):
            raise HarvestError(f"{identifier}: size must be a whole number of bytes") from None
    for key in ("time_start", "time_end"):
        if key in row:
            stamp = parse_time(row[key])
            if stamp is None:
                raise HarvestError(f"{identifier}: {key} is not an ISO 8601 time")
            row[key] = stamp
    keywords = row.get("keywords", [])
    row["keywords"] = (
        [w.strip() for w in keywords.split(";") if w.strip()]
        if isinstance(keywords, str)
        else keywords
    )
    row.setdefault("location", label)
    return row


class ListHarvest:
    """One read of a list file (see the module docstring)."""

    def __init__(self, spec: HarvestSpec, report: HarvestReport) -> None:
        self.spec = spec
        self.report = report
        self.label = spec.root_label(spec.path.stem)

    def scan(self) -> dict[str, Found]:
        """The list's entries, by identifier."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for number, raw in enumerate(read_rows(self.spec.path), start=1):
            try:
                row = _row(raw, self.spec, self.label)
            except HarvestError as exc:
                self.report.problem(f"{self.spec.path.name} row {number}", exc)
                continue
            groups.setdefault(row["identifier"], []).append(row)
            if len(groups) > self.spec.max_files:
                self.report.truncated = True
                break
        found: dict[str, Found] = {}
        for name, rows in groups.items():
            identifier = f"{self.spec.site}/{self.label}/{name}"
            digest = zlib.crc32(json.dumps(rows, sort_keys=True, default=str).encode())
            found[identifier] = Found(
                identifier, (0.0, digest), lambda r=rows, i=identifier: self.entry(r, i)
            )
        return found

    def entry(self, rows: list[dict[str, Any]], identifier: str) -> Entry:
        """The rows of one dataset as an entry (the first row's fields, every row's replica)."""
        first = rows[0]
        replicas = [
            Replica(
                row["site"], row["location"], str(row.get("path", "")), "available", row.get("size")
            )
            for row in rows
        ]
        meta = {key: value for key, value in first.items() if key not in FIELDS}
        meta.update(root=self.label, keywords=first["keywords"])
        return Entry(
            id=f"{self.spec.source}:{identifier}",
            source=self.spec.source,
            identifier=identifier,
            kind=first["kind"],
            title=str(first.get("title") or first["identifier"]),
            description=str(first.get("description", "")),
            vo=first["vo"],
            visibility=first["visibility"],
            format=str(first.get("format", "")),
            size=first.get("size"),
            time_start=first.get("time_start"),
            time_end=first.get("time_end"),
            sites=list(dict.fromkeys(r.site for r in replicas)),
            replicas=replicas,
            metadata=meta,
        )
