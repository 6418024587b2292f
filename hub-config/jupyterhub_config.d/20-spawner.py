"""Servers as batch jobs on the sites of the registry."""

from continuum_spawners.api import install_api_handlers

c.JupyterHub.spawner_class = "continuum-site"
# (hub username → POSIX account per site: SiteSpawner's default account_resolver_class,
# continuum_spawners.account_map.AccountMapper, applies the registry's user_accounts policies)

# the job's port report (replacing batchspawner's unsafe handler) and job info for the Lab
install_api_handlers()
c.Spawner.default_url = "/lab"
# a queue can be slow; the spawn-pending page shows progress meanwhile
c.Spawner.start_timeout = 900
c.Spawner.http_timeout = 120
# servers are batch jobs that outlive a hub restart
c.JupyterHub.cleanup_servers = False
