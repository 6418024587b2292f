"""Keep ``BEARER_TOKEN_FILE`` holding a valid access token (WLCG bearer token discovery).

The hub keeps the user's refresh token; anything running for the user reads a short-lived
access token from the file named by ``BEARER_TOKEN_FILE``.  :class:`TokenKeeper` pulls it from
the hub (``GET {JUPYTERHUB_API_URL}/continuum/token`` with an API token allowed to, e.g. the
server's own) and writes it atomically (a 0600 temporary file in the same folder, renamed
over the old one, so a reader never sees half a token), then pulls again well before expiry:
after ``fraction`` of the remaining lifetime (the hub refreshes at the provider when the
remaining lifetime is short).  Failures are retried with a growing delay; the file keeps the
last token meanwhile.

Used by the server extension (a periodic task, :func:`run_periodically`) and by
``continuum-token-agent`` (:mod:`continuum_lab.token_agent`) in batch jobs and Dask workers.
Importing this module has no side effects; it needs only the standard library.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN_PATH = "/continuum/token"  # noqa: S105 - a URL path
ENV_FILE = "BEARER_TOKEN_FILE"
# an access token is written to a file and read by others: printable ASCII without spaces
_TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))


class HubTokenError(RuntimeError):
    """The hub did not hand out a token; ``status`` is its HTTP status (``None``: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AccessToken:
    """An access token and when it expires (epoch seconds)."""

    value: str
    expires_at: float

    def __repr__(self) -> str:  # never show the value in logs or tracebacks
        return f"AccessToken(expires_at={self.expires_at})"


def parse_token_answer(data: Any) -> AccessToken:
    """The hub's JSON answer ``{"access_token", "expires_at"}``, checked.

    Raises
    ------
    HubTokenError
        When a field is missing or malformed.
    """
    if not isinstance(data, dict):
        raise HubTokenError("the hub's answer is not a JSON object")
    value, expires_at = data.get("access_token"), data.get("expires_at")
    if not isinstance(value, str) or not value or not set(value) <= _TOKEN_CHARS:
        raise HubTokenError("the hub's answer holds no usable access token")
    if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
        raise HubTokenError("the hub's answer has no expiry time")
    return AccessToken(value, float(expires_at))


def fetch_access_token(api_url: str, api_token: str, timeout: float = 10.0) -> AccessToken:
    """Ask the hub for a fresh access token of the API token's user.

    Parameters
    ----------
    api_url
        The hub's API URL (``JUPYTERHUB_API_URL``, ending in ``/hub/api``).
    api_token
        An API token holding ``custom:continuum-token:read`` for its user.
    timeout
        Seconds to wait for the hub.
    """
    if not api_url.startswith(("http://", "https://")):
        raise HubTokenError(f"the hub API URL is not an http(s) URL: {api_url!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        api_url.rstrip("/") + TOKEN_PATH,
        headers={"Authorization": f"token {api_token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data = json.load(response)
    except urllib.error.HTTPError as exc:
        message = _message(exc)
        raise HubTokenError(f"the hub answered {exc.code}: {message}", exc.code) from None
    except (OSError, ValueError) as exc:
        raise HubTokenError(f"the hub cannot be reached: {exc}") from None
    return parse_token_answer(data)


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return exc.reason or ""
    return str(body.get("message", "") if isinstance(body, dict) else "")[:300]


def signed_out(error: HubTokenError) -> bool:
    """Whether the hub refused because the user's sign-in ended (its *sign in again* answer),
    rather than because the API token asked with is not valid (revoked, expired)."""
    return "sign in again" in str(error).lower()


def write_token_file(path: Path, value: str) -> None:
    """Replace ``path`` atomically by a file (mode 0600) holding ``value`` and a newline.

    The temporary file is created in the same folder (same file system, so the rename is
    atomic) with ``O_EXCL`` and mode 0600 from the start; it is removed on failure.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(value + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def next_pull_delay(
    expires_at: float, now: float, fraction: float, min_delay: float, max_delay: float
) -> float:
    """Seconds until the next pull: ``fraction`` of the remaining lifetime, within bounds."""
    return min(max((expires_at - now) * fraction, min_delay), max_delay)


def retry_delay(failures: int, min_delay: float, max_delay: float) -> float:
    """Seconds before retrying after ``failures`` consecutive failures (doubling)."""
    return min(min_delay * 2 ** max(failures - 1, 0), max_delay)


class TokenKeeper:
    """Keeps one token file fresh from the hub; :meth:`pull_once` is one step of the loop.

    Parameters
    ----------
    path
        The token file (its folder must exist and belong to the user).
    api_url, api_token
        The hub's API URL and the API token to ask it with (never logged).
    fraction
        Pull again after this fraction of the remaining lifetime.
    min_delay, max_delay
        Bounds of the delay between pulls, and of the retry delay after failures (seconds).
    timeout
        Seconds to wait for the hub.
    log
        Where to report (token values are never logged).
    refused_message
        What to report when the hub refuses the API token itself (401 without its
        *sign in again* message) — a batch run's agent: its credential was revoked; empty:
        the server's wording, *sign in to the hub again*.
    """

    def __init__(
        self,
        path: Path,
        api_url: str,
        api_token: str,
        *,
        fraction: float = 0.5,
        min_delay: float = 5.0,
        max_delay: float = 3600.0,
        timeout: float = 10.0,
        log: logging.Logger | Any = None,
        refused_message: str = "",
    ) -> None:
        self.path = Path(path)
        self.refused_message = refused_message
        self.api_url = api_url
        self._api_token = api_token
        self.fraction = fraction
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self.log = log or logging.getLogger(__name__)
        self.current: AccessToken | None = None
        self.failures = 0

    def pull_once(self, now: float | None = None) -> float:
        """Fetch a token, write it if it changed; return the seconds until the next pull."""
        try:
            token = fetch_access_token(self.api_url, self._api_token, self.timeout)
        except HubTokenError as exc:
            self.failures += 1
            delay = retry_delay(self.failures, self.min_delay, min(self.max_delay, 300.0))
            if exc.status == 401 and self.refused_message and not signed_out(exc):
                self.log.warning("continuum token: %s (%s)", self.refused_message, exc)
            elif exc.status == 401:
                self.log.warning(
                    "continuum token: the sign-in has ended; sign in to the hub again (%s)", exc
                )
            else:
                self.log.warning(
                    "continuum token: no fresh token (%s); retry in %.0f s", exc, delay
                )
            if self.current is not None:
                # retry before the token in the file runs out, whatever the backoff says
                left = self.current.expires_at - time.time()
                delay = max(min(delay, left * self.fraction), self.min_delay)
            return delay
        self.failures = 0
        if self.current is None or token.value != self.current.value:
            write_token_file(self.path, token.value)
            self.log.info(
                "continuum token: %s renewed, valid for %.0f s",
                self.path,
                token.expires_at - time.time(),
            )
        self.current = token
        now = time.time() if now is None else now
        return next_pull_delay(token.expires_at, now, self.fraction, self.min_delay, self.max_delay)

    def remove_file(self) -> None:
        """Remove the token file (the server or job is ending)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def run_forever(self) -> None:
        """Pull and sleep until interrupted (the command-line agent)."""
        while True:
            time.sleep(self.pull_once())


async def run_periodically(keeper: TokenKeeper, first_delay: float = 0.0) -> None:
    """The server extension's task: :meth:`TokenKeeper.pull_once` in a thread, forever."""
    loop = asyncio.get_running_loop()
    delay = first_delay
    while True:
        await asyncio.sleep(delay)
        try:
            delay = await loop.run_in_executor(None, keeper.pull_once)
        except OSError as exc:  # the folder vanished, the disk is full…
            keeper.log.error("continuum token: cannot write %s: %s", keeper.path, exc)
            delay = keeper.min_delay * 6


def keeper_for_server(
    environ: dict[str, str] | os._Environ[str], *, log: Any = None, **options: Any
) -> TokenKeeper | None:
    """The keeper of a hub server's ``BEARER_TOKEN_FILE`` (set by ``continuum-singleuser``),
    pulling with the server's own API token; ``None`` outside such a server."""
    path = environ.get(ENV_FILE, "")
    api_url = environ.get("JUPYTERHUB_API_URL", "")
    api_token = environ.get("JUPYTERHUB_API_TOKEN", "")
    if not (path and api_url and api_token):
        return None
    return TokenKeeper(Path(path), api_url, api_token, log=log, **options)
