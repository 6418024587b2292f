"""Workflows: a workflow file (YAML) turned into runs, one per step, chained; and schedules.

``POST api/v1/workflows`` sends the file's text and the notebooks its steps name.  The file is
checked by :mod:`.spec` (errors as ``line L, column C: at steps/0/sweep: …``), then every step
as a run request (:mod:`.validation`) before anything is stored: one bad step refuses the whole
workflow and nothing is submitted.  Then each step becomes a run, in dependency order, with its
dependencies' run ids (:meth:`~.manager.RunManager.advance` makes them Slurm dependencies on one
site, or holds the step until the previous ones are done on another).

A workflow with a ``schedule`` (cron, UTC, at least ``WorkflowLimits.min_schedule_minutes``
apart) is held by the service, not by any server: :meth:`WorkflowBook.due` starts a new set of
runs at each due time from the notebooks' snapshots taken when the workflow was submitted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import yaml

from continuum_spawners.registry_schema import locate

from . import cwl, snapshot
from .credentials import HubUser
from .manager import RunManager, new_id, visible
from .schedule import next_run
from .spec import Step, Workflow, WorkflowError, workflow_from_dict
from .store import FINAL, now, public_workflow
from .validation import RequestError, RunRequest


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_workflow(text: Any, manager: RunManager) -> Workflow:
    """The workflow file's text checked; errors name the line and column (no file name)."""
    if not isinstance(text, str) or not text.strip():
        raise RequestError("yaml must be the workflow file's text")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be read"
        raise RequestError(f"{where}not valid YAML: {problem}") from None
    try:
        return workflow_from_dict(data, manager.limits)
    except WorkflowError as exc:
        mark = locate(text, exc.where, exc.at_key) if exc.where else None
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise RequestError(f"{where}{exc}") from None


def step_request(step: Step, workflow: Workflow, content: Any) -> dict[str, Any]:
    """A step as the body of a run request."""
    sweep: dict[str, Any] | None = None
    if isinstance(step.sweep, list):
        sweep = {"members": step.sweep}
    elif step.sweep is not None:
        sweep = {"grid": step.sweep}
    return {
        "name": f"{workflow.name}/{step.name}",
        "notebook": {"path": step.notebook, "content": content},
        "parameters": dict(step.parameters),
        "sweep": sweep,
        "max_parallel": step.max_parallel,
        "resources": step.resources.as_user_options(),
        "inputs": [{"path": i.path, "copy": i.copy} for i in step.inputs],
        "outputs": list(step.outputs),
        "retries": step.retries,
        "allow_move": step.allow_move,
    }


class WorkflowBook:
    """Workflows of all users, on top of a :class:`~.manager.RunManager`."""

    def __init__(self, manager: RunManager) -> None:
        self.manager = manager
        self.store = manager.store

    def owned(self, user: HubUser, workflow_id: str) -> dict[str, Any]:
        return visible(self.store.workflow(workflow_id), user, "workflow", workflow_id)

    def view(self, workflow: dict[str, Any]) -> dict[str, Any]:
        """The workflow with its state from its latest runs (failed > cancelled > live)."""
        shown = public_workflow(workflow)
        runs = [self.store.run(run_id) for run_id in workflow["steps"].values()]
        states = [r["state"] for r in runs if r is not None]
        if workflow["state"] in ("cancelled", "scheduled") or not states:
            return shown
        failed = next((r for r in runs if r and r["state"] == "failed"), None)
        if failed is not None:
            shown.update(state="failed", reason=f"step {failed['step']} failed: {failed['reason']}")
        elif all(s == "done" for s in states):
            shown["state"] = "done"
        elif any(s == "cancelled" for s in states) and all(s in FINAL for s in states):
            shown["state"] = "cancelled"
        elif any(s in ("running", "needs-sign-in") for s in states):
            shown["state"] = "running"
        else:
            shown["state"] = "queued"
        return shown

    def list(self, user: HubUser) -> list[dict[str, Any]]:
        return [self.view(w) for w in self.store.workflows(user.name)]

    async def create(self, user: HubUser, body: Any) -> dict[str, Any]:
        """``POST workflows``: check every step, then store and start the runs."""
        if not isinstance(body, dict) or set(body) - {"yaml", "notebooks"}:
            raise RequestError('a workflow is {"yaml": "<file text>", "notebooks": {path: …}}')
        workflow = parse_workflow(body.get("yaml"), self.manager)
        notebooks = body.get("notebooks") or {}
        if not isinstance(notebooks, dict):
            raise RequestError("notebooks must map each step's notebook path to its content")
        checked: dict[str, RunRequest] = {}
        for step in workflow.order():
            if step.notebook not in notebooks:
                raise RequestError(f"step {step.name}: notebook {step.notebook!r} was not sent")
            request = step_request(step, workflow, notebooks[step.notebook])
            try:
                checked[step.name] = await self.manager.check(user, request)
            except RequestError as exc:
                raise RequestError(f"step {step.name}: {exc}", exc.status) from None
        digests = {
            name: snapshot.store(self.manager.snapshots, c.notebook, c.notebook_path).sha256
            for name, c in checked.items()
        }
        record = {
            "id": new_id("w"),
            "owner": user.name,
            "name": workflow.name,
            "state": "scheduled" if workflow.schedule else "queued",
            "reason": "",
            "yaml": body["yaml"],
            "steps": {},
            "schedule": workflow.schedule,
            "next_run": _iso(next_run(workflow.schedule, datetime.now(UTC)))
            if workflow.schedule
            else None,
            "created": now(),
            "notebooks": digests,
        }
        self.store.add_workflow(record)
        if not workflow.schedule:
            await self.start(user, record, workflow, checked)
        return self.view(self.store.workflow(record["id"]) or record)

    async def start(
        self,
        user: HubUser,
        record: dict[str, Any],
        workflow: Workflow,
        checked: dict[str, RunRequest],
    ) -> None:
        """One run per step, in dependency order, each depending on its steps' runs."""
        steps: dict[str, str] = {}
        for step in workflow.order():
            run = await self.manager.create_run(
                user,
                None,
                checked=checked[step.name],
                workflow_id=record["id"],
                step=step.name,
                depends_on=[steps[name] for name in step.depends_on],
                credential_days=workflow.max_credential_days,
            )
            steps[step.name] = run["id"]
            self.store.update_workflow(record["id"], steps=dict(steps))

    async def due(self) -> None:
        """Start the scheduled workflows whose time has come (called by the tracking loop)."""
        current = _iso(datetime.now(UTC))
        for record in self.store.workflows():
            if not record["schedule"] or record["state"] == "cancelled":
                continue
            if record["next_run"] is None or record["next_run"] > current:
                continue
            self.store.update_workflow(
                record["id"], next_run=_iso(next_run(record["schedule"], datetime.now(UTC)))
            )
            await self.fire(record)

    async def fire(self, record: dict[str, Any]) -> None:
        """One scheduled start: the steps checked again now (groups and accounts may change)."""
        workflow = parse_workflow(record["yaml"], self.manager)
        user = await self.manager.hub.user(record["owner"])
        checked = {}
        try:
            for step in workflow.order():
                path = self.manager.snapshots / snapshot.SNAPSHOTS
                data = (path / f"{record['notebooks'][step.name]}.ipynb").read_bytes()
                request = step_request(step, workflow, json.loads(data))
                checked[step.name] = await self.manager.check(user, request)
        except RequestError as exc:
            self.store.update_workflow(record["id"], reason=f"scheduled start refused: {exc}")
            return
        self.store.update_workflow(record["id"], reason="")
        await self.start(user, record, workflow, checked)

    async def cancel(self, user: HubUser, workflow_id: str) -> dict[str, Any]:
        """``POST workflows/{id}/cancel``: its live runs cancelled, its schedule stopped."""
        record = self.owned(user, workflow_id)
        for run_id in record["steps"].values():
            run = self.store.run(run_id)
            if run is not None:
                await self.manager.cancel(run, f"workflow cancelled by {user.name}")
        self.store.update_workflow(
            workflow_id, state="cancelled", next_run=None, reason=f"cancelled by {user.name}"
        )
        return self.view(self.store.workflow(workflow_id) or record)

    def cwl(self, user: HubUser, workflow_id: str) -> str:
        """``GET workflows/{id}/cwl``: the workflow exported as CWL v1.2."""
        record = self.owned(user, workflow_id)
        return cwl.to_cwl(parse_workflow(record["yaml"], self.manager))
