"""ADQL for the TAP source: the guard on users' raw queries and the cone/time/band form.

Two ways a user's query reaches a TAP service (:mod:`.tap`):

* **raw ADQL**, checked by :func:`check_adql` before anything is sent: one ``SELECT`` statement
  (no ``;``-chained second statement), no data-changing or definition keywords, no
  ``TAP_UPLOAD`` tables, no function on :data:`DENIED_FUNCTIONS`, at most a bounded length.
  String literals, quoted identifiers and comments are blanked out first, so a keyword inside
  ``'...'`` neither trips nor hides anything.  The server still parses the query (ADQL is a
  subset of SQL it translates); this guard is what we promise regardless of the server;
* **the form** ``{table, ra, dec, radius_deg, time_from, time_to, band_min, band_max}``, turned
  into ADQL by :func:`form_adql` from validated numbers and identifiers that were looked up in
  the service's TAP_SCHEMA (:class:`TableInfo`) - never from the user's text.

Both are bounded by MAXREC (the caller's ``maxrec``) and a request timeout (:mod:`.tap`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..model import QueryError

#: statements and clauses a read-only query never needs (``INTO`` would create a table); a
#: column that has one of these names is written quoted (``"set"``)
DENIED_KEYWORDS = frozenset(
    "insert update delete drop create alter truncate grant revoke copy execute exec call merge "
    "vacuum set reset lock commit rollback begin declare listen notify into prepare "
    "deallocate".split()
)
#: functions a query may not call (server internals, sleeping, files, other databases)
DENIED_FUNCTIONS = frozenset(
    "pg_sleep pg_sleep_for pg_sleep_until pg_read_file pg_read_binary_file pg_ls_dir "
    "pg_terminate_backend pg_cancel_backend current_setting set_config dblink dblink_exec "
    "lo_import lo_export query_to_xml txid_current version".split()
)
#: prefixes of denied function families
DENIED_PREFIXES = ("pg_", "lo_", "dblink")
#: the longest raw query accepted (characters)
MAX_ADQL_CHARS = 4000
#: the widest cone the form accepts (degrees)
MAX_RADIUS_DEG = 90.0

_TOKENS = re.compile(
    r"""'(?:[^']|'')*'?      # a string literal ('' escapes a quote); unterminated: to the end
      | "(?:[^"]|"")*"?      # a quoted identifier
      | --[^\n]*             # a comment to the end of the line
      | /\*.*?(?:\*/|$)      # a block comment (not ADQL, but servers' SQL may honour it)
    """,
    re.VERBOSE | re.DOTALL,
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")


def _blank(adql: str) -> str:
    """``adql`` with literals, quoted identifiers and comments replaced by blanks."""
    return _TOKENS.sub(lambda match: " " * len(match.group(0)), adql)


def check_adql(adql: Any, max_chars: int = MAX_ADQL_CHARS) -> str:
    """Return ``adql`` (stripped, a trailing ``;`` removed) if the guard lets it through.

    Raises
    ------
    QueryError
        With a message saying what is not allowed.
    """
    if not isinstance(adql, str) or not adql.strip():
        raise QueryError("adql must be a non-empty text")
    if len(adql) > max_chars:
        raise QueryError(f"the query is too long ({len(adql)} characters, at most {max_chars})")
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in adql):
        raise QueryError("the query must not contain control characters")
    text = adql.strip()
    code = _blank(text).rstrip()
    if code.endswith(";"):
        text, code = text[: len(code) - 1].rstrip(), code[:-1].rstrip()
    if ";" in code:
        raise QueryError("only one statement is allowed (remove the ';' and what follows it)")
    words = [match.group(0).lower() for match in _WORD.finditer(code)]
    if not words or words[0] != "select":
        raise QueryError("only a SELECT query is allowed")
    denied = sorted(set(words) & DENIED_KEYWORDS)
    if denied:
        raise QueryError(f"{denied[0].upper()} is not allowed: queries may only read")
    if "tap_upload" in words:
        raise QueryError("TAP_UPLOAD tables are not allowed (uploads are not supported here)")
    for match in re.finditer(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", code):
        name = match.group(1).lower()
        if name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES):
            raise QueryError(f"the function {match.group(1)} is not allowed")
    return text


def quote_identifier(name: str) -> str:
    """A TAP_SCHEMA name as ADQL: plain when it is a regular identifier, else quoted."""
    parts = name.split(".")
    return ".".join(
        part
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part)
        else '"' + part.replace('"', '""') + '"'
        for part in parts
    )


@dataclass(frozen=True)
class ColumnInfo:
    """A column as TAP_SCHEMA describes it."""

    name: str
    datatype: str = ""
    unit: str = ""
    ucd: str = ""
    description: str = ""


@dataclass
class TableInfo:
    """A table as TAP_SCHEMA describes it, with the columns the form can use."""

    name: str
    description: str = ""
    columns: list[ColumnInfo] = field(default_factory=list)

    def column(self, name: str) -> ColumnInfo:
        """The column called ``name`` (case-insensitive); :class:`QueryError` when absent."""
        for column in self.columns:
            if column.name.lower() == str(name).lower():
                return column
        raise QueryError(f"{self.name} has no column {str(name)[:64]!r}")

    def _by_ucd(self, *ucds: str, names: tuple[str, ...] = ()) -> ColumnInfo | None:
        for wanted in ucds:
            for column in self.columns:
                if column.ucd.lower().startswith(wanted):
                    return column
        for column in self.columns:
            if column.name.lower() in names:
                return column
        return None

    def form_columns(self) -> dict[str, ColumnInfo]:
        """The columns the form's fields map to, found by UCD (then ObsCore's names)."""
        found = {
            "ra": self._by_ucd("pos.eq.ra;meta.main", "pos.eq.ra", names=("s_ra", "ra")),
            "dec": self._by_ucd("pos.eq.dec;meta.main", "pos.eq.dec", names=("s_dec", "dec")),
            "time_min": self._by_ucd("time.start", names=("t_min",)),
            "time_max": self._by_ucd("time.end", names=("t_max",)),
            "band_min": self._by_ucd("em.freq;stat.min", "em.wl;stat.min", names=("em_min",)),
            "band_max": self._by_ucd("em.freq;stat.max", "em.wl;stat.max", names=("em_max",)),
        }
        return {key: column for key, column in found.items() if column is not None}


def _number(request: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = request.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise QueryError(f"{key} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise QueryError(f"{key} must be a number, not {str(value)[:40]!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise QueryError(f"{key} must be between {low:g} and {high:g}, not {number:g}")
    return number


def _instant(request: dict[str, Any], key: str) -> datetime | None:
    value = request.get(key)
    if value is None or value == "":
        return None
    try:
        stamp = datetime.fromisoformat(str(value)[:40].replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(
            f"{key} must be an ISO 8601 date or time, not {str(value)[:40]!r}"
        ) from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _time_literal(stamp: datetime, column: ColumnInfo) -> str:
    """``stamp`` in the column's terms: MJD for numbers in days, an ISO literal otherwise."""
    if column.datatype.lower() in ("timestamp", "char", "varchar", "unicodechar"):
        return "'" + stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "'"
    mjd = (stamp - datetime(1858, 11, 17, tzinfo=UTC)).total_seconds() / 86400
    return repr(round(mjd, 8))


#: a spectral column's unit → factor from MHz (frequencies) or the wavelength's metres
_FREQ_UNITS = {"hz": 1e6, "khz": 1e3, "mhz": 1.0, "ghz": 1e-3}
_WL_UNITS = {"m": 1.0, "cm": 1e2, "mm": 1e3, "um": 1e6, "nm": 1e9, "angstrom": 1e10}
_C = 299_792_458.0


def _band_values(low: float | None, high: float | None, column: ColumnInfo) -> tuple:
    """The form's band (MHz) in the column's unit: ``(lowest, highest)``, either ``None``."""
    unit = column.unit.strip().lower()
    if column.ucd.lower().startswith("em.freq") or unit in _FREQ_UNITS:
        factor = _FREQ_UNITS.get(unit)
        if factor is None:
            raise QueryError(f"cannot convert MHz to the band column's unit {column.unit!r}")
        return (None if low is None else low * factor, None if high is None else high * factor)
    factor = _WL_UNITS.get(unit)
    if factor is None:
        raise QueryError(f"cannot convert MHz to the band column's unit {column.unit!r}")
    # a higher frequency is a shorter wavelength: the range turns round
    assert factor is not None

    def wave(mhz: float | None) -> float | None:
        # 12 significant digits: far finer than any band edge, and the same text everywhere
        return None if mhz is None or mhz == 0 else float(f"{_C / (mhz * 1e6) * factor:.12g}")

    return (wave(high), wave(low))


def form_adql(table: TableInfo, request: dict[str, Any], top: int) -> str:
    """ADQL for the form's fields on ``table`` (whose TAP_SCHEMA description is known).

    The cone needs ``ra``, ``dec`` and ``radius_deg`` together; times are ISO 8601; the band is
    in MHz (converted to the table's frequency or wavelength unit).  Ranges select overlapping
    observations.  ``columns`` (optional) picks the output columns, checked against the table.
    """
    columns = table.form_columns()
    where: list[str] = []
    cone = [_number(request, "ra", 0, 360), _number(request, "dec", -90, 90)]
    radius = _number(request, "radius_deg", 0, MAX_RADIUS_DEG)
    if any(value is not None for value in (*cone, radius)):
        if None in cone or radius is None:
            raise QueryError("a cone needs ra, dec and radius_deg (degrees)")
        if "ra" not in columns or "dec" not in columns:
            raise QueryError(f"{table.name} has no sky position columns for a cone search")
        where.append(
            f"1=CONTAINS(POINT('ICRS', {quote_identifier(columns['ra'].name)}, "
            f"{quote_identifier(columns['dec'].name)}), "
            f"CIRCLE('ICRS', {cone[0]!r}, {cone[1]!r}, {radius!r}))"
        )
    start, end = _instant(request, "time_from"), _instant(request, "time_to")
    if start is not None or end is not None:
        if "time_min" not in columns or "time_max" not in columns:
            raise QueryError(f"{table.name} has no time range columns")
        if end is not None:
            literal = _time_literal(end, columns["time_min"])
            where.append(f"{quote_identifier(columns['time_min'].name)} <= {literal}")
        if start is not None:
            literal = _time_literal(start, columns["time_max"])
            where.append(f"{quote_identifier(columns['time_max'].name)} >= {literal}")
    band = (_number(request, "band_min", 0, 1e12), _number(request, "band_max", 0, 1e12))
    if band != (None, None):
        if "band_min" not in columns or "band_max" not in columns:
            raise QueryError(f"{table.name} has no spectral range columns")
        low, high = _band_values(*band, columns["band_min"])
        if high is not None:
            where.append(f"{quote_identifier(columns['band_min'].name)} <= {high!r}")
        if low is not None:
            where.append(f"{quote_identifier(columns['band_max'].name)} >= {low!r}")
    wanted = request.get("columns") or []
    if not isinstance(wanted, list) or len(wanted) > 200:
        raise QueryError("columns must be a list of at most 200 column names")
    select = ", ".join(quote_identifier(table.column(name).name) for name in wanted) or "*"
    # identifiers come from TAP_SCHEMA, numbers were parsed: no user text is pasted
    adql = f"SELECT TOP {int(top)} {select} FROM {quote_identifier(table.name)}"  # noqa: S608
    return adql + (" WHERE " + " AND ".join(where) if where else "")


def plain_identifier(name: Any) -> str:
    """A table name as a user gave it, if it looks like one (``schema.table``)."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name.strip()):
        raise QueryError(f"not a table name: {str(name)[:64]!r}")
    return name.strip()
