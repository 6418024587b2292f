"""How a gateway cluster's scheduler and workers become Slurm jobs (base of the backend).

:class:`SiteJobs` builds, from the site registry and a cluster's :class:`SiteClusterConfig`,
what one job is: the ``sbatch`` argv (the site's adapter from
:func:`~continuum_spawners.schedulers.adapter_for`, as the spawner's, so both submit the same
way), the job's whole environment (exported by name; secrets travel there only) and its script
(fixed text: the environment's modules, the token setup step, the quoted Dask command).

* scheduler and workers listen on the site's ``bind_address`` and run ``<env>/bin/dask`` of the
  chosen software environment (distributed ≥ 2026.6 has no ``dask-scheduler``);
* a GPU worker asks Slurm for its GPUs (``--gres``; Slurm sets ``CUDA_VISIBLE_DEVICES``) and
  advertises them as the dask resource ``GPU``;
* every job of a cluster is named ``dg-<cluster>``; the first worker started with the cluster
  may run in the scheduler's job (:mod:`.quickstart`): one job, both commands;
* commands reach the site through its transport (:mod:`.remote`): ``sudo -nHu ACCOUNT`` runs
  :mod:`.launcher` (standard library only) to submit and cancel, here or on an SSH site's login
  node; on a slurmrestd site the job stages its folder itself from its environment;
* :meth:`SiteJobs.token_setup` is the one place where jobs get ``BEARER_TOKEN_FILE``: the token
  agent, fed with the hub token the cluster was created with, keeps it fresh;
* :meth:`SiteJobs.unix_account` is the one place that decides which POSIX account runs a user's
  jobs (the hub's account mapping).
"""

from __future__ import annotations

import math
import os
import pwd
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.db_base import Cluster
from dask_gateway_server.backends.jobqueue.slurm import SlurmClusterConfig
from dask_gateway_server.traitlets import Type
from traitlets import Bool, Integer, List, Unicode, default

from continuum_spawners.accounts import AccountResolver, NoAccountError, shared_resolver
from continuum_spawners.schedulers import adapter_for
from continuum_spawners.schedulers.base import JobSpec
from continuum_spawners.schedulers.transport import SAFE_PATH
from continuum_spawners.sites import Site, SiteRegistry, load_registry

from .quickstart import BOTH_SCRIPT, START_WORKERS_ENV, scheduler_args, worker_target
from .remote import SCHEDULER_TAIL, SiteCommands, stage_environment, stage_step, stages_itself

CLUSTER_NAME = re.compile(r"^[0-9a-f]{32}$")
GIB = 2**30
# file names in the cluster's staging folder: BEARER_TOKEN_FILE of its jobs, and the creator's
# hub token that the token agent reads
TOKEN_FILE = "bearer_token"  # noqa: S105 - a file name
HUB_TOKEN_FILE = "hub-token"  # noqa: S105 - a file name
#: the state of a worker that runs in its scheduler's job (its job id is the scheduler's)
WITH_SCHEDULER = "with_scheduler"

JOB_SCRIPT = """#!/bin/sh
# Dask {role} of a Continuum Hub gateway cluster.  Resources are on the sbatch command line;
# credentials are in the job's environment, not in this script.
set -eu
{setup}exec {command}
"""


class SiteClusterConfig(SlurmClusterConfig):
    """One cluster's configuration: the Slurm options plus where and what it runs."""

    site = Unicode("", config=True, help="Site of the registry that runs the cluster's jobs.")
    worker_gpus = Integer(0, min=0, config=True, help="GPUs per worker (Slurm --gres).")
    gpu_type = Unicode("", config=True, help="GPU type of the partition (gres gpu:TYPE:N).")
    software_environment = Unicode(
        "", config=True, help="Software environment of the site (registry); '' is its default."
    )
    walltime_minutes = Integer(
        60, min=1, config=True, help="Walltime of the scheduler's and each worker's job (minutes)."
    )
    adaptive_minimum = Integer(0, min=0, config=True, help="Adaptive scaling: fewest workers.")
    adaptive_maximum = Integer(
        0, min=0, config=True, help="Adaptive scaling: most workers; 0 means scaled by hand."
    )
    start_workers = Integer(
        0,
        min=0,
        config=True,
        help="""Workers submitted right after the scheduler's job (the cluster option
        ``workers``), not once it runs: they read its address from the staging folder
        (:mod:`.quickstart`).""",
    )
    scheduler_in_worker_job = Bool(
        True,
        config=True,
        help="""Run the first of the ``start_workers`` in the scheduler's job (one job asking
        for the cores and memory of both; it lasts as long as the scheduler, also after that
        worker is scaled away).  False: every worker is a job of its own.""",
    )
    user_groups = List(
        Unicode(),
        config=True,
        help="""JupyterHub groups of the cluster's creator when it was created: their per-user
        totals (GatewayLimits) bound its scaling.  Set by the backend, not by users.""",
    )
    reservation = Unicode(
        "",
        config=True,
        help="""Slurm reservation of every job of the cluster (``--reservation``): a running
        workshop event's, when the creator takes part in it and their account may use it
        (:func:`~continuum_hub.workshops.usable.event_reservation`).  Set by the gateway from
        the event, not by users; "" (default): none.""",
    )


class SiteJobs(SiteCommands):
    """The jobs of gateway clusters on the registry's sites (see the module's docstring)."""

    registry_path = Unicode(
        config=True, help="The site registry (YAML) as SiteSpawner.registry_path; reread on change."
    )

    account_resolver_class = Type(
        "continuum_spawners.account_map.AccountMapper",
        klass="continuum_spawners.accounts.AccountResolver",
        config=True,
        help="""Maps hub usernames to POSIX accounts per site, as ``SiteSpawner``'s (the hub
        passes its setting on).  Default: ``AccountMapper``, the registry's ``user_accounts``
        policies, as the spawner's default.""",
    )

    python_prefix = Unicode(
        sys.prefix,
        config=True,
        help="""Python environment with dask and dask-gateway on the compute nodes, used when
        the chosen software environment names no launcher (its ``bin/dask`` runs scheduler and
        workers).  Default: the gateway's own environment.""",
    )

    token_agent = List(
        Unicode(),
        config=True,
        help="""The token setup step of every scheduler and worker job: a command started in the
        background that keeps ``BEARER_TOKEN_FILE`` (``bearer_token`` in the cluster's 0700
        staging folder) filled with a fresh access token.  ``{token_file}`` in an argument
        becomes that path, ``{hub_token_file}`` the file (0600, same folder) holding the hub
        token the user created the cluster with.  Default: ``continuum-token-agent`` of
        ``python_prefix`` when installed there, else none (no ``BEARER_TOKEN_FILE``).""",
    )

    @default("token_agent")
    def _token_agent_default(self) -> list[str]:
        agent = Path(self.python_prefix) / "bin" / "continuum-token-agent"
        if not agent.exists():
            return []
        return [str(agent), "--output", "{token_file}", "--token-file", "{hub_token_file}"]

    @property
    def registry(self) -> SiteRegistry:
        """The site registry, reloaded when its file changes (looked at on every use)."""
        return load_registry(self.registry_path)

    @property
    def accounts(self) -> AccountResolver:
        """The account resolver (one per process, as in the hub)."""
        return shared_resolver(self.account_resolver_class, self.config, log=self.log)

    def unix_account(self, username: str, site: Site, allocate: bool = True) -> str:
        """The POSIX account that runs ``username``'s Dask jobs on ``site``: the one place that
        decides it (the hub's account mapping)."""
        try:
            return self.accounts.require(username, site, allocate=allocate)
        except NoAccountError as exc:
            raise PublicException(str(exc)) from None

    def site_of(self, cluster: Cluster) -> Site:
        site = self.registry.get(cluster.config.site)
        if site is None:
            raise PublicException(f"site {cluster.config.site!r} is no longer in the registry")
        return site

    def account_of(self, cluster: Cluster) -> str:
        return cluster.state.get("account") or self.unix_account(
            cluster.username, self.site_of(cluster)
        )

    def get_staging_directory(self, cluster: Cluster) -> str:
        home = pwd.getpwnam(self.account_of(cluster)).pw_dir
        staging = cluster.config.staging_directory.format(home=home, username=cluster.username)
        return os.path.join(staging, cluster.name)

    def job_name(self, cluster: Cluster) -> str:
        if not CLUSTER_NAME.match(cluster.name):
            raise PublicException(f"unexpected cluster name {cluster.name!r}")
        return f"dg-{cluster.name}"

    def dask_command(self, cluster: Cluster) -> str:
        """``bin/dask`` of the cluster's software environment."""
        site = self.site_of(cluster)
        env = site.environment(cluster.config.software_environment) or site.default_environment
        if env.launcher:
            return str(Path(env.launcher).parent / "dask")
        return str(Path(self.python_prefix) / "bin" / "dask")

    def host_of(self, cluster: Cluster) -> str:
        return self.site_of(cluster).bind_address or "0.0.0.0"  # noqa: S104 - compute node

    def get_scheduler_command(self, cluster: Cluster) -> list[str]:
        host, config = self.host_of(cluster), cluster.config
        return [
            self.dask_command(cluster), "scheduler", "--protocol", "tls", "--port", "0",
            "--host", host, "--dashboard-address", f"{host}:0",
            "--preload", "dask_gateway.scheduler_preload",
            *scheduler_args(self.get_staging_directory(cluster)),
            "--dg-api-address", f"{host}:0",
            "--dg-heartbeat-period", str(self.cluster_heartbeat_period),
            "--dg-adaptive-period", str(config.adaptive_period),
            "--dg-idle-timeout", str(config.idle_timeout),
        ]  # fmt: skip

    def get_worker_command(
        self, cluster: Cluster, worker_name: str, scheduler_address: str | None = None
    ) -> list[str]:
        host, config = self.host_of(cluster), cluster.config
        threads, memory = self.worker_nthreads_memory_limit_args(cluster)
        # a worker submitted with the scheduler finds its address in the staging folder
        target = worker_target(
            scheduler_address or cluster.scheduler_address, self.get_staging_directory(cluster)
        )
        argv = [
            self.dask_command(cluster), "worker", *target,
            # no dashboard: nobody reaches a worker's (only the scheduler's, relayed by the
            # gateway), and its imports take a second of each worker's start
            "--host", host, "--no-dashboard", "--dashboard-address", f"{host}:0",
            "--name", worker_name,
            "--nthreads", threads, "--memory-limit", memory,
        ]  # fmt: skip
        if config.worker_gpus:
            argv += ["--resources", f"GPU={config.worker_gpus}"]
        return argv

    def start_workers(self, cluster: Cluster) -> int:
        """Workers submitted with the cluster's scheduler (0: none, or made before the option)."""
        return int(cluster.config.get("start_workers", 0))

    def worker_with_scheduler(self, cluster: Cluster) -> bool:
        """Whether the cluster's first worker runs in its scheduler's job."""
        config = cluster.config
        return self.start_workers(cluster) > 0 and bool(config.get("scheduler_in_worker_job"))

    def job_environment(self, cluster: Cluster, env: dict[str, str]) -> dict[str, str]:
        """The job's whole environment (exported by name with ``sbatch --export``)."""
        site, config = self.site_of(cluster), cluster.config
        home = pwd.getpwnam(self.account_of(cluster)).pw_dir
        full = {
            **env,
            "PATH": f"{Path(self.dask_command(cluster)).parent}:{SAFE_PATH}",
            "HOME": home,
            "CONTINUUM_SITE": site.name,
            "CONTINUUM_PARTITION": config.partition,
            "CONTINUUM_ENVIRONMENT": config.software_environment,
            "CONTINUUM_GPUS": str(config.worker_gpus),
            **site.env,
        }
        if self.token_agent:
            full["BEARER_TOKEN_FILE"] = os.path.join(
                self.get_staging_directory(cluster), TOKEN_FILE
            )
            if os.environ.get("JUPYTERHUB_API_URL"):
                full["JUPYTERHUB_API_URL"] = os.environ["JUPYTERHUB_API_URL"]
        return full

    def job_script(
        self,
        role: str,
        command: list[str],
        cluster: Cluster,
        worker: list[str] | None = None,
        stage: str = "",
    ) -> str:
        """The job script: fixed text with the staging step of a self-staging job
        (:mod:`.remote`), the environment's modules, the token setup step and the Dask command
        (with ``worker``: the scheduler's, then that worker's), all quoted."""
        site = self.site_of(cluster)
        env = site.environment(cluster.config.software_environment) or site.default_environment
        setup = stage
        if env.modules:
            setup += ". /etc/profile\nmodule load " + shlex.join(env.modules) + "\n"
        setup += self.token_setup(cluster)
        if worker is not None:
            return BOTH_SCRIPT.format(
                setup=setup, scheduler=shlex.join(command), worker=shlex.join(worker)
            )
        script = JOB_SCRIPT.format(role=role, setup=setup, command=shlex.join(command))
        if stage and role == "scheduler":  # its shell stays, to remove the folder at the end
            tail = SCHEDULER_TAIL.format(command=shlex.join(command))
            script = script.replace(f"exec {shlex.join(command)}\n", tail)
        return script

    def token_setup(self, cluster: Cluster) -> str:
        """The token setup step: the one place where jobs get ``BEARER_TOKEN_FILE`` kept fresh.

        Runs ``token_agent`` in the background when the cluster was created with a hub token
        (written to the staging folder by the launcher at the cluster's start).
        """
        if not self.token_agent:
            return ""
        staging = self.get_staging_directory(cluster)
        paths = {
            "{token_file}": os.path.join(staging, TOKEN_FILE),
            "{hub_token_file}": os.path.join(staging, HUB_TOKEN_FILE),
        }
        agent = []
        for arg in self.token_agent:
            for placeholder, path in paths.items():
                arg = arg.replace(placeholder, path)
            agent.append(arg)
        hub_token = shlex.quote(paths["{hub_token_file}"])
        return (
            f"# token setup: keep $BEARER_TOKEN_FILE fresh (SiteSlurmBackend.token_agent)\n"
            f"if [ -f {hub_token} ]; then chmod 600 {hub_token}; {shlex.join(agent)} & fi\n"
        )

    def job_resources(
        self, cluster: Cluster, worker: Any = None, with_scheduler: bool = False
    ) -> tuple[int, int, int]:
        """Cores, GPUs and memory (bytes) of a scheduler's job, a worker's, or both in one."""
        config = cluster.config
        if worker is None:
            return config.scheduler_cores, 0, config.scheduler_memory
        cores, gpus, memory = config.worker_cores, config.worker_gpus, config.worker_memory
        if with_scheduler:
            cores, memory = cores + config.scheduler_cores, memory + config.scheduler_memory
        return cores, gpus, memory

    def get_submit_cmd_env_stdin(
        self,
        cluster: Cluster,
        worker: Any = None,
        with_scheduler: bool = False,
        files: dict[str, str] | None = None,
    ) -> tuple[list[str], dict[str, str], str]:
        """The ``sbatch`` argv, environment and script of a scheduler's or a worker's job, or
        (``with_scheduler``) of the scheduler's job that also runs ``worker``.

        ``files``: the staging folder's files (the scheduler's job); on a site whose jobs
        stage themselves they travel in the job's environment (a worker's job: the TLS pair).
        """
        config, site = cluster.config, self.site_of(cluster)
        staging = self.get_staging_directory(cluster)
        cores, gpus, memory = self.job_resources(cluster, worker, with_scheduler)
        inner = None
        if worker is not None and not with_scheduler:
            role = "worker"
            command = self.get_worker_command(cluster, worker.name)
            env = self.get_worker_env(cluster)
            log = f"dask-worker-{worker.name}.log"
        else:
            role = "scheduler"
            command = self.get_scheduler_command(cluster)
            env = self.get_scheduler_env(cluster)
            if self.start_workers(cluster):
                env[START_WORKERS_ENV] = str(self.start_workers(cluster))
            log = f"dask-scheduler-{cluster.name}.log"
            if worker is not None:  # the worker's TLS variables have names of their own
                env = {**self.get_worker_env(cluster), **env}
                inner = self.get_worker_command(cluster, worker.name)
        env = self.job_environment(cluster, env)
        stage, workdir = "", staging
        if stages_itself(site):
            staged = files if files is not None else self.tls_files(cluster)
            env.update(stage_environment(staging, staged))
            stage = stage_step(staged, cleanup=role == "scheduler")
            # the folder does not exist before the job starts: the output goes to the home
            workdir = env["HOME"]
            log = f".continuum-{self.job_name(cluster)}-%j.log"
        spec = JobSpec(
            name=self.job_name(cluster),
            partition=config.partition,
            cores=cores,
            memory_gb=max(1, math.ceil(memory / GIB)),
            walltime_minutes=config.walltime_minutes,
            workdir=workdir,
            output=os.path.join(workdir, log),
            gpus=gpus,
            gpu_type=config.gpu_type or None,
            account=config.account or None,
            env_names=sorted(env),
            # configs stored before the field have none
            reservation=config.get("reservation") or None,
        )
        argv = adapter_for(site).submit_argv(spec)
        return argv, env, self.job_script(role, command, cluster, inner, stage)

    def tls_files(self, cluster: Cluster) -> dict[str, str]:
        """The cluster's TLS pair, as files of its staging folder."""
        return {"dask.pem": cluster.tls_key.decode(), "dask.crt": cluster.tls_cert.decode()}
