"""Every option that says which identity providers the hub trusts, and for what, declared once.

:class:`ProviderOptions`
    What any provider has: issuer, discovery timeout, ID token checks, the entitlements and
    linking it is trusted for, its reserved usernames.  Both
    :class:`~continuum_hub.identity.providers.OIDCProvider` (``c.OIDCProvider.<option>``, or a
    ``providers`` entry) and :class:`~continuum_hub.identity.auth.FederatedAuthenticator`
    (``c.FederatedAuthenticator.<option>``: the *primary* provider, the single-provider
    configuration) inherit these traits; the authenticator builds its primary ``OIDCProvider``
    from its values (:data:`PRIMARY_SETTINGS`).
:class:`OIDCProviderOptions`
    What only a further provider needs: its name, client, button, redirect URI, endpoints and
    scopes.  The primary provider takes these from oauthenticator's own options
    (``client_id``, ``authorize_url``, ``scope``, …) and ``provider_name``/``login_service``.
:class:`FederationOptions`
    The authenticator's: the primary provider's name, the further ``providers``, and the
    identity table.
"""

from __future__ import annotations

import re
from typing import Any

from traitlets import Bool, Dict, Float, HasTraits, List, Unicode, validate

from .idtoken import DEFAULT_ALGORITHMS

NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
DEFAULT_SCOPE = ("openid", "profile", "email", "eduperson_entitlement", "offline_access")


class ProviderOptions(HasTraits):
    """Options every identity provider has (mixed into ``OIDCProvider`` and the authenticator).

    On ``FederatedAuthenticator`` they describe the primary provider.
    """

    issuer = Unicode(
        config=True,
        help="""OpenID issuer identifier of the provider.

        Its discovery document provides the endpoints that are not set explicitly, and must
        name exactly this issuer.  On the authenticator: the primary provider's; empty, there
        is no primary provider (only those of ``providers``).""",
    )
    discovery_timeout = Float(
        10.0,
        config=True,
        help="Seconds to wait for the issuer's discovery document (fetched once, at first "
        "use; default 10).",
    )
    entitlement_claim = Unicode(
        "eduperson_entitlement",
        config=True,
        help="Userinfo claim holding the AARC-G069 group entitlements.",
    )
    trusted_namespaces = List(
        Unicode(),
        config=True,
        help="""Entitlement namespaces accepted from the provider, e.g. ``["mace:egi.eu"]``.

        Entitlements in any other namespace are ignored (and logged), so a provider cannot
        grant membership in groups it does not manage.  Empty (the default): none accepted.""",
    )
    trusted_authorities = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help="""Entitlement authorities (the part after ``#``) accepted from the provider.

        ``None`` (the default) accepts any authority; a list accepts only those named.""",
    )
    id_token_algorithms = List(
        Unicode(),
        default_value=list(DEFAULT_ALGORITHMS),
        config=True,
        help="""Signature algorithms accepted for the provider's ID tokens (asymmetric only:
        ``none`` and ``HS*`` are refused at start-up).  Default: the RS, PS and ES families.""",
    )
    id_token_leeway = Float(
        0.0,
        config=True,
        help="Seconds of clock skew tolerated when checking an ID token's ``exp`` and ``iat`` "
        "(default 0).",
    )
    link_claim = Unicode(
        "",
        config=True,
        help="""Userinfo claim that identifies a person across providers (``voperson_id``).

        When set, a person's first sign-in through this provider reuses the hub username of an
        identity (of any provider also trusted for this claim) with the same value.  Only set
        it for providers whose values are globally unique and verified.  Empty (the default):
        no linking.""",
    )
    reserved_usernames = List(
        Unicode(),
        config=True,
        help="""Usernames only this provider's users may be given as they are (e.g. the
        accounts of its institution's people): someone of another provider who suggests one
        of them gets a qualified name (``alice-partner``).  Default: none.""",
    )

    @validate("issuer")
    def _validate_issuer(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value and not value.startswith(("https://", "http://")):
            raise ValueError(f"issuer must be an http(s) URL, not {value!r}")
        return value

    @validate("id_token_algorithms")
    def _validate_id_token_algorithms(self, proposal: dict[str, Any]) -> list[str]:
        unsafe = [a for a in proposal["value"] if a == "none" or a.upper().startswith("HS")]
        if unsafe or not proposal["value"]:
            raise ValueError(f"ID token algorithms must be asymmetric ones, not {unsafe or []}")
        return proposal["value"]


class OIDCProviderOptions(ProviderOptions):
    """The options of a further provider (an ``OIDCProvider``) beyond :class:`ProviderOptions`."""

    name = Unicode(
        config=True,
        help="""Short identifier of the provider (lowercase letters, digits, ``-``; at most 32).

        It names the provider's URLs (``/hub/oauth_login/<name>``, ``/hub/oauth_callback/<name>``),
        is kept in the user's ``auth_state`` and qualifies usernames that are already taken.""",
    )
    display_name = Unicode(
        config=True, help="Name on the login button (*Sign in with <display_name>*); default: name."
    )
    client_id = Unicode(config=True, help="This hub's client ID at the provider.")
    client_secret = Unicode(
        config=True,
        help="This hub's client secret at the provider (prefer ``client_secret_file``).",
    )
    client_secret_file = Unicode(
        config=True,
        help="File holding the client secret (read at start; keep it 0600). Overrides "
        "``client_secret``.",
    )
    callback_url = Unicode(
        config=True,
        help="""Redirect URI registered at the provider.  Default: the authenticator's
        ``oauth_callback_url`` followed by ``/<name>`` (``https://hub/hub/oauth_callback/egi``);
        every provider must have its own (mix-up defence).""",
    )
    authorize_url = Unicode(config=True, help="Authorization endpoint; default from discovery.")
    token_url = Unicode(config=True, help="Token endpoint; default from discovery.")
    userdata_url = Unicode(config=True, help="Userinfo endpoint; default from discovery.")
    revocation_url = Unicode(
        config=True, help="Revocation endpoint (RFC 7009); default from discovery, may be empty."
    )
    scope = List(
        Unicode(),
        default_value=list(DEFAULT_SCOPE),
        config=True,
        help="Scopes requested at sign-in (default: openid profile email "
        "eduperson_entitlement offline_access).",
    )
    username_claim = Unicode(
        "preferred_username",
        config=True,
        help="Userinfo claim that suggests the hub username at a person's first sign-in "
        "(sanitized; qualified with the provider's name when taken).",
    )
    require_iss_in_response = Bool(
        None,
        allow_none=True,
        config=True,
        help="Require the ``iss`` parameter in the authorization response (RFC 9207).  "
        "``None`` (the default): when discovery says the provider sends it.",
    )

    @validate("name")
    def _validate_name(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if not NAME_PATTERN.match(value):
            raise ValueError(f"provider name {value!r} must match {NAME_PATTERN.pattern}")
        return value


#: the authenticator's options that configure its primary provider, as ``OIDCProvider`` options
#: (``client_id`` and ``client_secret`` are oauthenticator's own)
PRIMARY_SETTINGS = ("client_id", "client_secret", *ProviderOptions.class_trait_names(config=True))


class FederationOptions(ProviderOptions):
    """The authenticator's identity options: :class:`ProviderOptions` for the primary provider,
    its name, further providers and the identity table (mixed into ``FederatedAuthenticator``).
    """

    provider_name = Unicode(
        "default",
        config=True,
        help="""Short name of the primary provider (``[a-z0-9-]``): its URLs
        ``/hub/oauth_login/<name>``, the ``provider`` in ``auth_state`` and the qualifier of
        taken usernames.  Its button says *Sign in with <login_service>*.""",
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
    identity_db_url = Unicode(
        "",
        config=True,
        help="""SQLAlchemy URL of the identity table's database, e.g.
        ``postgresql+psycopg://hub@/continuum?host=/var/run/postgresql`` (it may be the hub's
        own database: the tables are ``accounts`` and ``identities``).  Default (empty): the
        SQLite file ``identity_db_path``.""",
    )

    @validate("providers")
    def _validate_providers(self, proposal: dict[str, Any]) -> dict[str, Any]:
        known = set(OIDCProviderOptions.class_trait_names(config=True))
        for name, settings in proposal["value"].items():
            unknown = set(settings) - known
            if unknown:
                raise ValueError(f"provider {name!r}: unknown options {sorted(unknown)}")
            if settings.get("name", name) != name:
                raise ValueError(f"provider {name!r} names itself {settings['name']!r}")
        return proposal["value"]
