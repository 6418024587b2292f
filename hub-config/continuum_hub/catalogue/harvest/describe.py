"""What a harvest says about one data file: :class:`Description`, and the time rules.

Readers (:mod:`.readers`) fill a :class:`Description` from a file's headers; the folder walk
(:mod:`.files`) turns it into a catalogue entry.  Times are ISO 8601 UTC with a ``Z``
(:func:`iso`), from header text (:func:`parse_time`) or a CF time axis (:func:`cf_times`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_CF_TIME = re.compile(r"^\s*(\w+)\s+since\s+(.+?)\s*$", re.IGNORECASE)
#: CF time units → seconds
_SECONDS = {
    unit: scale
    for scale, units in (
        (1.0, ("second", "seconds", "sec", "secs", "s")),
        (60.0, ("minute", "minutes", "min", "mins")),
        (3600.0, ("hour", "hours", "hr", "h")),
        (86400.0, ("day", "days", "d")),
    )
    for unit in units
}


@dataclass
class Description:
    """What a reader found in one file (or Zarr store)."""

    format: str
    title: str = ""
    description: str = ""
    variables: list[dict[str, Any]] = field(default_factory=list)
    dimensions: dict[str, int] = field(default_factory=dict)
    time_start: str | None = None
    time_end: str | None = None
    #: sky (ra/dec) or geographic (lon/lat) box: [xmin, ymin, xmax, ymax] in degrees
    bbox: list[float] | None = None
    #: a pointing: {"ra": deg, "dec": deg}
    position: dict[str, float] | None = None
    #: header values and format-specific facts (rows, trees, HDUs, …)
    details: dict[str, Any] = field(default_factory=dict)


def iso(moment: dt.datetime) -> str:
    """``moment`` as ISO 8601 UTC with a ``Z`` (naive moments are taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat() + "Z"


def parse_time(text: Any) -> str | None:
    """An ISO 8601 date or time in a header (``DATE-OBS``, ACDD) as :func:`iso`, else ``None``."""
    if isinstance(text, dt.datetime):
        return iso(text)
    if isinstance(text, dt.date):
        return iso(dt.datetime(text.year, text.month, text.day))
    value = str(text or "").strip().replace("Z", "+00:00")
    if not value:
        return None
    try:
        return iso(dt.datetime.fromisoformat(value))
    except ValueError:
        return None


def cf_times(units: str, first: float, last: float) -> tuple[str | None, str | None]:
    """The first and last value of a CF time variable (``"<unit> since <epoch>"``) as ISO."""
    match = _CF_TIME.match(str(units or ""))
    if not match or match.group(1).lower() not in _SECONDS:
        return None, None
    epoch = parse_time(match.group(2))
    if epoch is None:
        return None, None
    start = dt.datetime.fromisoformat(epoch.removesuffix("Z"))
    scale = _SECONDS[match.group(1).lower()]
    try:
        return (
            iso(start + dt.timedelta(seconds=float(first) * scale)),
            iso(start + dt.timedelta(seconds=float(last) * scale)),
        )
    except (OverflowError, TypeError, ValueError):
        return None, None


def as_text(value: Any) -> str:
    """A header or attribute value as text (bytes decoded, numpy scalars and arrays unwrapped)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "tolist"):
        value = value.tolist()
    return value if isinstance(value, str) else str(value)


def variable(
    name: str, dims: Iterable[str], shape: Iterable[int], dtype: Any, attrs: Mapping[str, Any]
) -> dict[str, Any]:
    """One variable (array, column, branch) as an entry's metadata lists it."""
    var: dict[str, Any] = {"name": name, "dims": list(dims), "shape": [int(n) for n in shape]}
    var["dtype"] = str(dtype)
    for key in ("units", "long_name", "standard_name"):
        if key in attrs:
            var[key] = as_text(attrs[key])[:200]
    return var
