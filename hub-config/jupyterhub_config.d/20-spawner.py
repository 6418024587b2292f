"""Servers as batch jobs on the sites of the registry."""

from continuum_spawners.port_api import install_port_handler

c.JupyterHub.spawner_class = "continuum-site"
# replaces batchspawner's unsafe /hub/api/batchspawner handler (see port_api's docstring)
install_port_handler()
c.Spawner.default_url = "/lab"
# a queue can be slow; the spawn-pending page shows progress meanwhile
c.Spawner.start_timeout = 900
c.Spawner.http_timeout = 120
# servers are batch jobs that outlive a hub restart
c.JupyterHub.cleanup_servers = False
