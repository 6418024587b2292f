"""User text to search terms, and times to numbers, the same way for both search paths.

A user's search text is never handed to a query language: it is cut into words the way both
tokenizers cut (tantivy's ``default`` and FTS5's ``unicode61``: runs of letters and digits,
lowercased), and each word becomes a literal term.  The last word also matches as a prefix, so
"radi" finds "radio" while the user types.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from ..model import Query

#: runs of letters and digits (``_`` and punctuation separate words, as in both tokenizers)
WORD = re.compile(r"[^\W_]+")
#: at most this many words of a search count (the rest are dropped, not an error)
MAX_TERMS = 12
#: tantivy drops tokens of 40 bytes and more when indexing; so do we when searching
MAX_TERM_BYTES = 39
#: shortest last word that is also searched as a prefix (one letter would match everything)
MIN_PREFIX = 2


def words(text: str) -> list[str]:
    """The distinct search words of ``text``, lowercased, in order, bounded."""
    found = (w.lower() for w in WORD.findall(text or ""))
    kept = [w for w in found if len(w.encode()) <= MAX_TERM_BYTES]
    return list(dict.fromkeys(kept))[:MAX_TERMS]


def epoch(stamp: str | None, *, end: bool = False) -> int | None:
    """Seconds since 1970 of an ISO 8601 date or time (``None`` when absent or unreadable).

    A bare date means its first second, or with ``end`` its last, so a range ``to`` a date
    includes that day.
    """
    if not stamp:
        return None
    text = str(stamp).strip().replace("Z", "+00:00").replace(" ", "T")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int(moment.timestamp())
    if end and len(text) == 10:
        seconds += 86399
    return seconds


def visibility_keys(groups: Iterable[str]) -> list[str]:
    """The visibility keys a user in ``groups`` may see: ``public`` and ``vo:<group>`` each."""
    return ["public", *sorted(f"vo:{g}" for g in groups if g)]


def visibility_key(visibility: str, vo: str) -> str:
    """An entry's visibility key (``public``, or ``vo:<its vo>`` for VO-private ones)."""
    return "public" if visibility == "public" else f"vo:{vo}"


def time_bounds(query: Query) -> tuple[int | None, int | None]:
    """The query's time range as seconds (``from``'s start, ``to``'s end)."""
    return epoch(query.time_from), epoch(query.time_to, end=True)
