"""The spawner's side of what users ask for: the registry as it stands, their accounts, the
form, and one validation per spawn.

:class:`ChoicesMixin` is part of :class:`~continuum_spawners.spawner.SiteSpawner`.  User options
(from the form or the REST API) are validated once, into a
:class:`~continuum_spawners.options.JobRequest` that carries the registry's site and partition
from then on: the form handler's request is handed to ``apply_user_options`` as it is, and the
job's site is never looked up again while it runs.  The registry file is looked at for changes
at every spawn and form, otherwise at most every ``SiteSpawner.registry_check_interval``
seconds (:func:`~continuum_spawners.sites.load_registry`).
"""

from __future__ import annotations

import pwd
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tornado import web

from . import site_health
from .accounts import AccountResolver, NoAccountError, checked_passwd, shared_resolver
from .form import render_form
from .options import (
    LOCALITY_FIELDS,
    JobRequest,
    OptionsError,
    data_fields,
    options_from_form,
    validate_options,
)
from .site_health import refusal_status
from .sites import Site, SiteRegistry, load_registry


class ChoicesMixin:
    """Registry, accounts, form and options of :class:`~continuum_spawners.spawner.SiteSpawner`
    (see the module)."""

    # provided by SiteSpawner (traits and state) and JupyterHub's Spawner
    registry_path: str
    registry_check_interval: float
    account_resolver_class: type[AccountResolver]
    request: JobRequest | None
    site_account: str
    user: Any
    user_options: dict[str, Any]
    config: Any
    log: Any
    _log_name: str
    # what options_from_form validated: (options, registry, groups), request; for
    # apply_user_options, which JupyterHub calls next with the same options
    _form_request: tuple[tuple[Any, ...], JobRequest] | None = None

    @property
    def registry(self) -> SiteRegistry:
        """The site registry, reloaded when its file changed (looked at every
        ``registry_check_interval`` seconds)."""
        return self.load_registry(self.registry_check_interval)

    def load_registry(self, max_age: float = 0.0) -> SiteRegistry:
        """The site registry, looking whether its file changed if the last look is ``max_age``
        seconds old (0, for spawns: now)."""
        if not self.registry_path:
            raise RuntimeError("SiteSpawner.registry_path is not set")
        return load_registry(self.registry_path, max_age)

    @property
    def user_groups(self) -> list[str]:
        return [group.name for group in self.user.groups]

    @property
    def accounts(self) -> AccountResolver:
        """The hub-wide account resolver."""
        return shared_resolver(self.account_resolver_class, self.config, log=self.log)

    def unavailable_sites(self, registry: SiteRegistry | None = None) -> dict[str, str]:
        """Sites the user's groups allow but where they have no account, or whose scheduler
        does not answer (the hub's probe, :mod:`.site_health`): name → message."""
        return self._unavailable(registry)[0]

    def _unavailable(
        self, registry: SiteRegistry | None = None
    ) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """Unavailable sites (name → message): all, those not answering, those without an
        account (which message wins where both hold)."""
        sites = (self.registry if registry is None else registry).for_groups(self.user_groups)
        down = site_health.BOARD.down({site.name: site.label for site in sites})
        no_account = self.accounts.unavailable(self.user.name, sites)
        return {**down, **no_account}, down, no_account

    def check_options(
        self, options: Mapping[str, Any], registry: SiteRegistry | None = None
    ) -> JobRequest:
        """:func:`validate_options` for this user: their groups, and sites they have accounts at
        (against ``registry``, by default the one last loaded)."""
        registry = self.registry if registry is None else registry
        hook = getattr(self, "event_options_hook", None)
        if hook is not None:  # a workshop's participant starting the event's profile
            request = hook(self, options, registry)
            if request is not None:
                return request
        unavailable, down, no_account = self._unavailable(registry)
        try:
            return validate_options(options, registry, self.user_groups, unavailable)
        except OptionsError as exc:
            # refused only because sites do not answer: 503, the user may retry later
            allowed = [site.name for site in registry.for_groups(self.user_groups)]
            status = refusal_status(options.get("site"), down, allowed, no_account)
            if status is None or exc.status != 403:
                raise
            raise OptionsError(str(exc), status=status) from None

    def _render_options_form(self) -> str:
        registry = self.load_registry()
        sites = registry.for_groups(self.user_groups)
        unavailable = self.unavailable_sites(registry)
        last = None
        if self.user_options:  # the previous choice, preselected if still allowed
            try:
                last = validate_options(self.user_options, registry, self.user_groups, unavailable)
            except OptionsError:
                last = None  # the old choice is no longer allowed: offer the defaults
        return render_form(sites, last, unavailable, self._data_from_query(registry))

    def _data_from_query(self, registry: SiteRegistry) -> dict[str, Any]:
        """The data named in the spawn URL's query (``data_sites``, ``datasets``,
        ``transfer``, also with JupyterHub's ``opt-`` prefix), validated; empty when none or
        invalid (the spawn from the query was then refused with the reason, shown above the
        form)."""
        handler = getattr(self, "handler", None)
        arguments = getattr(getattr(handler, "request", None), "query_arguments", None) or {}
        query: dict[str, list[str]] = {}
        for key, values in arguments.items():
            name = key.removeprefix("opt-")
            if name in LOCALITY_FIELDS:
                query[name] = [v.decode("utf-8", "replace") for v in values]
        if not query.get("data_sites"):
            return {}
        try:
            return data_fields(options_from_form(query), registry)
        except OptionsError:
            return {}

    def options_from_form(self, form_data: dict[str, list[str]]) -> dict[str, Any]:
        registry = self.load_registry()
        try:
            options = options_from_form(form_data)
            # checked here, so that a refusal shows the form again with the message
            request = self.check_options(options, registry)
        except OptionsError as exc:
            raise web.HTTPError(exc.status, str(exc)) from None
        self._form_request = ((dict(options), registry, self.user_groups), request)
        return options

    def _apply_options(self, user_options: dict[str, Any]) -> None:
        """Validate ``user_options`` into :attr:`request`, once per spawn: the request that
        :meth:`options_from_form` has just made of the same options, against the same registry
        and groups, is taken as it is."""
        handed, self._form_request = self._form_request, None
        registry = self.load_registry()
        if handed is not None and handed[0] == (
            dict(user_options or {}),
            registry,
            self.user_groups,
        ):
            self.request = handed[1]
            return
        try:
            self.request = self.check_options(user_options or {}, registry)
        except OptionsError as exc:
            self.log.warning("Refused options of %s: %s", self._log_name, exc)
            raise web.HTTPError(exc.status, str(exc)) from None

    @property
    def site(self) -> Site:
        """The request's site, as validated (a request read back from a server's saved state
        looks it up in the registry once)."""
        if self.request is None:
            raise RuntimeError("no validated request")
        if self.request.site_entry is None:
            site = self.registry.get(self.request.site)
            if site is None:
                raise RuntimeError(f"site {self.request.site!r} is no longer in the registry")
            partition = site.partition(self.request.partition)
            self.request = replace(self.request, site_entry=site, partition_entry=partition)
        assert self.request.site_entry is not None
        return self.request.site_entry

    def known_site(self) -> Site | None:
        """:attr:`site`, or ``None`` where there is none (no request, or a site since removed
        from the registry)."""
        try:
            return self.site if self.request is not None else None
        except RuntimeError:
            return None

    def unix_account(self, site: Site | None = None, allocate: bool = False) -> pwd.struct_passwd:
        """The user's POSIX account at ``site`` (default: the job's, as submitted); 403 with a
        clear message if there is none."""
        try:
            if site is None and self.site_account:
                return checked_passwd(self.site_account)
            name = self.accounts.require(self.user.name, site or self.site, allocate=allocate)
            return checked_passwd(name)
        except NoAccountError as exc:
            raise web.HTTPError(403, str(exc)) from None
