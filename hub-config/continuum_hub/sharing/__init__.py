"""Sharing a server (issue 13 item 5): the scopes users need, the page ``/hub/continuum/sharing``.

JupyterHub 6 has the share and share-code APIs (``/hub/api/shares``, ``/hub/api/share-codes``,
``/hub/accept-share``) but no page to create shares.  :func:`add_sharing` puts both pieces into a
hub's configuration:

* **Policy.** Every user may share their own servers: ``JupyterHub.extra_user_scopes`` gets
  :data:`USER_SHARING_SCOPES` (``shares!user`` to grant and revoke, ``read:users:name`` and
  ``read:groups:name`` because JupyterHub refuses to share with a user or group it may not name).
  Seeing every user's *name* is the price of "share with a user"; nothing else of theirs.
  A server's own token gets ``shares!user`` as well so that a kernel can make a share code for
  its own server (``continuum_widgets.share_view``); a token's scopes never exceed its owner's.
* **Page.** :mod:`.page`: the signed-in user's servers, who has access to each (users, groups,
  and the revocable links with how often they were used), forms to share with a user or group or
  to make a link, revocation, and the servers shared with the user.

The instructor of a workshop opens a participant's server through the same shares, granted by
the event's policy (:mod:`continuum_hub.workshops.instructor`).
"""

from __future__ import annotations

from traitlets.config import Config

__all__ = ["USER_SHARING_SCOPES", "add_sharing"]

#: scopes added to the ``user`` role: share one's own servers with named users and groups
USER_SHARING_SCOPES = ("shares!user", "read:users:name", "read:groups:name")
#: scopes added to each server's token (a kernel sharing its own server)
SERVER_SHARING_SCOPES = ("shares!user",)
#: JupyterHub's default scopes of the ``server`` role (used when no layer set them)
DEFAULT_SERVER_SCOPES = ("users:activity!user", "access:servers!server")


def grant_sharing_scopes(c: Config) -> None:
    """Add :data:`USER_SHARING_SCOPES` to ``JupyterHub.extra_user_scopes`` and
    :data:`SERVER_SHARING_SCOPES` to ``Spawner.server_token_scopes`` unless a deployment made
    that a callable (then it decides).  Idempotent.

    Through ``extra_user_scopes``, as the services' access scopes, never by defining the ``user``
    role: a ``user`` role in ``load_roles`` makes JupyterHub ignore ``extra_user_scopes``, and
    with them every service's ``access:services`` scope (Dask Gateway tokens were refused).
    """
    hub = c.JupyterHub
    extra = set(hub.extra_user_scopes) if "extra_user_scopes" in hub else set()
    hub.extra_user_scopes = extra | set(USER_SHARING_SCOPES)
    roles = [dict(r) for r in hub.load_roles] if "load_roles" in hub else []
    spawner = c.Spawner
    current = spawner.server_token_scopes if "server_token_scopes" in spawner else None
    if callable(current):
        return
    if not current:
        server = next((r for r in roles if r.get("name") == "server"), {})
        current = server.get("scopes") or DEFAULT_SERVER_SCOPES
    server_scopes = list(current)
    server_scopes += [s for s in SERVER_SHARING_SCOPES if s not in server_scopes]
    spawner.server_token_scopes = server_scopes


def add_sharing(c: Config) -> None:
    """Let users share their servers (:func:`grant_sharing_scopes`) and serve the sharing page.

    Call after :func:`continuum_hub.identity.token_api.add_token_scopes` (both extend
    ``Spawner.server_token_scopes``; either order keeps the other's scopes)."""
    from .page import add_sharing_page

    grant_sharing_scopes(c)
    add_sharing_page(c)
