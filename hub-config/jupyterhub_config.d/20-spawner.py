"""Servers as batch jobs on the sites of the registry."""

from continuum_spawners.api import install_api_handlers
from continuum_spawners.job_end_handler import announcement, install_job_end_handler

c.JupyterHub.spawner_class = "continuum-site"
# (hub username → POSIX account per site: SiteSpawner's default account_resolver_class,
# continuum_spawners.account_map.AccountMapper, applies the registry's user_accounts policies)

# the job's port report (replacing batchspawner's unsafe handler) and job info for the Lab
install_api_handlers()
# a job's end reported by the job itself (walltime, scancel, preemption): seen at once, and
# why it ended on the user's home and spawn pages
install_job_end_handler()
c.JupyterHub.template_vars.update(
    {"announcement_home": announcement, "announcement_spawn": announcement}
)
c.Spawner.default_url = "/lab"
# a queue can be slow; the spawn-pending page shows progress meanwhile
c.Spawner.start_timeout = 900
c.Spawner.http_timeout = 120
# servers are batch jobs that outlive a hub restart
c.JupyterHub.cleanup_servers = False
# a spawn is pending while its job waits in the queue, which costs the hub a share of one status
# query per site: JupyterHub's default of 100 pending spawns would turn the 101st user of a
# workshop or of a busy queue away with 429 (200 users within a minute: bench/storm.py)
c.JupyterHub.concurrent_spawn_limit = 1000
