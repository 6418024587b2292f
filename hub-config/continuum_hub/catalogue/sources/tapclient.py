"""pyvo, bounded: synchronous TAP queries with a timeout, their errors as the catalogue's, and
IVOA registry (RegTAP) searches for TAP services.

pyvo and astropy take a second to import, so they are imported when a query runs, not with
this module.  pyvo's synchronous queries have no timeout of their own: every request here
goes through a session that bounds it (:class:`TimeoutSession`); a timeout becomes a
:class:`~continuum_hub.catalogue.model.QueryError` saying so, a refusal by the service (an
ADQL error, a 4xx) one quoting the service, anything else
:class:`~.base.SourceUnavailable`.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import requests

from ..model import QueryError
from .base import SourceUnavailable

#: the IVOA standard identifier of TAP (RegTAP's ``standard_id``)
TAP_STANDARD = "ivo://ivoa.net/std/tap"


class TimeoutSession(requests.Session):
    """A requests session whose every request is bounded by ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


def cell(value: Any) -> Any:
    """One table cell as JSON: numbers, text, ``None`` for masked or not-a-number."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [cell(item) for item in value]
    return value


def datatype(column: Any) -> str:
    """A result column's type in the panel's words."""
    kind = column.dtype.kind
    return {"f": "double", "i": "int", "u": "int", "b": "boolean"}.get(kind, "text")


def pyvo_code(url: str, adql: str, maxrec: int) -> str:
    """The *Insert code* cell: ``url`` and ``adql`` as Python literals, never pasted text."""
    return (
        "import pyvo\n\n"
        f"service = pyvo.dal.TAPService({url!r})\n"
        f"result = service.run_sync({adql!r}, maxrec={int(maxrec)})\n"
        "table = result.to_table()\n"
        "table\n"
    )


def timed_out(error: BaseException) -> bool:
    """Whether a request timeout is somewhere in ``error``'s causes."""
    import urllib3

    seen: set[int] = set()
    todo: list[Any] = [error]
    while todo:
        cause = todo.pop()
        if not isinstance(cause, BaseException) or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, requests.Timeout | urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return True
        todo += [getattr(cause, "cause", None), cause.__cause__, cause.__context__, *cause.args]
    return False


def service(url: str, timeout: float) -> Any:
    """A ``pyvo.dal.TAPService`` on ``url`` whose requests end after ``timeout`` seconds."""
    import pyvo

    return pyvo.dal.TAPService(url, session=TimeoutSession(timeout))


def _errors(url: str, timeout: float, call: Any) -> Any:
    """``call()``, with pyvo's errors turned into the catalogue's."""
    from pyvo.dal import DALFormatError, DALQueryError, DALServiceError

    try:
        return call()
    except DALQueryError as error:
        raise QueryError(f"the TAP service refused the query: {error.reason}") from None
    except (DALServiceError, DALFormatError) as error:
        # the timeout strikes while connecting (a service error) or while the answer streams
        # in (a format error): either way the cause chain holds it
        if timed_out(error):
            raise QueryError(
                f"the query did not finish within {timeout:g} s: "
                "narrow it (a smaller cone, a shorter time range, fewer columns)"
            ) from None
        code = getattr(error, "code", None)
        if code and 400 <= code < 500:
            raise QueryError(f"the TAP service refused the query: {error.reason}") from None
        raise SourceUnavailable(f"{url} did not answer: {error.reason}") from None
    except requests.RequestException as error:
        raise SourceUnavailable(f"{url} did not answer: {error}") from None


def run_sync(url: str, adql: str, maxrec: int, timeout: float) -> Any:
    """Run ``adql`` synchronously on the TAP service at ``url`` (pyvo's results)."""
    return _errors(url, timeout, lambda: service(url, timeout).run_sync(adql, maxrec=maxrec))


def registry_search(
    url: str, words: list[str], timeout: float, maxrec: int = 50, ivoid: str = ""
) -> list[dict[str, Any]]:
    """TAP services a RegTAP registry at ``url`` lists, matching all ``words`` (pyvo's
    ``Freetext``: title, description, subjects) or the one ``ivoid``.

    Each is ``{ivoid, title, description, access_url, waveband}``; ``access_url`` is the
    service's TAP endpoint.  The query is pyvo's own (``rtcons.build_regtap_query``), run on a
    bounded session.
    """
    from pyvo.registry import regtap, rtcons

    constraints: list[Any] = [rtcons.Servicetype("tap")]
    if ivoid:
        constraints.append(rtcons.Ivoid(ivoid))
    elif words:
        constraints.append(rtcons.Freetext(*words))
    registry = service(url, timeout)

    def ask() -> Any:
        adql = rtcons.build_regtap_query(constraints, registry)
        return registry.run_sync(adql, maxrec=maxrec).to_table()

    found = []
    for row in _errors(url, timeout, ask):
        urls = str(cell(row["access_urls"]) or "").split(regtap.TOKEN_SEP)
        standards = str(cell(row["standard_ids"]) or "").split(regtap.TOKEN_SEP)
        tap = [access for access, std in zip(urls, standards, strict=False) if std == TAP_STANDARD]
        if not tap:
            continue
        found.append(
            {
                "ivoid": str(cell(row["ivoid"])),
                "title": str(cell(row["res_title"]) or ""),
                "description": str(cell(row["res_description"]) or "").strip(),
                "access_url": tap[0],
                "waveband": str(cell(row["waveband"]) or ""),
            }
        )
    return found
