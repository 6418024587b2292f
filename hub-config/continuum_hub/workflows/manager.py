"""The workflow service's runs: create, submit, cancel, re-run, and who may see what.

:class:`RunManager` is what the REST handlers call; it never runs a scheduler command itself
but hands a :class:`~.executor.RunPlan` to the site executor (``prepare`` creates the run folder
as the user, ``submit`` sbatches the fixed job script), and keeps every step in the
:class:`~.store.Store` first, so a service killed at any moment resumes where it was
(:mod:`.tracking`).  Submission is idempotent: a run is stored ``submitting`` (with its attempt)
before ``sbatch`` and ``queued`` with the job id after; a run found ``submitting`` at start is
looked for by its job name ``cw-<run id>`` before it is submitted again, so no run is ever
submitted twice.

Chains: a run that depends on others is held ``pending`` while one of them has no job yet or
runs on another site; on the same site it is submitted at once with ``--dependency=afterok`` on
their jobs.  When a run fails or is cancelled, its dependants are cancelled with the reason
(``step simulate failed: …``).  Each run has its own credential (:mod:`.credentials`), minted
before submit and revoked when the run ends.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from continuum_spawners.accounts import AccountResolver
from continuum_spawners.budgets import BudgetExceeded, enforce
from continuum_spawners.budgets import Request as BudgetRequest
from continuum_spawners.options import SOONEST
from continuum_spawners.sites import SiteRegistry

from . import snapshot
from .credentials import HubClient, HubError, HubUser, RunCredentials
from .finish import previous_attempts
from .placement import Placement, soonest
from .spec import WorkflowLimits
from .store import FINAL, Store, now, public_run
from .validation import RequestError, RunRequest, check_request, resolve_resources

log = logging.getLogger(__name__)

#: what reaches a user when the submission itself failed (the details go to the log)
SUBMIT_FAILED = "submission to site {site} failed: {error}"
#: a run's reason once its credential was revoked
REVOKED = "credential revoked"
#: runs' job names: the executor names each job ``cw-<run id>``
JOB_PREFIX = "cw-"


def new_id(prefix: str) -> str:
    """A fresh identifier: ``r-``, ``w-`` or ``c-`` and 12 hex digits."""
    return f"{prefix}-{secrets.token_hex(6)}"


def visible(record: dict[str, Any] | None, user: HubUser, what: str, ident: str) -> dict[str, Any]:
    """``record`` if ``user`` may see it (its owner, or an admin): else 404 for none, 403
    ``not your <what>`` for someone else's."""
    if record is None:
        raise RequestError(f"no {what} {ident[:40]}", 404)
    if record["owner"] != user.name and not user.admin:
        raise RequestError(f"not your {what}", 403)
    return record


class RunManager:
    """Runs of all users, through the store, the hub API and the site executor.

    Parameters
    ----------
    registry
        Returns the site registry as it is now (reread when the file changes).
    executor
        The site executor (``workflows.executor.SiteExecutor`` or a test double).
    snapshots
        Folder of the notebook snapshots (``snapshots/<sha256>.ipynb``, content-addressed).
    plan_factory
        Makes the executor's plan from keyword arguments (default ``executor.RunPlan``).
    """

    def __init__(
        self,
        store: Store,
        executor: Any,
        hub: HubClient,
        registry: Callable[[], SiteRegistry],
        resolver: AccountResolver,
        snapshots: str | Path,
        *,
        limits: WorkflowLimits | None = None,
        hub_api_url: str = "",
        hub_public_url: str = "",
        max_credential_days: int = 7,
        plan_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.hub = hub
        self.registry = registry
        self.resolver = resolver
        self.snapshots = Path(snapshots)
        self.limits = limits or WorkflowLimits()
        self.hub_api_url = hub_api_url
        self.hub_public_url = hub_public_url.rstrip("/")
        self.max_credential_days = max_credential_days
        self.credentials = RunCredentials(store, hub, max_credential_days)
        self._plan_factory = plan_factory
        #: runs being advanced now: the tracking loop and a request may both find a run
        #: pending while its submission awaits the hub or the site; only one submits it
        self._advancing: set[str] = set()

    # --- access -------------------------------------------------------------------------------
    def owned_run(self, user: HubUser, run_id: str) -> dict[str, Any]:
        """The run ``run_id`` if ``user`` may see it (its owner, or an admin).

        Raises
        ------
        RequestError
            404 for no such run; 403 ``not your run`` for someone else's (the issue asks for
            403 here rather than hiding the run behind a 404).
        """
        return visible(self.store.run(run_id), user, "run", run_id)

    def list_runs(
        self,
        user: HubUser,
        state: str | None = None,
        workflow_id: str | None = None,
        everyone: bool = False,
    ) -> list[dict[str, Any]]:
        """``user``'s runs (everyone's for an admin asking for all), newest first."""
        if everyone and not user.admin:
            raise RequestError("only hub admins may list all runs", 403)
        owner = None if everyone else user.name
        return [public_run(r) for r in self.store.runs(owner, state, workflow_id)]

    # --- creation and submission --------------------------------------------------------------
    async def check(self, user: HubUser, body: Any) -> RunRequest:
        """``body`` checked for ``user`` (groups and accounts as the hub and sites have them)."""
        return await check_request(
            body, user.name, user.groups, self.registry(), self.resolver, self.limits
        )

    async def create_run(
        self,
        user: HubUser,
        body: Any,
        *,
        checked: RunRequest | None = None,
        workflow_id: str | None = None,
        step: str | None = None,
        depends_on: Iterable[str] = (),
        based_on: str | None = None,
        credential_days: int | None = None,
    ) -> dict[str, Any]:
        """Check, store and (where nothing holds it) submit a new run; return it.

        ``credential_days`` shortens the run credential's lifetime (a workflow's
        ``max_credential_days``).
        """
        checked = checked or await self.check(user, body)
        self.check_budget(user.name, user.groups, checked.request, max(1, len(checked.members)))
        stored = snapshot.store(self.snapshots, checked.notebook, checked.notebook_path)
        run_id = new_id("r")
        spec = {
            "notebook": {"path": checked.notebook_path, "sha256": stored.sha256},
            "parameters": checked.parameters,
            "sweep": checked.sweep,
            "max_parallel": checked.max_parallel,
            "resources": checked.resources,
            "inputs": checked.inputs,
            "outputs": checked.outputs,
            "retries": checked.retries,
            "allow_move": checked.allow_move,
            "depends_on": list(depends_on),
            "credential_days": credential_days,
        }
        members = [
            {"index": i, "parameters": p, "state": "pending"} for i, p in enumerate(checked.members)
        ]
        self.store.add_run(
            {
                "id": run_id,
                "owner": user.name,
                "name": checked.name,
                "workflow_id": workflow_id,
                "step": step,
                "state": "pending",
                "reason": "",
                "site": checked.request.site,
                "account": checked.account,
                "snapshot": stored.sha256,
                "created": now(),
                "based_on": based_on,
                "spec": spec,
                "members": members,
            }
        )
        await self.advance(run_id)
        return public_run(self.store.run(run_id) or {})

    def check_budget(self, owner: str, groups: Iterable[str], request: Any, jobs: int) -> None:
        """Refuse (403, with what is left, when it resets, whom to ask) ``jobs`` jobs of
        ``request`` that would pass the owner's or their VO's monthly budget; a ``soonest``
        request is checked at submission, once its site is known."""
        registry = self.registry()
        site = request.site_entry or registry.get(request.site)
        if site is None:
            return
        wanted = BudgetRequest(
            site, request.cores, request.gpus, request.memory_gb, request.walltime_minutes, jobs
        )
        try:
            enforce(registry, owner, groups, wanted, "batch")
        except BudgetExceeded as exc:
            raise RequestError(exc.message, 403) from None

    async def advance(self, run_id: str) -> None:
        """Submit a pending run whose dependencies allow it; cancel it when one failed.

        At most one advance of a run at a time (:attr:`_advancing`): a second caller finding
        the run still ``pending`` while the first awaits its submission leaves it alone."""
        if run_id in self._advancing:
            return
        self._advancing.add(run_id)
        try:
            await self._advance(run_id)
        finally:
            self._advancing.discard(run_id)

    async def _advance(self, run_id: str) -> None:
        run = self.store.run(run_id)
        if run is None or run["state"] != "pending":
            return
        waiting, jobs = [], []
        for dep_id in run["depends_on"]:
            dep = self.store.run(dep_id)
            label = (dep or {}).get("step") or dep_id
            if dep is None or dep["state"] in ("failed", "cancelled"):
                why = "failed" if dep is None or dep["state"] == "failed" else "was cancelled"
                detail = f": {dep['reason']}" if dep and dep["reason"] else ""
                await self.end_run(run, "cancelled", f"step {label} {why}{detail}")
                return
            if dep["state"] == "done":
                continue
            if dep["site"] == run["site"] and dep["job_id"]:
                jobs.append(dep["job_id"])  # the scheduler holds it: afterok
            else:
                waiting.append(label)
        if waiting:
            reason = f"waiting for {', '.join(waiting)}"
            if run["reason"] != reason:
                self.store.update_run(run_id, reason=reason)
            return
        await self.submit(run, depends_on_jobs=jobs)

    def plan(self, run: dict[str, Any], request: Any, token: str | None, **extra: Any) -> Any:
        """The executor's plan for ``run`` (``request``: its validated ``JobRequest``)."""
        factory = self._plan_factory
        if factory is None:
            from .executor import RunPlan

            factory = RunPlan
        notebook = (self.snapshots / snapshot.SNAPSHOTS / f"{run['snapshot']}.ipynb").read_bytes()
        return factory(
            run_id=run["id"],
            owner=run["owner"],
            account=run["account"],
            site=request.site_entry,
            request=request,
            notebook_name=Path(run["notebook"]["path"]).name,
            notebook=notebook,
            parameters=[m["parameters"] for m in run["members"]],
            max_parallel=run["max_parallel"],
            outputs=list(run["outputs"]),
            inputs=list(run["inputs"]),
            hub_token=token,
            hub_api_url=self.hub_api_url,
            depends_on_jobs=list(extra.get("depends_on_jobs", [])),
            groups=tuple(sorted(extra.get("groups", ()))),
            attempt=len(run["attempts"]) + 1,
            provenance={
                "user": run["owner"],
                "source": run["notebook"]["path"],
                "previous_attempts": previous_attempts(run),
                "based_on": run["based_on"],
                "name": run["name"],
                "workflow_id": run["workflow_id"],
                "step": run["step"],
            },
        )

    async def request_for(self, run: dict[str, Any], site: str | None = None) -> Any:
        """The run's resources validated again now (for another site when moving)."""
        user = await self.hub.user(run["owner"])
        resources = dict(run["resources"])
        if site is not None and site != resources.get("site"):
            resources = {k: v for k, v in resources.items() if k not in ("partition", "site")}
            resources["site"] = site
        request, account = resolve_resources(
            resources, user.name, user.groups, self.registry(), self.resolver
        )
        return request, account

    async def submit(
        self,
        run: dict[str, Any],
        depends_on_jobs: Iterable[str] = (),
        site: str | None = None,
        placement: Placement | None = None,
        why: str = "",
    ) -> None:
        """Prepare the run's folder and submit its job (an attempt); failures end the run.

        ``placement`` (a move) or, for a ``soonest`` run, the soonest site by estimate
        (:func:`.placement.soonest`) decides where; ``why`` says so in the run and attempt.
        """
        target = site or run["site"]
        try:
            if placement is None and target == SOONEST:
                placement = await soonest(self, run["owner"], run["resources"])
                if placement is None:
                    raise RequestError("resources: none of your sites fits the run")
                why = f"soonest site {placement.reason}"
            if placement is not None:
                request, account = placement.request, placement.account
            else:
                request, account = await self.request_for(run, target)
            token = await self.credentials.token_for(run)
            run = self.store.run(run["id"]) or run
            run = {**run, "account": account, "site": request.site}
            # the owner's groups now: the usage ledger records the VO that allowed the site
            groups = (await self.hub.user(run["owner"])).groups
            self.check_budget(run["owner"], groups, request, max(1, len(run["members"])))
            plan = self.plan(run, request, token, depends_on_jobs=depends_on_jobs, groups=groups)
            number = self.store.add_attempt(
                run["id"],
                {"site": request.site, "state": "submitting", "submitted": now(), "reason": why},
            )
            self.store.update_run(
                run["id"],
                state="submitting",
                site=request.site,
                account=account,
                folder=self.executor.folder(plan),
                reason=why,
            )
            # every attempt prepares its folder: a retry there (same site, or another site
            # sharing the home) is recorded in run.json as a new attempt (runfolder.prepare)
            folder = str(await self.executor.prepare(plan))
            self.store.update_run(run["id"], folder=folder)
            job_id = await self.executor.submit(plan)
        except RequestError as exc:
            await self.end_run(run, "failed", str(exc))
            return
        except (HubError, OSError, RuntimeError, ValueError) as exc:
            log.warning("Submitting run %s of %s failed: %s", run["id"], run["owner"], exc)
            await self.end_run(run, "failed", SUBMIT_FAILED.format(site=target, error=exc))
            return
        self.store.update_attempt(run["id"], number, job_id=job_id, state="queued")
        self.store.update_run(
            run["id"], state="queued", job_id=job_id, submitted=run["submitted"] or now()
        )
        log.info(
            "Run %s of %s submitted to %s as job %s", run["id"], run["owner"], run["site"], job_id
        )

    # --- ending -------------------------------------------------------------------------------
    async def end_run(self, run: dict[str, Any], state: str, reason: str) -> None:
        """Record a final state, revoke the credential, cancel dependants when it failed."""
        current = self.store.run(run["id"])
        if current is None or current["state"] in FINAL:
            return  # ended meanwhile (cancelled through the API while a poll looked at it)
        when = now()
        self.store.update_run(run["id"], state=state, reason=reason, ended=when)
        for member in run.get("members", []):
            if member["state"] not in FINAL:
                self.store.update_member(
                    run["id"], member["index"], state=state, ended=member["ended"] or when
                )
        for attempt in run.get("attempts", []):
            if attempt["state"] not in FINAL:
                # a done attempt keeps why it went where it went ("moved to beta: …")
                self.store.update_attempt(
                    run["id"],
                    attempt["number"],
                    state=state,
                    reason=reason or attempt["reason"],
                    ended=when,
                )
        await self.credentials.end(run)
        label = run.get("step") or run["id"]
        for dependant in self.store.runs(owner=run["owner"]):
            if run["id"] in dependant["depends_on"] and dependant["state"] not in FINAL:
                if state == "done":
                    await self.advance(dependant["id"])
                else:
                    why = "failed" if state == "failed" else "was cancelled"
                    await self.cancel(dependant, f"step {label} {why}: {reason}".rstrip(": "))

    async def cancel(self, run: dict[str, Any], reason: str) -> None:
        """Cancel ``run``'s job (if any) and end it as cancelled with ``reason``."""
        if run["state"] in FINAL:
            return
        if run["job_id"] and run["state"] != "pending":
            site = self.registry().get(run["site"])
            if site is not None:
                try:
                    await self.executor.cancel(site, run["account"], [run["job_id"]])
                except (OSError, RuntimeError, ValueError) as exc:
                    log.warning("Cancelling job %s of run %s: %s", run["job_id"], run["id"], exc)
        await self.end_run(run, "cancelled", reason)

    async def cancel_run(self, user: HubUser, run_id: str) -> dict[str, Any]:
        """``POST runs/{id}/cancel``: cancel a run (and its dependants)."""
        run = self.owned_run(user, run_id)
        await self.cancel(run, f"cancelled by {user.name}")
        return public_run(self.store.run(run_id) or run)

    async def rerun(self, user: HubUser, run_id: str, body: Any) -> dict[str, Any]:
        """``POST runs/{id}/rerun``: a new run of the same snapshot, inputs and resources."""
        import json

        old = self.owned_run(user, run_id)
        if old["owner"] != user.name:
            raise RequestError("not your run", 403)
        body = body or {}
        if not isinstance(body, dict) or set(body) - {"parameters"}:
            raise RequestError('a re-run takes {"parameters": {…}} at most')
        changes = body.get("parameters") or {}
        if not isinstance(changes, dict):
            raise RequestError("parameters must be a mapping of names to values")
        path = self.snapshots / snapshot.SNAPSHOTS / f"{old['snapshot']}.ipynb"
        request = {
            "name": old["name"],
            "notebook": {"path": old["notebook"]["path"], "content": json.loads(path.read_bytes())},
            "parameters": {**old["parameters"], **changes},
            "sweep": old["sweep"],
            "max_parallel": old["max_parallel"],
            "resources": old["resources"],
            "inputs": old["inputs"],
            "outputs": old["outputs"],
            "retries": old["retries"],
            "allow_move": old["allow_move"],
        }
        return await self.create_run(user, request, based_on=old["id"])

    async def revoke(self, user: HubUser, credential_id: str) -> None:
        """``DELETE credentials/{id}``; the run it served shows ``credential revoked``."""
        run_id = await self.credentials.revoke(user.name, credential_id)
        run = self.store.run(run_id) if run_id else None
        if run is not None and run["state"] not in FINAL:
            self.store.update_run(run["id"], reason=REVOKED)

    # --- results ------------------------------------------------------------------------------
    async def read_result(self, user: HubUser, run_id: str, rel: str) -> bytes:
        """A file of the run's folder on the site, read as the run's account."""
        run = self.owned_run(user, run_id)
        site = self.registry().get(run["site"] or "")
        if site is None or not run["folder"]:
            raise RequestError(f"{rel} of run {run_id} does not exist yet", 404)
        try:
            return bytes(await self.executor.read_file(site, run["account"], run["folder"], rel))
        except (OSError, RuntimeError, ValueError):
            raise RequestError(f"{rel} of run {run_id} does not exist yet", 404) from None

    def archive(self, user: HubUser, run_id: str) -> tuple[dict[str, Any], AsyncIterator[bytes]]:
        """The run and its folder as a tar.gz stream, read as the run's account (no credential
        in it; ``RuntimeError`` from the stream when the site refuses)."""
        run = self.owned_run(user, run_id)
        site = self.registry().get(run["site"] or "")
        if site is None or not run["folder"]:
            raise RequestError(f"run {run_id} has no folder yet", 404)
        return run, self.executor.archive(site, run["account"], run["folder"])

    def member_file(self, run: dict[str, Any], member: int | None, name: str) -> str:
        """Where a member's ``name`` lies in the run folder (``members/<i>/`` for sweeps)."""
        if run["sweep"] is None:
            return name
        if member is None or not 0 <= member < len(run["members"]):
            raise RequestError(f"member must be between 0 and {len(run['members']) - 1}")
        return f"members/{member}/{name}"
