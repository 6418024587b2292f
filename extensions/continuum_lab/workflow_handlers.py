"""The batch-run routes of ``continuum_lab`` (``{base_url}continuum/workflows/…``).

Thin authenticated handlers over :class:`~continuum_lab.workflows.WorkflowsManager`, which calls
the hub's workflow service: the dialog's options and estimate, notebooks' parameters, runs and
workflows (list, submit, cancel, rerun, open, archive) and run credentials.  :data:`ROUTES` is
part of :data:`continuum_lab.handlers.ROUTES`.
"""

from __future__ import annotations

from typing import Any

from tornado import web

from .handler_base import ContinuumHandler, ServiceHandler
from .remote import ServiceError
from .workflows import ESTIMATE_FIELDS


class WorkflowOptionsHandler(ServiceHandler):
    """``GET /continuum/workflows/options``: sites, partitions, environments and limits."""

    @web.authenticated
    async def get(self) -> None:
        await self.forward(self.workflows.options)


class WorkflowEstimateHandler(ServiceHandler):
    """``GET /continuum/workflows/estimate?site=…&partition=…&cores=…``: when the dialog's
    resources would start, with their energy/CO2e bound (the spawn form's estimate)."""

    @web.authenticated
    async def get(self) -> None:
        query = {k: self.get_query_argument(k, "") for k in ESTIMATE_FIELDS}
        await self.forward(lambda: self.workflows.estimate(query))


class WorkflowParametersHandler(ServiceHandler):
    """``GET /continuum/workflows/parameters?path=``: the notebook's parameters cell."""

    @web.authenticated
    async def get(self) -> None:
        path = self.get_query_argument("path", "")
        await self.forward(lambda: self.workflows.parameters(self.contents_manager, path))


class WorkflowRunsHandler(ServiceHandler):
    """``GET /continuum/workflows/runs``: the user's runs; ``POST`` ``{"path", …}``: submit."""

    @web.authenticated
    async def get(self) -> None:
        self.polled()
        query = {k: self.get_query_argument(k, "") for k in ("state", "workflow")}

        async def listing() -> dict[str, Any]:
            runs = await self.workflows.list_runs(query)
            return {"runs": runs, "refresh_seconds": self.lab.workflows_refresh_seconds}

        await self.forward(listing)

    @web.authenticated
    async def post(self) -> None:
        await self.forward(
            lambda: self.workflows.submit(self.contents_manager, self.json_object()), status=201
        )


class WorkflowFilesHandler(ServiceHandler):
    """``GET /continuum/workflows/workflows``: the user's workflows; ``POST`` ``{"path"}``:
    submit the workflow file (YAML) with the notebooks its steps name."""

    @web.authenticated
    async def get(self) -> None:
        await self.forward(self.workflows.list_workflows)

    @web.authenticated
    async def post(self) -> None:
        await self.forward(
            lambda: self.workflows.submit_workflow(
                self.contents_manager, self.json_object().get("path")
            ),
            status=201,
        )


class WorkflowRunHandler(ServiceHandler):
    """``GET /continuum/workflows/run?id=``: one run with its members' progress."""

    @web.authenticated
    async def get(self) -> None:
        run_id = self.get_query_argument("id", "")
        await self.forward(lambda: self.workflows.run(run_id))


class WorkflowCancelHandler(ServiceHandler):
    """``POST /continuum/workflows/runs/cancel`` ``{"id"}``: cancel the run."""

    @web.authenticated
    async def post(self) -> None:
        await self.forward(lambda: self.workflows.cancel(self.json_object().get("id")))


class WorkflowRerunHandler(ServiceHandler):
    """``POST /continuum/workflows/runs/rerun`` ``{"id", "parameters"?}``: run it again."""

    @web.authenticated
    async def post(self) -> None:
        async def rerun() -> Any:
            body = self.json_object()
            return await self.workflows.rerun(body.get("id"), body.get("parameters"))

        await self.forward(rerun, status=201)


class WorkflowOpenHandler(ServiceHandler):
    """``POST /continuum/workflows/runs/open`` ``{"id", "member"?}``: save the executed
    notebook into ``continuum-runs/<id>/`` and answer ``{"path"}`` for Lab to open."""

    @web.authenticated
    async def post(self) -> None:
        async def save() -> dict[str, str]:
            body = self.json_object()
            cm = self.contents_manager
            return {
                "path": await self.workflows.save_output(cm, body.get("id"), body.get("member"))
            }

        await self.forward(save)


class WorkflowFileHandler(ServiceHandler):
    """``POST /continuum/workflows/file`` ``{"path", "workflow"}``: save a workflow file."""

    @web.authenticated
    async def post(self) -> None:
        await self.forward(
            lambda: self.workflows.save_workflow(self.contents_manager, self.json_object()),
            status=201,
        )


class WorkflowArchiveHandler(ServiceHandler):
    """``GET /continuum/workflows/runs/archive?id=``: the run folder as a tar.gz download
    (no credentials in it), streamed from the service as it comes."""

    @web.authenticated
    async def get(self) -> None:
        started = False

        def write(name: str, chunk: bytes) -> None:
            nonlocal started
            if not started:
                started = True
                self.set_header("Content-Type", "application/gzip")
                self.set_header("Content-Disposition", f'attachment; filename="{name}"')
                self.set_header("Cache-Control", "no-store")
            self.write(chunk)
            self.flush()

        try:
            await self.workflows.archive(self.get_query_argument("id", ""), write)
        except ServiceError as error:
            if started:  # half an archive was sent: end the connection, never a JSON tail
                self.log.warning("continuum_lab: archive interrupted: %s", error.message)
                self.request.connection.close()
                return
            self.refuse(error)
            return
        self.finish()


class WorkflowCredentialsHandler(ServiceHandler):
    """``GET /continuum/workflows/credentials``: the user's run credentials."""

    @web.authenticated
    async def get(self) -> None:
        await self.forward(self.workflows.credentials)


class WorkflowRevokeHandler(ServiceHandler):
    """``POST /continuum/workflows/credentials/revoke`` ``{"id"}``: revoke a run credential."""

    @web.authenticated
    async def post(self) -> None:
        await self.forward(lambda: self.workflows.revoke(self.json_object().get("id")))


# (path below {base_url}continuum/, handler class)
ROUTES: list[tuple[str, type[ContinuumHandler]]] = [
    ("workflows/options", WorkflowOptionsHandler),
    ("workflows/estimate", WorkflowEstimateHandler),
    ("workflows/parameters", WorkflowParametersHandler),
    ("workflows/runs", WorkflowRunsHandler),
    ("workflows/run", WorkflowRunHandler),
    ("workflows/workflows", WorkflowFilesHandler),
    ("workflows/runs/cancel", WorkflowCancelHandler),
    ("workflows/runs/rerun", WorkflowRerunHandler),
    ("workflows/runs/open", WorkflowOpenHandler),
    ("workflows/runs/archive", WorkflowArchiveHandler),
    ("workflows/file", WorkflowFileHandler),
    ("workflows/credentials", WorkflowCredentialsHandler),
    ("workflows/credentials/revoke", WorkflowRevokeHandler),
]
