"""Who signs in, under which hub username and with which groups: the authenticator's admission.

:class:`UserAdmissionMixin` is part of :class:`~continuum_hub.identity.auth.FederatedAuthenticator`:

* **username** — each ``(issuer, sub)`` gets a stable hub username from the identity table
  (:class:`~.identities.IdentityStore`), never one reserved by another provider, optionally
  linked through a claim the provider is trusted for;
* **groups** — the ``eduperson_entitlement`` values a provider is trusted for become JupyterHub
  groups (:func:`~.entitlements.entitlement_groups`), plus a running workshop event's group;
* **allowed** — oauthenticator's rules (admins, allowed users and groups), then the workshops'
  (someone joining an event open to them through its link, a participant while it runs);
* **after a refresh** — groups and admin rights follow the entitlements read again, and a
  user no longer allowed is signed out (:mod:`.tokens` calls
  :meth:`~UserAdmissionMixin.refreshed_auth_model`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tornado import web

from ..workshops.join import admits, event_groups
from .entitlements import entitlement_groups
from .identities import IdentityError, IdentityStore
from .providers import OIDCProvider


class UserAdmissionMixin:
    """Usernames, groups and the allowed check of
    :class:`~continuum_hub.identity.auth.FederatedAuthenticator` (see the module)."""

    # provided by FederatedAuthenticator (its options, state and providers) and oauthenticator
    log: Any
    identity_db_url: str
    identity_db_path: str
    admin_users: set[str]
    admin_groups: set[str]
    user_auth_state_key: str
    providers_by_name: dict[str, OIDCProvider]
    primary_provider: OIDCProvider | None
    provider_for: Any
    validate_username: Any
    _store: IdentityStore | None
    _hub_users: set[str]

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool:
        """oauthenticator's rules (admins, allowed users and groups), then workshops' (someone
        joining an event open to them through its link, a participant while it runs)."""
        return await super().check_allowed(username, auth_model) or admits(username, auth_model)

    # ---- identity --------------------------------------------------------------------------

    def identity_store(self) -> IdentityStore:
        """The ``(issuer, sub)`` → username table (``identity_db_url`` or ``identity_db_path``)."""
        if self._store is None:
            where = self.identity_db_url or Path(self.identity_db_path).absolute()
            self._store = IdentityStore(where)
        return self._store

    def add_user(self, user: Any) -> None:
        """Remember the hub's users: those that predate the identity table belong to the
        primary provider (they were named after its ``preferred_username``)."""
        super().add_user(user)
        self._hub_users.add(user.name)

    async def username_for(
        self, provider: OIDCProvider, subject: str, user_info: dict[str, Any]
    ) -> str:
        """The stable hub username of ``(provider.issuer, subject)`` (allocated at first use).

        A new identity gets the name it suggests when ``provider`` reserves it, else is linked
        when ``provider`` is trusted for its ``link_claim``; names reserved by other providers,
        and hub users older than the table (unless ``provider`` is the primary one), are never
        given to it.
        """
        value = user_info.get(provider.link_claim) if provider.link_claim else None
        link = (provider.link_claim, value) if isinstance(value, str) and value else None
        suggestion = user_info.get(provider.username_claim)
        taken = {n for p in self.providers_by_name.values() if p is not provider
                 for n in p.reserved_usernames}  # fmt: skip
        if provider is not self.primary_provider:
            taken |= self._hub_users
        try:
            identity = await asyncio.to_thread(
                self.identity_store().resolve,
                provider.issuer,
                subject,
                provider=provider.name,
                suggestion=suggestion if isinstance(suggestion, str) else "",
                link=link,
                valid=self.validate_username,
                taken=taken.__contains__,
                reserved=provider.reserved_usernames,
            )
        except IdentityError as exc:
            self.log.error("Sign-in refused: %s", exc)
            raise web.HTTPError(403, "No username could be given to you.") from None
        if identity.created:
            how = "linked to" if identity.linked else "new user"
            name = identity.username
            self.log.info("Identity of %s (sub %.8s…): %s %s", provider.name, subject, how, name)
        return identity.username

    # ---- entitlements → groups -------------------------------------------------------------

    def groups_from_user_info(self, provider: OIDCProvider, user_info: dict[str, Any]) -> set[str]:
        """Groups from the entitlements in ``user_info`` that ``provider`` is trusted for."""
        return entitlement_groups(
            user_info.get(provider.entitlement_claim),
            provider.trusted_namespaces,
            provider.trusted_authorities,
            log=lambda reason: self.log.warning("Ignoring %s of %s", reason, provider.name),
        )

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """Groups from the trusted entitlements in the userinfo response."""
        try:
            provider = self.provider_for(auth_state)
        except (KeyError, ValueError) as exc:
            self.log.warning("No groups: %s", exc)
            return set()
        return self.groups_from_user_info(provider, auth_state.get(self.user_auth_state_key) or {})

    async def refreshed_auth_model(
        self, username: str, provider: OIDCProvider, auth_state: dict, user_info: dict
    ) -> dict[str, Any] | None:
        """The auth model of ``username`` after a refresh that read ``user_info`` again (groups
        and admin rights follow the entitlements); ``None`` when no longer allowed."""
        groups = set(self.groups_from_user_info(provider, user_info)) | event_groups(username)
        admin: bool | None = True if username in self.admin_users else None
        if admin is None and self.admin_groups:
            admin = bool(groups & set(self.admin_groups))
        model = {
            "name": username,
            "auth_state": auth_state,
            "groups": sorted(groups),
            "admin": admin,
        }
        try:
            allowed = await self.check_allowed(username, model)
        except Exception as exc:  # oauthenticator (and subclasses) refuse with an HTTP 403
            self.log.info("Refresh of %s: check_allowed refused: %s", username, exc)
            allowed = False
        return model if allowed else None
