"""The local federation: every piece of the demo and test stack, run on 127.0.0.1.

Used by ``make demo`` (``python -m continuum_federation demo``), the test fixtures
(``tests/fixtures/``) and the benchmarks (``bench/``).  It ships with the source checkout only,
not in the ``continuum-hub`` wheel a site installs: ``images/setup.sh`` makes it importable in
the project's environment with a ``.pth`` file naming ``images/federation/``, and pytest's
``pythonpath`` lists that folder too.

Modules
-------
:mod:`.process`
    Supervision of child processes (:class:`~.process.ManagedProcess`), free ports.
:mod:`.accounts`
    The demo users' Unix accounts.
:mod:`.munge`
    A private munged (:class:`~.munge.MungeDaemon`).
:mod:`.slurm_spec`, :mod:`.slurm`
    The demo clusters' spec (``images/slurm/clusters.yaml``) and real local Slurm clusters
    (:class:`~.slurm.LocalSlurmCluster`).
:mod:`.mariadb`, :mod:`.slurmdbd`
    Slurm accounting: a private MariaDB server and the one slurmdbd every site reports to
    (:class:`~.slurmdbd.SlurmDBD`).
:mod:`.idp`
    The OpenID provider (npm ``oidc-provider``, ``images/idp/``) and the demo users.
:mod:`.hub`
    JupyterHub with ``continuum-oidc`` and ``continuum-site`` on the above
    (:class:`~.hub.LocalHub`).
:mod:`.rucio`
    A real Rucio server (its own environment, SQLite, POSIX RSEs) for the catalogue
    (:class:`~.rucio.RucioServer`).
:mod:`.stack`
    All of it in one object (:class:`~.stack.Federation`).
:mod:`.cli`
    The ``demo`` command (also ``continuum-hub demo`` in a checkout's environment).

Every piece reads the checkout's files (``hub-config/``, ``images/``, ``node_modules/``) from a
``repo_root`` its caller passes; none computes paths from its own location.
"""
