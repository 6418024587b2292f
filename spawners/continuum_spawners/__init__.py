"""Continuum Hub, the site side: the site registry and everything that runs work on a site.

* :mod:`.sites` — the site registry, loaded and validated as a whole against
  :mod:`.registry_schema` with ``FILE:LINE:COL`` errors; :mod:`.site_types` — the model it
  builds (:class:`~.site_types.Site`, partitions, environments, access rules, power data),
  re-exported by :mod:`.sites`;
* :mod:`.schedulers` — the one site-access path: ``adapter_for`` (argv builders and parsers per
  scheduler kind), ``transport_for`` (local ``sudo`` or SSH) and ``monitor_for`` (one batched
  status query per site per interval); every caller goes through it;
* :mod:`.options` — user options validated into a typed :class:`~.options.JobRequest`;
  :mod:`.choices` — the registry as it stands, accounts, the form and one validation per spawn;
  :mod:`.form` — the spawn form;
* :mod:`.accounts` — :class:`~.accounts.AccountResolver` (hub user → POSIX account at a site);
  :mod:`.account_map` — :class:`~.account_map.AccountMapper`, its default (pattern, map file,
  pool);
* :mod:`.jobs` — a server job's script, options, environment and progress messages;
  :mod:`.estimates` — queue-wait estimates and the soonest site;
* :mod:`.impact` — energy and CO2e of a job (Green Algorithms, codecarbon's data as defaults);
  :mod:`.budgets` — monthly budgets of users and VOs, checked before every submission;
* :mod:`.spawner` — :class:`~.spawner.SiteSpawner` (entry point ``continuum-site``), with its
  parts :mod:`.submission` (the job's environment, script, ``sbatch``, ``scancel``) and
  :mod:`.tracking` (its status, polls and saved state);
* :mod:`.api` — hub API handlers for servers (port report, job information);
* :mod:`.launcher` — ``continuum-singleuser``, the in-job launcher.

This package imports no hub package: access rules name JupyterHub groups, so the spawner needs
only ``user.groups``.
"""
