"""Share a view of this server from a notebook: :func:`share_view` makes a revocable link.

The link is a JupyterHub share code for the server the kernel runs in (``POST
/hub/api/share-codes/{user}/{server}`` with the server's own token, which Continuum Hub lets
share its server: ``continuum_hub.sharing``).  Whoever opens it and signs in to the hub gets
access to this server and lands on ``path`` (for instance the standalone view of ``explore``),
until the code expires or the owner revokes it on ``/hub/continuum/sharing``.  Note that access
to a server is access to all of it, not just the view: share with people you would let in.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

#: panel's Jupyter server extension serves a notebook's servable objects below this path
PREVIEW = "panel-preview/render"
#: the longest a link may live (JupyterHub's own limit: one year)
MAX_SECONDS = 365 * 24 * 3600


class SharingError(RuntimeError):
    """The hub refused to make the link (or this is not a hub server)."""


@dataclass(frozen=True)
class ShareLink:
    """A share link: ``url`` to give away, ``id`` to revoke it, ``expires_at`` (ISO 8601)."""

    url: str
    id: str
    expires_at: str

    def _repr_html_(self) -> str:
        return f'<a href="{self.url}" target="_blank">{self.url}</a> (until {self.expires_at})'


def _hub_env(env: Mapping[str, str]) -> dict[str, str]:
    names = ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER")
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise SharingError(f"not a JupyterHub server (missing {', '.join(missing)})")
    return {n: env[n] for n in names}


def share_view(
    path: str = "",
    expires_in: int = 24 * 3600,
    *,
    notebook: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> ShareLink:
    """Make a link that opens ``path`` of this server for whoever receives it.

    Parameters
    ----------
    path
        Where the link lands, relative to this server's URL (e.g. ``"proxy/5006/explore"``);
        empty: the server's default page.
    expires_in
        Seconds the link may be accepted (60 s to one year; default one day).
    notebook
        A notebook (path below the server's root) whose ``explore(...).servable()`` view the
        link opens: panel's standalone page ``panel-preview/render/<notebook>`` (instead of
        ``path``).
    env
        The server's environment (default ``os.environ``): ``JUPYTERHUB_API_URL``,
        ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_USER``, ``JUPYTERHUB_SERVER_NAME``,
        ``JUPYTERHUB_SERVICE_PREFIX`` and, where the hub has a public URL,
        ``JUPYTERHUB_PUBLIC_HUB_URL``.
    timeout
        Seconds to wait for the hub.

    Returns
    -------
    ShareLink
        The link (shown as a clickable link in a notebook).

    Raises
    ------
    SharingError
        Outside a hub server, a bad ``expires_in``, or the hub refused (its message).
    """
    env = os.environ if env is None else env
    if notebook is not None:
        path = f"{PREVIEW}/{quote(notebook.lstrip('/'))}"
    hub = _hub_env(env)
    if not 60 <= int(expires_in) <= MAX_SECONDS:
        raise SharingError("expires_in: between 60 seconds and one year")
    server = env.get("JUPYTERHUB_SERVER_NAME", "")
    user = hub["JUPYTERHUB_USER"]
    # the default server's name is empty, and the URL must still end in "/" before it
    api = hub["JUPYTERHUB_API_URL"].rstrip("/")
    if not api.startswith(("http://", "https://")):
        raise SharingError(f"JUPYTERHUB_API_URL is not an http(s) URL: {api[:80]!r}")
    url = f"{api}/share-codes/{quote(user)}/{quote(server)}"
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=json.dumps({"expires_in": int(expires_in)}).encode(),
        method="POST",
        headers={
            "Authorization": f"token {hub['JUPYTERHUB_API_TOKEN']}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            model = json.load(response)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        try:
            detail = json.loads(detail).get("message", detail)
        except (ValueError, AttributeError):
            pass
        if exc.code == 403:
            detail = f"this hub does not let servers share themselves ({detail})"
        raise SharingError(f"the hub refused the link: {detail}") from None
    except OSError as exc:
        raise SharingError(f"the hub did not answer: {exc}") from None
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX") or f"/user/{quote(user)}/{quote(server)}"
    landing = prefix.rstrip("/") + "/" + path.lstrip("/")
    accept = model.get("full_accept_url") or model["accept_url"]
    public = env.get("JUPYTERHUB_PUBLIC_HUB_URL", "")
    if public and not model.get("full_accept_url"):
        accept = public.rstrip("/") + "/accept-share?" + model["accept_url"].split("?", 1)[1]
    return ShareLink(f"{accept}&{urlencode({'next': landing})}", model["id"], model["expires_at"])
