"""Harvest a folder tree of data files on a site.

The walk (:func:`scan`) lists what is there and its fingerprint without opening any data file;
only new or changed files are described (:mod:`.readers`), by the ``build`` of their
:class:`~.spec.Found`.  Rules:

* symbolic links to folders are never followed, and a symbolic link to a file counts only when
  it resolves inside the root (a link out of the root is skipped and logged); hidden names
  (``.*``) are skipped; the walk stops at ``max_depth`` and ``max_files``;
* a folder named ``*.zarr`` is one dataset (kind ``dataset``), not walked into;
* ``catalogue.yaml`` in a folder applies to it and everything below (``title``,
  ``description``, ``vo``, ``visibility``, ``keywords``; nearer folders win, keywords add up);
  a folder whose ``catalogue.yaml`` cannot be read is skipped whole (a problem), so a broken
  file never turns private data public;
* a sidecar ``<file>.yaml``, ``.yml`` or ``.json`` (a mapping) is merged last: ``title``,
  ``description``, ``vo``, ``visibility``, ``keywords``, ``time_start``, ``time_end`` set the
  entry's fields, other keys go into its metadata;
* a fingerprint is (the newest mtime of the file, its sidecar and the ``catalogue.yaml`` files
  above it; the file's size), so editing metadata re-describes the files it applies to.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..model import Entry, Replica
from .describe import parse_time
from .readers import reader_for
from .spec import Found, HarvestError, HarvestReport, HarvestSpec, check_visibility

FOLDER_FILE = "catalogue.yaml"
SIDECAR_SUFFIXES = (".yaml", ".yml", ".json")
#: keys of catalogue.yaml and sidecars that set an entry's fields (others go into metadata)
FIELDS = ("title", "description", "vo", "visibility", "keywords", "time_start", "time_end")
#: a sidecar or catalogue.yaml larger than this is refused (bytes)
MAX_METADATA_BYTES = 256 * 1024
#: longest identifier (an entry id's identifier part, see model.split_id)
MAX_IDENTIFIER = 1024
#: files walked inside a Zarr store for its fingerprint
MAX_ZARR_FILES = 20_000


def load_metadata(path: Path) -> dict[str, Any]:
    """A sidecar or ``catalogue.yaml``: a mapping, checked; :class:`HarvestError` otherwise."""
    if path.stat().st_size > MAX_METADATA_BYTES:
        raise HarvestError(f"{path.name} is larger than {MAX_METADATA_BYTES} bytes")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise HarvestError(f"{path.name} is not valid {path.suffix[1:].upper()}: {exc}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise HarvestError(f"{path.name} must hold a mapping")
    keywords = data.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise HarvestError(f"{path.name}: keywords must be a list of words")
    for key in ("title", "description", "vo", "visibility", "time_start", "time_end"):
        if key in data and not isinstance(data[key], str):
            raise HarvestError(f"{path.name}: {key} must be text")
    return {str(key): value for key, value in data.items()}


def _merge(outer: Mapping[str, Any], inner: Mapping[str, Any]) -> dict[str, Any]:
    """Folder settings below ``outer``: inner keys win, keywords add up."""
    merged = {**outer, **inner}
    merged["keywords"] = list(
        dict.fromkeys([*outer.get("keywords", []), *inner.get("keywords", [])])
    )
    return merged


class FolderHarvest:
    """One walk of ``spec.path`` (see the module's rules); :meth:`scan` returns what it found."""

    def __init__(self, spec: HarvestSpec, report: HarvestReport) -> None:
        self.spec = spec
        self.report = report
        self.root = spec.path.resolve()
        self.label = spec.root_label(self.root.name)
        self.found: dict[str, Found] = {}

    def scan(self) -> dict[str, Found]:
        """Walk the tree; everything found, by identifier."""
        defaults = {"vo": self.spec.vo, "visibility": self.spec.visibility, "keywords": []}
        self._folder(self.root, 0, defaults, 0.0)
        return self.found

    def _folder(self, folder: Path, depth: int, settings: dict[str, Any], stamp: float) -> None:
        try:
            with os.scandir(folder) as listing:
                items = sorted(listing, key=lambda item: item.name)
        except OSError as exc:
            self.report.problem(self._rel(folder) or ".", exc)
            return
        names = {item.name for item in items}
        if FOLDER_FILE in names:
            path = folder / FOLDER_FILE
            try:
                own = load_metadata(path)
                check_visibility(
                    own.get("vo", settings["vo"]), own.get("visibility", settings["visibility"])
                )
            except (OSError, HarvestError) as exc:
                self.report.problem(f"{self._rel(path)} (folder skipped)", exc)
                return
            settings = _merge(settings, own)
            stamp = max(stamp, path.stat().st_mtime)
        for item in items:
            if self.report.truncated:
                return
            if item.name.startswith(".") or item.name == FOLDER_FILE:
                continue
            if any(ord(ch) < 32 for ch in item.name):
                # an entry id must not hold control characters
                self.report.problem(repr(item.name)[:80], "name with control characters: skipped")
                continue
            path = Path(item.path)
            if item.is_symlink():
                if item.is_dir(follow_symlinks=True) or not self._inside(path):
                    self.report.problem(
                        self._rel(path), "symbolic link out of the root or to a folder: skipped"
                    )
                    continue
            if item.is_dir(follow_symlinks=False):
                if path.suffix.lower() == ".zarr":
                    self._add(path, settings, stamp, names, dataset=True)
                elif depth < self.spec.max_depth:
                    self._folder(path, depth + 1, settings, stamp)
                else:
                    self.report.problem(self._rel(path), "deeper than max_depth: skipped")
            elif reader_for(path) is not None and item.is_file():
                self._add(path, settings, stamp, names, dataset=False)

    def _inside(self, path: Path) -> bool:
        try:
            return path.resolve().is_relative_to(self.root)
        except OSError:
            return False

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if path != self.root else ""

    def _add(
        self, path: Path, settings: dict[str, Any], stamp: float, names: set[str], dataset: bool
    ) -> None:
        if len(self.found) >= self.spec.max_files:
            self.report.truncated = True
            return
        rel = self._rel(path)
        try:
            mtime, size = _zarr_stat(path) if dataset else _file_stat(path)
            sidecar = next(
                (path.with_name(path.name + s) for s in SIDECAR_SUFFIXES if path.name + s in names),
                None,
            )
            if sidecar is not None:
                mtime = max(mtime, sidecar.stat().st_mtime)
        except OSError as exc:
            self.report.problem(rel, exc)
            return
        identifier = f"{self.spec.site}/{self.label}/{rel}"
        if len(identifier) > MAX_IDENTIFIER:
            self.report.problem(rel[:80], f"path longer than {MAX_IDENTIFIER} characters: skipped")
            return
        replica = Replica(self.spec.site, self.label, str(path), "available", size)

        def build() -> Entry:
            return self._entry(path, identifier, rel, size, replica, settings, sidecar, dataset)

        self.found[identifier] = Found(identifier, (max(mtime, stamp), size), build, replica)

    def _entry(
        self,
        path: Path,
        identifier: str,
        rel: str,
        size: int,
        replica: Replica,
        settings: dict[str, Any],
        sidecar: Path | None,
        dataset: bool,
    ) -> Entry:
        reader = reader_for(path)
        assert reader is not None
        desc = reader(path)
        meta: dict[str, Any] = {
            "root": self.label,
            "path": rel,
            "variables": desc.variables,
            "dimensions": desc.dimensions,
            **desc.details,
        }
        if desc.bbox is not None:
            meta["bbox"] = desc.bbox
        if desc.position is not None:
            meta["position"] = desc.position
        if settings.get("title"):
            meta["collection"] = settings["title"]
        values = {
            "title": desc.title or path.name,
            "description": desc.description or settings.get("description", ""),
            "vo": settings["vo"],
            "visibility": settings["visibility"],
            "keywords": settings.get("keywords", []),
            "time_start": desc.time_start,
            "time_end": desc.time_end,
        }
        for key, value in settings.items():
            if key not in FIELDS:
                meta.setdefault(key, value)
        if sidecar is not None:
            extra = load_metadata(sidecar)
            values["keywords"] = list(
                dict.fromkeys([*values["keywords"], *extra.pop("keywords", [])])
            )
            values.update({key: extra.pop(key) for key in FIELDS if key in extra})
            check_visibility(values["vo"], values["visibility"])
            for key in ("time_start", "time_end"):
                stamp = values[key]
                if stamp is not None and parse_time(stamp) is None:
                    raise HarvestError(f"{sidecar.name}: {key} is not an ISO 8601 time")
                values[key] = parse_time(stamp)
            meta.update({key: value for key, value in extra.items() if key not in ("root", "path")})
        meta["keywords"] = values.pop("keywords")
        return Entry(
            id=f"{self.spec.source}:{identifier}",
            source=self.spec.source,
            identifier=identifier,
            kind="dataset" if dataset else "file",
            format=desc.format,
            size=size,
            sites=[self.spec.site],
            replicas=[replica],
            metadata=meta,
            **values,
        )


def _file_stat(path: Path) -> tuple[float, int]:
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"{path.name} is not a regular file")
    return info.st_mtime, info.st_size


def _zarr_stat(path: Path) -> tuple[float, int]:
    """A Zarr store's fingerprint: its newest mtime and total size (links not followed)."""
    newest, total, count = path.stat().st_mtime, 0, 0
    for folder, dirs, files in os.walk(path, followlinks=False):
        for name in files:
            info = os.lstat(os.path.join(folder, name))
            newest, total = max(newest, info.st_mtime), total + info.st_size
            count += 1
            if count > MAX_ZARR_FILES:
                raise OSError(f"Zarr store with more than {MAX_ZARR_FILES} files")
        for name in dirs:
            newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
    return newest, total


def scan(spec: HarvestSpec, report: HarvestReport) -> dict[str, Found]:
    """Everything under ``spec.path`` worth an entry (see the module's rules)."""
    return FolderHarvest(spec, report).scan()
