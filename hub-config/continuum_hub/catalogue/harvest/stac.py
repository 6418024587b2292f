"""Harvest a static STAC catalogue (pystac): each item an entry, its assets the replicas.

The catalogue is read from local files only: a link to a URL, or to a file outside the
catalogue's folder, is refused (a harvest running in the hub's catalogue service must not be
made to fetch arbitrary addresses or read arbitrary files).  An item's identifier is
``<site>/<label>/<item id>`` (label: the spec's, else the catalogue's id); its fingerprint is
``(0, checksum of its JSON)``.  ``continuum:vo`` and ``continuum:visibility`` item properties
override the spec's defaults.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from ..model import Entry, Replica
from .describe import parse_time
from .spec import (
    Found,
    HarvestError,
    HarvestReport,
    HarvestSpec,
    check_item_name,
    check_visibility,
)

#: media type (its first part) → the catalogue's format name
MEDIA_FORMATS = {
    "image/fits": "fits",
    "application/fits": "fits",
    "application/x-netcdf": "netcdf",
    "application/netcdf": "netcdf",
    "application/x-hdf5": "hdf5",
    "application/x-hdf": "hdf5",
    "application/x-parquet": "parquet",
    "application/vnd.apache.parquet": "parquet",
    "application/vnd+zarr": "zarr",
    "application/x-root": "root",
    "image/tiff": "geotiff",
}
#: item properties not copied into an entry's metadata (they are fields, or bulky)
SKIPPED_PROPERTIES = ("title", "description", "datetime", "continuum:vo", "continuum:visibility")


def _stac_io(root: Path) -> Any:
    """A pystac StacIO reading only files below ``root`` (no URLs); writing is refused."""
    from pystac.stac_io import DefaultStacIO

    class LocalStacIO(DefaultStacIO):
        def read_text_from_href(self, href: str) -> str:
            if "://" in href and not href.startswith("file://"):
                raise HarvestError(f"STAC link to a URL refused: {href[:100]}")
            path = Path(href.removeprefix("file://")).resolve()
            if not path.is_relative_to(root):
                raise HarvestError(f"STAC link out of the catalogue's folder refused: {href[:100]}")
            return path.read_text(encoding="utf-8")

        def write_text_to_href(self, href: str, txt: str) -> None:
            raise HarvestError("a harvest never writes a STAC catalogue")

    return LocalStacIO()


def _format(asset: Any) -> str:
    media = (asset.media_type or "").split(";")[0].strip().lower()
    if media in MEDIA_FORMATS:
        return MEDIA_FORMATS[media]
    suffix = Path(asset.href).suffix.lower().lstrip(".")
    return {"nc": "netcdf", "h5": "hdf5", "fit": "fits"}.get(suffix, suffix or media)


class StacHarvest:
    """One read of a static STAC catalogue (see the module docstring)."""

    def __init__(self, spec: HarvestSpec, report: HarvestReport) -> None:
        self.spec = spec
        self.report = report
        self.file = spec.path.resolve()
        self.label = spec.label

    def scan(self) -> dict[str, Found]:
        """The catalogue's items, by identifier."""
        import pystac

        try:
            catalog = pystac.Catalog.from_file(str(self.file), stac_io=_stac_io(self.file.parent))
        except Exception as exc:  # pystac raises many kinds on a bad root document
            raise HarvestError(f"not a STAC catalogue: {self.file}: {exc}") from None
        self.label = self.spec.root_label(catalog.id)
        found: dict[str, Found] = {}
        try:
            items = list(catalog.get_items(recursive=True))
        except Exception as exc:
            # pystac wraps our refusal of a link in its own error: report the refusal
            self.report.problem(self.file.name, exc.__cause__ or exc)
            self.report.truncated = True  # an unreadable part: remove nothing
            return found
        for item in items:
            if len(found) >= self.spec.max_files:
                self.report.truncated = True
                break
            try:
                identifier = f"{self.spec.site}/{self.label}/{check_item_name(item.id)}"
            except HarvestError as exc:
                self.report.problem(str(item.id)[:80], exc)
                continue
            # pystac reads every item anyway: a checksum of its content, not its file's mtime,
            # says whether it changed (saving a catalogue rewrites every item's file)
            content = json.dumps(item.to_dict(transform_hrefs=False), sort_keys=True, default=str)
            fingerprint = (0.0, zlib.crc32(content.encode()))
            found[identifier] = Found(
                identifier, fingerprint, lambda i=item, n=identifier: self.entry(i, n)
            )
        return found

    def entry(self, item: Any, identifier: str) -> Entry:
        """One item as an entry."""
        props = dict(item.properties)
        vo = props.get("continuum:vo", self.spec.vo)
        visibility = props.get("continuum:visibility", self.spec.visibility)
        check_visibility(vo, visibility)
        replicas, assets, formats, sizes = [], [], [], []
        for key, asset in item.assets.items():
            href = asset.get_absolute_href() or asset.href
            size = asset.extra_fields.get("file:size")
            size = int(size) if isinstance(size, int | float) else None
            replicas.append(Replica(self.spec.site, self.label, href, "available", size))
            assets.append(
                {
                    "key": key,
                    "href": href,
                    "type": asset.media_type or "",
                    "title": asset.title or "",
                }
            )
            formats.append(_format(asset))
            sizes.append(size)
        known = [size for size in sizes if size is not None]  # the size when every asset has one
        start = parse_time(props.get("start_datetime") or props.get("datetime"))
        end = parse_time(props.get("end_datetime") or props.get("datetime"))
        meta: dict[str, Any] = {
            key: value for key, value in props.items() if key not in SKIPPED_PROPERTIES
        }
        meta.update(
            root=self.label, stac_id=item.id, assets=assets, collection=item.collection_id or ""
        )
        if item.bbox and len(item.bbox) == 4:
            meta["bbox"] = [float(v) for v in item.bbox]
        return Entry(
            id=f"{self.spec.source}:{identifier}",
            source=self.spec.source,
            identifier=identifier,
            kind="dataset",
            title=str(props.get("title") or item.id),
            description=str(props.get("description") or ""),
            vo=vo,
            visibility=visibility,
            format=formats[0] if len(set(formats)) == 1 else ("mixed" if formats else ""),
            size=sum(known) if sizes and len(known) == len(sizes) else None,
            time_start=start,
            time_end=end,
            sites=[self.spec.site],
            replicas=replicas,
            metadata=meta,
        )
