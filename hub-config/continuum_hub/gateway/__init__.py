"""Dask Gateway for Continuum Hub: a hub-managed service running Dask clusters on the sites.

* :mod:`.options` — cluster options built from the site registry, validated declaratively
  (dask-gateway's ``Options``), and per-user limits from the user's groups (entitlements);
* :mod:`.jobs` — what a cluster's scheduler and worker jobs are (argv, environment, script with
  the token setup step) and which POSIX account runs them;
* :mod:`.backend` — :class:`~.backend.SiteSlurmBackend`, dask-gateway's jobqueue Slurm backend
  made site-aware: each cluster's scheduler and workers are Slurm jobs of the user on the chosen
  site, one status query per site per interval;
* :mod:`.quickstart` — workers started with the cluster (the first in the scheduler's job) and
  the phases of a start; :mod:`.scheduler_setup` — the preload run inside each scheduler;
* :mod:`.launcher` — run as the user by ``sudo``: staging folder, ``sbatch``, ``scancel``;
* :mod:`.accounting` — budgets and the usage ledger for the clusters' jobs;
* :mod:`.auth` — hub tokens with ``access:services!service=dask-gateway``, bad ones get 401;
* :mod:`.dashboard` — dashboards behind the gateway's own check: only the cluster's owner;
* :mod:`.service` — :class:`~.service.GatewayService`, the hub side: the managed service entry,
  the scopes that let users' servers use it, the zero-configuration environment of the servers,
  and the hook that stops a user's clusters when their server stops;
* :mod:`.app` — the service's process (``python -m continuum_hub.gateway``).
"""

#: the gateway's name as a JupyterHub service (tokens need access:services!service=NAME)
SERVICE_NAME = "dask-gateway"
#: the path below the hub's public URL where the hub's proxy sends the gateway's traffic
SERVICE_PREFIX = f"/services/{SERVICE_NAME}"
#: the scope a token needs to use the gateway
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
