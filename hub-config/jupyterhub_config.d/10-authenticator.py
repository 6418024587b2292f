"""Sign-in through OpenID Connect proxies, with encrypted tokens and entitlement groups."""

from tornado.httpclient import AsyncHTTPClient

c.JupyterHub.authenticator_class = "continuum-oidc"
# tokens are kept for refresh and for the user's jobs; encrypted with JUPYTERHUB_CRYPT_KEY
c.Authenticator.enable_auth_state = True
c.Authenticator.refresh_pre_spawn = True

# the providers' back channel (code redemption and userinfo at each sign-in, a refresh before
# each spawn) goes through tornado's shared client, which runs 10 requests at a time and fails
# those queued for 20 s: 200 users within a minute (bench/storm.py) had 84 sign-ins refused
# with "Timeout in request queue".  (JupyterHub switches it to pycurl where pycurl is installed,
# with curl's own limit of 10: the project does not install pycurl.)
AsyncHTTPClient.configure(None, max_clients=200)
