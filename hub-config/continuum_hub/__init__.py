"""Continuum Hub, the hub side: what runs in the JupyterHub process and its managed services.

* :mod:`.identity` — sign-in through OpenID Connect proxies (``continuum-oidc``), stable
  usernames, AARC-G069 entitlements → groups, living tokens and the token API;
* :mod:`.gateway` — the hub-managed Dask Gateway service whose clusters are Slurm jobs on the
  sites;
* :mod:`.workflows` — batch workflows (notebooks promoted to runs, sweeps and chains): the
  workflow file, parameters, the in-job runner, CWL export and RO-Crate provenance;
* :mod:`.config` — helpers the layered ``jupyterhub_config.py`` calls;
* :mod:`.services` — managed services added to every deployment (the idle culler);
* :mod:`.logscrub` — credentials in URLs kept out of the hub's log;
* :mod:`.cli` — the ``continuum-hub`` command.

Sites are reached only through :mod:`continuum_spawners` (its :mod:`~continuum_spawners.schedulers`
package is the one site-access path); this package imports it, never the reverse.  The local
federation of the demo and the tests is a separate package (``continuum_federation`` in
``images/federation/``), not part of this one.
"""
