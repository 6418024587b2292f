"""Hub-wide defaults: everything on loopback unless the deployment layer says otherwise."""

c.JupyterHub.bind_url = "http://127.0.0.1:8000"
c.JupyterHub.hub_ip = "127.0.0.1"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8001"
# JupyterHub's proxy client without keep-alive: reused connections that configurable-http-proxy
# had closed failed route updates under load (continuum_hub.proxy)
c.JupyterHub.proxy_class = "continuum_hub.proxy.ContinuumProxy"
c.JupyterHub.shutdown_on_logout = False
# a second server near the data (the catalogue's *Start near the data*) without stopping the
# first one: each named server is its own batch job
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 3

from continuum_hub.logscrub import install_log_scrubber  # noqa: E402 - after the defaults

# tornado's warnings for refused requests print the URI: keep ?token=, code and state out
install_log_scrubber()
