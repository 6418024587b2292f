"""The options of :class:`~continuum_hub.auth.FederatedAuthenticator` that say which identity
providers it trusts, and for what: :class:`ProviderOptions`.

They are the authenticator's own (``c.FederatedAuthenticator.issuer`` …), kept here so that the
authenticator's module holds the sign-in logic only.  ``issuer``, ``client_id``,
``client_secret`` and the trust options describe the *primary* provider (the single-provider
configuration); ``providers`` adds more, each a dict of
:class:`~continuum_hub.providers.OIDCProvider` options.
"""

from __future__ import annotations

from typing import Any

from traitlets import Dict, Float, HasTraits, List, Unicode, validate

from .idtoken import DEFAULT_ALGORITHMS
from .providers import OIDCProvider

# options of the authenticator that configure its primary provider, as OIDCProvider options
PRIMARY_SETTINGS = (
    "issuer",
    "client_id",
    "client_secret",
    "discovery_timeout",
    "entitlement_claim",
    "trusted_namespaces",
    "trusted_authorities",
    "id_token_algorithms",
    "id_token_leeway",
    "link_claim",
    "reserved_usernames",
)


class ProviderOptions(HasTraits):
    """Identity providers and trust: mixed into ``FederatedAuthenticator`` (configure them there).

    ``client_id`` and ``client_secret`` of the primary provider are oauthenticator's own.
    """

    issuer = Unicode(
        config=True,
        help="""OpenID issuer identifier of the primary identity proxy.

        Its discovery document provides ``authorize_url``, ``token_url`` and ``userdata_url``
        unless those are set explicitly.  The document's ``issuer`` must equal this value.
        Empty: no primary provider (only those of ``providers``).""",
    )
    provider_name = Unicode(
        "default",
        config=True,
        help="""Short name of the primary provider (``[a-z0-9-]``): its URLs
        ``/hub/oauth_login/<name>``, the ``provider`` in ``auth_state`` and the qualifier of
        taken usernames.  Its button says *Sign in with <login_service>*.""",
    )
    discovery_timeout = Float(
        10.0,
        config=True,
        help="Seconds to wait for the issuer's discovery document (fetched once, at first use).",
    )
    entitlement_claim = Unicode(
        "eduperson_entitlement",
        config=True,
        help="Userinfo claim holding the AARC-G069 group entitlements.",
    )
    trusted_namespaces = List(
        Unicode(),
        config=True,
        help="""Entitlement namespaces accepted from the primary issuer, e.g. ``["mace:egi.eu"]``.

        Entitlements in any other namespace are ignored (and logged), so a proxy cannot grant
        membership in groups it does not manage.  Empty (the default) ignores all entitlements.
        """,
    )
    trusted_authorities = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help="""Entitlement authorities (the part after ``#``) accepted from the primary issuer.

        ``None`` (the default) accepts any authority; a list accepts only those named.
        """,
    )
    id_token_algorithms = List(
        Unicode(),
        default_value=list(DEFAULT_ALGORITHMS),
        config=True,
        help="""Signature algorithms accepted for the primary provider's ID tokens (asymmetric
        only; ``none`` and ``HS*`` are refused at start-up).""",
    )
    id_token_leeway = Float(
        0.0,
        config=True,
        help="Seconds of clock skew tolerated when checking an ID token's ``exp`` and ``iat``.",
    )
    link_claim = Unicode(
        "",
        config=True,
        help="""Claim that identifies a person across providers (``voperson_id``), trusted from
        the primary provider (see ``OIDCProvider.link_claim``).  Empty: no linking.""",
    )
    reserved_usernames = List(
        Unicode(),
        config=True,
        help="""Usernames only the primary provider's users may be given as they are (see
        ``OIDCProvider.reserved_usernames``).  Default: none.""",
    )
    providers = Dict(
        value_trait=Dict(),
        config=True,
        help="""More identity providers, by name: ``{"egi": {"issuer": …, "client_id": …,
        "client_secret_file": …, "display_name": "EGI Check-in",
        "trusted_namespaces": ["mace:egi.eu"], …}}``; each value holds
        ``OIDCProvider`` options.  Names: lowercase letters, digits and ``-``.""",
    )
    identity_db_path = Unicode(
        "continuum-identities.sqlite",
        config=True,
        help="""SQLite file mapping ``(issuer, sub)`` to hub usernames (created 0600; relative
        paths are relative to the hub's working directory).  Keep it with the hub database:
        losing it re-allocates usernames.""",
    )

    @validate("providers")
    def _check_providers(self, proposal: dict[str, Any]) -> dict[str, Any]:
        known = set(OIDCProvider.class_trait_names(config=True))
        for name, settings in proposal["value"].items():
            unknown = set(settings) - known
            if unknown:
                raise ValueError(f"provider {name!r}: unknown options {sorted(unknown)}")
            if settings.get("name", name) != name:
                raise ValueError(f"provider {name!r} names itself {settings['name']!r}")
        return proposal["value"]

    @validate("id_token_algorithms")
    def _check_algorithms(self, proposal: dict[str, Any]) -> list[str]:
        unsafe = [a for a in proposal["value"] if a == "none" or a.upper().startswith("HS")]
        if unsafe:
            raise ValueError(f"ID token algorithms {unsafe} must not be accepted")
        return proposal["value"]
