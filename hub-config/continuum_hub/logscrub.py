"""Keep credentials that arrive in URLs out of the hub's log.

JupyterHub accepts API tokens as ``?token=…`` and the sign-in callback carries ``code`` and
``state``.  JupyterHub's access log hides them, but tornado's own warnings for refused
requests (``403 GET /hub/api/users/x?token=…``, logged by ``tornado.general`` from
``RequestHandler.log_exception``) print the full URI.  :class:`CredentialScrubber` is a
:class:`logging.Filter` that replaces such values by ``[secret]`` before any handler formats
the record; :func:`install_log_scrubber` attaches it to the loggers that print request URIs.

A workshop's join link carries its code in the path (``/hub/continuum/join/<code>``, also
URL-encoded inside a login page's ``next=``): that segment is a bearer secret too.
"""

from __future__ import annotations

import logging
import re

#: query parameters whose values are credentials (or single-use sign-in secrets)
SECRET_PARAMETERS = (
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "code",
    "state",
    "code_verifier",
    "client_secret",
    "password",
)
#: loggers that print request URIs: tornado's warnings and access log, JupyterHub's own
LOGGERS = ("tornado.general", "tornado.access", "tornado.application", "JupyterHub")

_PARAMETER = re.compile(
    r"(?P<key>[?&;](?:" + "|".join(SECRET_PARAMETERS) + r")=)(?P<value>[^&;#\s'\"]+)",
    re.IGNORECASE,
)
#: path prefixes whose next segment is a secret (a workshop's join code), plain or URL-encoded
SECRET_PATH_PREFIXES = ("continuum/join/",)
_PATH_SEGMENT = re.compile(
    r"(?P<key>(?:"
    + "|".join(re.escape(p).replace("/", "(?:/|%2F)") for p in SECRET_PATH_PREFIXES)
    + r"))(?P<value>[A-Za-z0-9_-]+)",
    re.IGNORECASE,
)


def scrub(text: str) -> str:
    """``text`` with credentials in URLs replaced by ``[secret]``: the values of
    :data:`SECRET_PARAMETERS` and the segment after each of :data:`SECRET_PATH_PREFIXES`."""
    return _PATH_SEGMENT.sub(r"\g<key>[secret]", _PARAMETER.sub(r"\g<key>[secret]", text))


class CredentialScrubber(logging.Filter):
    """A filter that rewrites each record's message without URL credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a broken format string is logging's problem, not ours
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def install_log_scrubber(names: tuple[str, ...] = LOGGERS) -> CredentialScrubber:
    """Attach one :class:`CredentialScrubber` to each of the loggers ``names`` (idempotent).

    Call from the hub configuration (it runs in the hub process before any request).
    """
    scrubber = CredentialScrubber()
    for name in names:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, CredentialScrubber)]:
            logger.removeFilter(old)
        logger.addFilter(scrubber)
    return scrubber
