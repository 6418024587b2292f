"""Identity for Continuum Hub: sign-in through OpenID Connect proxies, usernames, entitlements,
living tokens.

* :mod:`.auth` — :class:`~.auth.FederatedAuthenticator` (entry point ``continuum-oidc``):
  oauthenticator's ``GenericOAuthenticator`` plus several providers, ID token checks, stable
  usernames and entitlement groups; its ``get_handlers`` serves every identity route;
* :mod:`.admission` — its admission part: who is allowed, under which username (the identity
  table) and with which groups (trusted entitlements, workshop events), also after a refresh;
* :mod:`.provider_options` — every provider option, declared once (shared by the
  authenticator's primary provider and each further ``OIDCProvider``);
* :mod:`.providers` — :class:`~.providers.OIDCProvider`, the only code that talks to a provider:
  discovery, keys, code grant, refresh grant, userinfo, revocation;
* :mod:`.errors` — the typed errors a provider raises (:class:`~.errors.ProviderError` and kin);
* :mod:`.login` — the login page and each provider's login and callback handlers (state, PKCE,
  nonce, RFC 9207 ``iss``), and what a failed sign-in answers;
* :mod:`.idtoken` — :class:`~.idtoken.IDTokenValidator`: signature, ``iss``, ``aud``, ``azp``,
  ``exp``, ``iat``, ``nonce``;
* :mod:`.identities` — :class:`~.identities.IdentityStore`: ``(issuer, sub)`` → hub username,
  linking through a trusted claim;
* :mod:`.entitlements` — AARC-G069 ``eduperson_entitlement`` parsing and trust → group names;
* :mod:`.tokens` — :class:`~.tokens.TokenRefresher`: refresh before expiry, one refresh per user
  at a time, entitlements re-read, sessions ended;
* :mod:`.token_api` — ``/hub/api/continuum/token``, ``/hub/continuum/sign-in-again`` and the
  token scope (``add_token_scopes``, called by ``jupyterhub_config.py``).

A sign-in: ``/hub/oauth_login/<name>`` (``login.ProviderLoginHandler``) sends the browser to the
provider; ``/hub/oauth_callback/<name>`` (``login.ProviderCallbackHandler``) checks state and
issuer, then ``FederatedAuthenticator.authenticate`` redeems the code
(``OIDCProvider.redeem_code``), validates the ID token (``OIDCProvider.validate_id_token``),
reads userinfo (``OIDCProvider.userinfo``), gives the identity its username
(``IdentityStore.resolve``) and its groups (``entitlements.entitlement_groups``); any
``ProviderError`` becomes a 403 page (``login.sign_in_error``).

A refresh: JupyterHub's ``refresh_user`` (every ``auth_refresh_age`` of activity, before spawns)
or ``GET /hub/api/continuum/token`` calls ``TokenRefresher.refresh_user``, which, under the
user's lock, redeems the refresh token (``OIDCProvider.refresh``), re-reads userinfo and asks
``FederatedAuthenticator.refreshed_auth_model`` for the groups; ``GrantRejected`` or
``InvalidToken`` end the session (tokens removed, ``OIDCProvider.revoke``, the browser sent to
the *sign in again* page), any other ``ProviderError`` is retried at the next request
(``tokens.refresh_answer``).
"""
