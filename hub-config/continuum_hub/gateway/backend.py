"""``SiteSlurmBackend``: dask-gateway's jobqueue Slurm backend, made site-aware.

Each cluster's scheduler and workers are Slurm jobs of the user on the site and partition chosen
in the cluster options (:mod:`.options`); what a job is comes from :mod:`.jobs`.  From the
jobqueue backend we keep the mechanics that need the user's identity:
``sudo -nHu ACCOUNT dask-gateway-jobqueue-launcher`` creates the cluster's 0700 staging folder
with its TLS credentials (and the creator's hub token, for the token agent) and runs
``sbatch``/``scancel`` as the user, with the job's secrets in the environment it is handed on
standard input — never on a command line.  What this class adds:

* options and limits per user (:mod:`.options`): at most ``max_clusters`` active clusters, and
  no cluster on a site where the user has no account;
* per-user totals over all of a user's clusters (:mod:`.totals`): creation refused, ``scale``,
  ``adapt`` and heartbeats capped, with the reason in the answer the client sees;
* status: one ``squeue`` per site per interval for all pending schedulers and workers of all
  clusters (the site's :func:`~continuum_spawners.schedulers.monitor_for`, shared by both status
  loops, and by anything else of the process that watches the site), with the site's
  ``SLURM_CONF``;
* stopping a cluster is one ``scancel --name=dg-<cluster>`` as the user, which also catches a
  job whose id was never recorded;
* every scheduler command comes from the site's adapter
  (:func:`~continuum_spawners.schedulers.adapter_for`) and runs through the site's transport,
  local, SSH or slurmrestd (:mod:`.remote`); sites that do not answer the gateway's own probe
  (:mod:`.availability`) are shown unavailable in the options and refused;
* dashboards are not routed by the proxy but served through :mod:`.dashboard` (owner only);
* adaptive bounds from the options are set on the scheduler as soon as it runs;
* the workers asked for at creation (option ``workers``) start with the scheduler, not once it
  runs: the first in the scheduler's own job, the others submitted right after it; each
  start's phases are logged (:mod:`.quickstart`).
"""

from __future__ import annotations

import shlex
from functools import partial
from pathlib import Path
from typing import Any

from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.db_base import Cluster, JobStatus
from dask_gateway_server.traitlets import Type
from traitlets import Float, Instance, Integer, Unicode, default

from continuum_spawners.schedulers import adapter_for, monitor_for
from continuum_spawners.schedulers.base import JobState
from continuum_spawners.schedulers.monitor import SiteMonitor
from continuum_spawners.schedulers.transport import SAFE_PATH
from continuum_spawners.sites import Site

from .accounting import check_budget, record_job
from .availability import SiteAvailability
from .dashboard import DashboardProxy
from .jobs import HUB_TOKEN_FILE, WITH_SCHEDULER, SiteJobs
from .metrics import GatewayMetrics
from .options import GatewayLimits, cluster_label, cluster_options
from .quickstart import SETUP_FILE, StartPhases, queue_start_workers, setup_source
from .totals import allowance, explain, note, notes_middleware, usage


class SiteSlurmBackend(SiteJobs):
    """Run Dask clusters as Slurm jobs of their users on the sites of the registry."""

    cluster_config_class = Type(
        "continuum_hub.gateway.jobs.SiteClusterConfig",
        klass="dask_gateway_server.backends.base.ClusterConfig",
        help="The cluster config class (SiteClusterConfig or a subclass).",
        config=True,
    )

    dashboard_cookie_secret_file = Unicode(
        config=True,
        help="""File (0600) with the key of the dashboard sessions (see :mod:`.dashboard`).
        Required: dashboards are only served to their owner, through the gateway.""",
    )

    dashboard_session_seconds = Integer(
        3600, config=True, help="Seconds a browser's dashboard sign-in lasts (default 3600)."
    )

    status_interval = Float(
        10.0,
        config=True,
        help="""Seconds a site's batched status answer (``squeue``) is reused by the cluster and
        worker checks (as ``SiteSpawner.status_interval`` for servers).  Default 10.""",
    )

    limits = Instance(GatewayLimits)

    @default("limits")
    def _limits_default(self) -> GatewayLimits:
        return GatewayLimits(parent=self)

    availability = Instance(SiteAvailability)

    @default("availability")
    def _availability_default(self) -> SiteAvailability:
        return SiteAvailability(parent=self, log=self.log)

    @default("cluster_options")
    def _cluster_options_default(self):  # type: ignore[no-untyped-def]
        return self.options_for

    supports_bulk_shutdown = True  # one `scancel --name` stops the scheduler and all workers

    # -- registry, options, accounts ---------------------------------------------------------

    _hub_tokens: dict[str, str]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hub_tokens = {}  # cluster name → the creator's hub token, until submission
        self.phases = StartPhases(self.log)

    def options_for(self, user: Any) -> Any:
        """The cluster options offered to ``user`` (dask-gateway calls this per request)."""
        limits = self.limits.for_groups(user.groups)
        idle_timeout = self.cluster_config_class(parent=self).idle_timeout  # as configured
        registry = self.registry
        down = self.availability.down(registry.sites.values())
        account = partial(self.accounts.account_for, user.name, allocate=False)
        return cluster_options(registry, user.groups, limits, idle_timeout, down, account)

    async def process_cluster_options(self, user: Any, request: Any) -> Any:
        """Validate the options (:mod:`.options`), and refuse a site where the user has no
        account before any cluster is created."""
        options, config = await super().process_cluster_options(user, request)
        site = self.registry.get(config.site)
        if site is None:
            raise PublicException(f"site {config.site!r} is no longer in the registry")
        self.unix_account(user.name, site, allocate=False)
        config.user_groups = sorted(user.groups)
        most, why = self._allowance(None, user.name, config.to_dict())
        if most < max(1, config.adaptive_minimum, config.start_workers):
            raise PublicException(f"no room for another cluster: {why}")
        self._check_budget(user.name, config.to_dict(), site, 0)
        if config.start_workers:
            self._check_budget(user.name, config.to_dict(), site, config.start_workers)
        # the readable name is an option, stored with the cluster: the lab lists it after reloads
        taken = {
            str(c.options.get("name") or "") for c in self.db.list_clusters(username=user.name)
        }
        try:
            label = cluster_label(
                str(options.get("name") or ""), taken, config.site, config.partition
            )
        except ValueError as exc:
            raise PublicException(str(exc)) from None
        return {**options, "name": label}, config

    def _allowance(self, name: str | None, username: str, config: Any) -> tuple[int, str]:
        """Workers cluster ``name`` (None: a new one) may have under its user's totals, and why."""
        limits = self.limits.for_groups(config.get("user_groups") or [])
        others = usage(
            (c.count, c.config) for c in self.db.list_clusters(username=username) if c.name != name
        )
        most, bound = allowance(
            limits, others, int(config.get("worker_cores", 1)), int(config.get("worker_gpus", 0))
        )
        return most, explain(limits, others, most, bound)

    def _check_budget(
        self, username: str, config: dict[str, Any], site: Site, workers: int
    ) -> None:
        """Refuse ``workers`` more workers (0: a new cluster's scheduler) past the budget."""
        check_budget(self.registry, username, config, site, workers)

    async def forward_message_to_scheduler(self, cluster: Any, msg: dict[str, Any]) -> Any:
        """Cap ``scale``/``adapt`` requests to the user's totals, refuse a scale-up past their
        budget; the note reaches the client."""
        record = self.db.get_cluster(cluster.name)
        grows = record is not None and msg.get("op") == "scale" and msg["count"] > record.count
        site = self.registry.get(record.config["site"]) if grows and self.registry_path else None
        if site is not None:
            try:
                self._check_budget(
                    record.username, record.config, site, msg["count"] - record.count
                )
            except PublicException as exc:
                note(f"Staying at {record.count} workers: {exc}")
                msg = {**msg, "count": record.count}
        if record is not None and msg.get("op") in ("scale", "adapt"):
            most, why = self._allowance(record.name, record.username, record.config)
            if msg["op"] == "scale" and msg["count"] > most:
                note(f"Scaling to {most} workers instead of {msg['count']}: {why}.")
                msg = {**msg, "count": most}
            elif (
                msg["op"] == "adapt"
                and msg.get("active", True)
                and (msg.get("maximum") is None or msg["maximum"] > most)
            ):
                low = min(msg.get("minimum") or 0, most)
                note(f"Adapting between {low} and {most} workers: {why}.")
                msg = {**msg, "minimum": low, "maximum": most}
        return await super().forward_message_to_scheduler(cluster, msg)

    async def on_cluster_heartbeat(self, cluster_name: str, msg: dict[str, Any]) -> None:
        """Cap the worker count a scheduler asks for (adaptive scaling) to the user's totals."""
        record = self.db.get_cluster(cluster_name)
        if record is not None and record.is_active() and "count" in msg:
            most, why = self._allowance(record.name, record.username, record.config)
            if msg["count"] > most:
                self.log.info("Cluster %s asks for %d workers: %s", cluster_name, msg["count"], why)
                msg = {**msg, "count": most}
        await super().on_cluster_heartbeat(cluster_name, msg)
        if record is not None:
            self.phases.mark(cluster_name, "address known")
            if msg.get("active_workers") or msg.get("closing_workers"):
                self.phases.mark(cluster_name, "first worker reported")

    async def start_cluster(self, user: Any, cluster_options: dict[str, Any]) -> str:
        """Refuse a cluster beyond the user's ``max_clusters``, then create it."""
        limits = self.limits.for_groups(user.groups)
        active = self.db.list_clusters(username=user.name)
        if len(active) >= limits.max_clusters:
            raise PublicException(
                f"you already have {len(active)} active Dask clusters, "
                f"{limits.why('max_clusters')}; shut one down first"
            )
        name = await super().start_cluster(user, cluster_options)
        self.phases.mark(name, "created")
        token = getattr(user, "hub_token", None)
        if token and self.token_agent:
            # handed to the launcher (as a file of the staging folder) at submission, not stored
            self._hub_tokens[name] = token
        return name

    async def setup(self, app: Any) -> None:
        """Start the backend and add the dashboard routes to the gateway's web application."""
        await super().setup(app)
        app.middlewares.append(notes_middleware)  # before the app freezes (runner setup)
        secret = self._cookie_secret()
        DashboardProxy(self, self.proxy.prefix, secret, self.dashboard_session_seconds).install(app)
        GatewayMetrics(self).install(app)  # dask-gateway-server exports no metrics itself
        self.availability.start(lambda: self.registry.sites.values())

    async def cleanup(self) -> None:
        """Stop the sites' probe, then the backend."""
        await self.availability.stop()
        await super().cleanup()

    def _cookie_secret(self) -> bytes:
        secret = Path(self.dashboard_cookie_secret_file).read_bytes().strip()
        if len(secret) < 32:
            raise ValueError(f"{self.dashboard_cookie_secret_file}: key shorter than 32 bytes")
        return secret

    async def _check_cluster_proxied(self, cluster: Cluster) -> None:
        # only the scheduler's TLS route: dashboards are served by DashboardProxy, never routed
        # by the proxy straight to the scheduler (where anyone could see them)
        if not cluster.added_to_proxies:
            await self.proxy.add_route(
                kind="SNI", sni=cluster.name, target=cluster.scheduler_address
            )
            cluster.added_to_proxies = True

    # -- jobs ----------------------------------------------------------------------------------

    async def _submit(
        self,
        cluster: Cluster,
        worker: Any = None,
        with_scheduler: bool = False,
        files: dict[str, str] | None = None,
    ) -> str:
        cmd, env, script = self.get_submit_cmd_env_stdin(cluster, worker, with_scheduler, files)
        staging = {} if files is None else {"staging_dir": self.get_staging_directory(cluster)}
        code, stdout, stderr = await self.as_user(
            cluster, "start", cmd=cmd, env=env, stdin=script, files=files, **staging
        )
        site = self.site_of(cluster)
        if code != 0:
            raise PublicException(f"site {site.name} refused the job: {stderr.strip()[:300]}")
        job_id = adapter_for(site).parse_submit(stdout)
        self.monitor(site).watch(job_id)
        resources = self.job_resources(cluster, worker, with_scheduler)
        record_job(cluster, site, job_id, resources, self.log)
        return job_id

    async def _cancel(self, cluster: Cluster, argv: list[str], staging_dir: str | None) -> None:
        env = {"PATH": SAFE_PATH, **self.site_of(cluster).env}
        try:
            code, _, stderr = await self.as_user(
                cluster, "stop", cmd=argv, env=env, staging_dir=staging_dir
            )
        except Exception:
            if staging_dir is None:
                raise
            # the launcher prints nothing when the staging folder is already gone: cancel anyway
            code, _, stderr = await self.as_user(cluster, "stop", cmd=argv, env=env)
        if code != 0 and "Invalid job id" not in stderr:
            raise RuntimeError(f"{shlex.join(argv)} failed: {stderr.strip()[:300]}")

    async def do_start_cluster(self, cluster: Cluster):  # type: ignore[no-untyped-def]
        site = self.site_of(cluster)
        state = {"site": site.name, "account": self.unix_account(cluster.username, site)}
        cluster.state = state  # account_of() reads it from here on
        staging = self.get_staging_directory(cluster)
        files = {**self.tls_files(cluster), SETUP_FILE: setup_source()}
        token = self._hub_tokens.pop(cluster.name, None)
        if token:
            files[HUB_TOKEN_FILE] = token
        yield {**state, "staging_dir": staging}
        start = self.start_workers(cluster)
        if start:  # the scheduler asks for them from its first heartbeat (quickstart)
            self.db.update_cluster(cluster, count=start)
        # the first worker in the scheduler's job: its record first, its name is in the script
        inner = self.db.create_worker(cluster) if self.worker_with_scheduler(cluster) else None
        job_id = await self._submit(cluster, inner, inner is not None, files=files)
        self.phases.mark(cluster.name, "scheduler submitted")
        self.log.info("Job %s on %s: scheduler of cluster %s", job_id, site.name, cluster.name)
        if inner is not None:
            self.db.update_worker(
                inner, status=JobStatus.SUBMITTED, state={"job_id": job_id, WITH_SCHEDULER: True}
            )
            self.phases.mark(cluster.name, "first worker submitted")
            self.log.info("Job %s: worker %s of %s", job_id, inner.name, cluster.name)
        # now that the staging folder exists, not once the scheduler runs: all jobs start
        # together; before the cluster counts as submitted, so the gateway makes no others
        if queued := queue_start_workers(self.db, self.queue, cluster, start):
            self.log.info(
                "Cluster %s: %d workers queued with its scheduler", cluster.name, len(queued)
            )
        yield {**state, "staging_dir": staging, "job_id": job_id}

    async def do_stop_cluster(self, cluster: Cluster) -> None:
        # every job of the cluster carries its name: one scancel ends scheduler and workers
        site = self.site_of(cluster)
        argv = adapter_for(site).cancel_name_argv(self.job_name(cluster))
        await self._cancel(cluster, argv, cluster.state.get("staging_dir"))
        self.phases.forget(cluster.name)
        monitor = self.monitor(site)
        for job in [cluster.state.get("job_id")] + [
            w.state.get("job_id") for w in cluster.workers.values()
        ]:
            if job:
                monitor.forget(job)

    async def do_start_worker(self, worker: Any):  # type: ignore[no-untyped-def]
        job_id = await self._submit(worker.cluster, worker)
        self.phases.mark(worker.cluster.name, "first worker submitted")
        self.log.info("Job %s: worker %s of %s", job_id, worker.name, worker.cluster.name)
        yield {"job_id": job_id}

    async def do_stop_worker(self, worker: Any) -> None:
        job_id = worker.state.get("job_id")
        if worker.state.get(WITH_SCHEDULER):
            # the scheduler's job: the worker process has exited (retired or failed), the job
            # stays for the scheduler and ends with the cluster
            self.log.info("Worker %s ran in the scheduler's job %s: job kept", worker.name, job_id)
        elif job_id is not None:
            site = self.site_of(worker.cluster)
            await self._cancel(worker.cluster, adapter_for(site).cancel_argv([job_id]), None)
            self.monitor(site).forget(job_id)

    # -- status ----------------------------------------------------------------------------------

    def monitor(self, site: Site) -> SiteMonitor:
        """The batched status of ``site`` (squeue as the gateway's account, with the site's env):
        the process's one monitor of the site."""
        return monitor_for(site)

    async def _do_check(self, objs: list[Any]) -> list[bool]:
        """Whether each scheduler/worker job is still queued or running: one squeue per site."""
        found: dict[int, bool] = {}
        by_site: dict[str, list[tuple[int, str]]] = {}
        for index, obj in enumerate(objs):
            cluster = obj if isinstance(obj, Cluster) else obj.cluster
            job_id = obj.state.get("job_id")
            if job_id:
                by_site.setdefault(cluster.config.site, []).append((index, job_id))
        for name, jobs in by_site.items():
            site = self.registry.get(name)
            if site is None:
                continue  # reported as gone below
            monitor = self.monitor(site)
            for _, job_id in jobs:
                monitor.watch(job_id)
            for index, job_id in jobs:
                status = await monitor.status(job_id, self.status_interval)
                # a scheduler that does not answer is no reason to fail a cluster
                found[index] = status.state is not JobState.GONE
        return [found.get(i, False) for i in range(len(objs))]

    # -- adaptive clusters -------------------------------------------------------------------

    async def _cluster_to_running(self, cluster: Cluster) -> None:
        await super()._cluster_to_running(cluster)
        self.phases.mark(cluster.name, "running")
        config = cluster.config
        if config.get("adaptive_maximum"):
            msg = {
                "op": "adapt",
                "minimum": config["adaptive_minimum"],
                "maximum": config["adaptive_maximum"],
                "active": True,
            }
            try:
                await self.forward_message_to_scheduler(cluster.to_model(), msg)
            except Exception as exc:  # the cluster still works, scaled by hand
                self.log.warning("Cluster %s: adaptive scaling not set: %s", cluster.name, exc)
