"""Sign-in through OpenID Connect proxies, with encrypted tokens and entitlement groups."""

c.JupyterHub.authenticator_class = "continuum-oidc"
# tokens are kept for refresh and for the user's jobs; encrypted with JUPYTERHUB_CRYPT_KEY
c.Authenticator.enable_auth_state = True
c.Authenticator.refresh_pre_spawn = True
