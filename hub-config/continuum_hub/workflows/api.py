"""The REST handlers of the workflow service, under ``/services/workflows/api/v1/``.

Thin handlers over the :class:`~.manager.RunManager` and the :class:`~.definitions.WorkflowBook`.
Every request is authenticated with a hub token (``Authorization: token …``) checked by
``jupyterhub.services.auth.HubAuth``: no token or an unknown one → 401; a token without
``access:services!service=workflows`` (or that is not a user's) → 403.  The user's groups and
admin flag are read from the hub with the service's own token, so they are current.  Answers
and errors are JSON (``{"message": "…"}``; never a stack trace); :data:`ROUTES` is also what the
OpenAPI document (:mod:`.openapi`) describes.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from tornado import web

from continuum_spawners.sites import format_walltime

from ..service_api import HubServiceHandler
from ..workshops.usable import usable_sites
from . import ACCESS_SCOPE, API_PREFIX
from .validation import MAX_RETRIES, RequestError

log = logging.getLogger(__name__)

RUN_ID = r"(r-[0-9a-f]{1,32})"
WORKFLOW_ID = r"(w-[0-9a-f]{1,32})"
CREDENTIAL_ID = r"(c-[0-9a-f]{1,32})"
#: what a download's file name keeps of a run's name
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class APIHandler(HubServiceHandler):
    """Authentication, JSON bodies and JSON errors for every route (the shared base's)."""

    access_scope = ACCESS_SCOPE
    service_label = "the workflow service"
    request_error = RequestError

    @property
    def hub_client(self) -> Any:
        return self.manager.hub

    @property
    def manager(self) -> Any:
        return self.settings["workflows_manager"]

    @property
    def book(self) -> Any:
        return self.settings["workflows_book"]


class RootHandler(APIHandler):
    async def get(self) -> None:
        self.send({"version": 1})


class OpenAPIHandler(APIHandler):
    async def get(self) -> None:
        from .openapi import document

        self.send(document())


class OptionsHandler(APIHandler):
    """``GET options``: the sites, partitions and environments this user may run on."""

    async def get(self) -> None:
        manager = self.manager
        registry = manager.registry()
        usable = usable_sites(registry, self.user.groups)  # a running event's site too
        unavailable = manager.resolver.unavailable(self.user.name, usable)
        sites = []
        for site in usable:
            if site.name in unavailable:
                continue
            partitions = [
                {
                    "name": p.name,
                    "label": p.label,
                    "max_cores": p.max_cores,
                    "max_memory_gb": p.max_memory_gb,
                    "max_gpus": p.max_gpus,
                    "max_walltime": format_walltime(p.max_walltime_minutes),
                    "default_walltime": format_walltime(p.default_walltime_minutes),
                    "default": p is site.default_partition,
                }
                for p in site.partitions_for(self.user.groups)
            ]
            environments = [
                {"name": e.name, "label": e.label, "default": e is site.default_environment}
                for e in site.environments
            ]
            sites.append(
                {
                    "name": site.name,
                    "label": site.label,
                    "partitions": partitions,
                    "environments": environments,
                }
            )
        limits = manager.limits
        self.send(
            {
                "sites": sites,
                "limits": {
                    "max_sweep_members": limits.max_sweep_members,
                    "min_schedule_minutes": limits.min_schedule_minutes,
                    "max_credential_days": manager.max_credential_days,
                    "max_retries": MAX_RETRIES,
                },
            }
        )


class RunsHandler(APIHandler):
    async def get(self) -> None:
        runs = self.manager.list_runs(
            self.user,
            state=self.get_query_argument("state", None),
            workflow_id=self.get_query_argument("workflow", None),
            everyone=self.get_query_argument("all", "") in ("1", "true"),
        )
        self.send({"runs": runs})

    async def post(self) -> None:
        self.send(await self.manager.create_run(self.user, self.body()), 201)


class RunHandler(APIHandler):
    async def get(self, run_id: str) -> None:
        from .store import public_run

        self.send(public_run(self.manager.owned_run(self.user, run_id)))


class RunCancelHandler(APIHandler):
    async def post(self, run_id: str) -> None:
        self.send(await self.manager.cancel_run(self.user, run_id))


class RunRerunHandler(APIHandler):
    async def post(self, run_id: str) -> None:
        self.send(await self.manager.rerun(self.user, run_id, self.body()), 201)


class RunNotebookHandler(APIHandler):
    async def get(self, run_id: str) -> None:
        run = self.manager.owned_run(self.user, run_id)
        member = self.get_query_argument("member", None)
        index = int(member) if member is not None and member.isdigit() else None
        if member is not None and index is None:
            raise RequestError("member must be a whole number")
        rel = self.manager.member_file(run, index, "output.ipynb")
        self.set_status(200)
        self.finish(await self.manager.read_result(self.user, run_id, rel))


class RunCrateHandler(APIHandler):
    async def get(self, run_id: str) -> None:
        self.finish(await self.manager.read_result(self.user, run_id, "ro-crate-metadata.json"))


class RunArchiveHandler(APIHandler):
    """``GET runs/{id}/archive``: the run folder as a tar.gz, streamed as the site sends it."""

    async def get(self, run_id: str) -> None:
        run, stream = self.manager.archive(self.user, run_id)
        try:
            first = await anext(stream, b"")
        except RuntimeError as exc:  # refused before anything was sent: a symlink leaving, …
            log.info("Run %s: no archive: %s", run_id, exc)
            raise RequestError(f"the run folder cannot be archived: {exc}", 409) from None
        name = SAFE_NAME.sub("_", str(run.get("name") or "run"))[:60].strip("._") or "run"
        self.set_header("Content-Type", "application/gzip")
        self.set_header("Content-Disposition", f'attachment; filename="{name}-{run_id}.tar.gz"')
        self.write(first)
        async for chunk in stream:
            self.write(chunk)
            await self.flush()
        self.finish()


class WorkflowsHandler(APIHandler):
    async def get(self) -> None:
        self.send({"workflows": self.book.list(self.user)})

    async def post(self) -> None:
        self.send(await self.book.create(self.user, self.body()), 201)


class WorkflowHandler(APIHandler):
    async def get(self, workflow_id: str) -> None:
        self.send(self.book.view(self.book.owned(self.user, workflow_id)))


class WorkflowCancelHandler(APIHandler):
    async def post(self, workflow_id: str) -> None:
        self.send(await self.book.cancel(self.user, workflow_id))


class WorkflowCwlHandler(APIHandler):
    async def get(self, workflow_id: str) -> None:
        text = self.book.cwl(self.user, workflow_id)
        self.set_header("Content-Type", "text/yaml; charset=utf-8")
        self.finish(text)


class CredentialsHandler(APIHandler):
    async def get(self) -> None:
        self.send({"credentials": self.manager.credentials.listed(self.user.name)})


class CredentialHandler(APIHandler):
    async def delete(self, credential_id: str) -> None:
        await self.manager.revoke(self.user, credential_id)
        self.set_status(204)
        self.finish()


class NotFoundHandler(APIHandler):
    """Any other path: 404 in JSON (after authentication, like every route)."""

    async def get(self, *args: Any) -> None:
        raise web.HTTPError(404, "no such route")

    post = delete = get


#: (path below the API prefix, handler, {method: summary}) — the OpenAPI document's source
ROUTES: list[tuple[str, type[APIHandler], dict[str, str]]] = [
    ("/", RootHandler, {"get": "The API's version"}),
    ("/openapi.json", OpenAPIHandler, {"get": "This API's OpenAPI 3.1 document"}),
    ("/options", OptionsHandler, {"get": "Sites, partitions, environments and limits for you"}),
    ("/runs", RunsHandler, {"get": "Your runs, newest first", "post": "Submit a run"}),
    (f"/runs/{RUN_ID}", RunHandler, {"get": "A run, with its members' progress"}),
    (f"/runs/{RUN_ID}/cancel", RunCancelHandler, {"post": "Cancel a run and its dependants"}),
    (f"/runs/{RUN_ID}/rerun", RunRerunHandler, {"post": "Run again, parameters changed"}),
    (f"/runs/{RUN_ID}/notebook", RunNotebookHandler, {"get": "The executed notebook"}),
    (f"/runs/{RUN_ID}/crate", RunCrateHandler, {"get": "The run's RO-Crate metadata"}),
    (f"/runs/{RUN_ID}/archive", RunArchiveHandler, {"get": "The run folder as a tar.gz"}),
    ("/workflows", WorkflowsHandler, {"get": "Your workflows", "post": "Submit a workflow"}),
    (f"/workflows/{WORKFLOW_ID}", WorkflowHandler, {"get": "A workflow"}),
    (f"/workflows/{WORKFLOW_ID}/cancel", WorkflowCancelHandler, {"post": "Cancel a workflow"}),
    (f"/workflows/{WORKFLOW_ID}/cwl", WorkflowCwlHandler, {"get": "The workflow as CWL v1.2"}),
    ("/credentials", CredentialsHandler, {"get": "Your runs' credentials"}),
    (f"/credentials/{CREDENTIAL_ID}", CredentialHandler, {"delete": "Revoke a credential"}),
]


def handlers(settings: dict[str, Any]) -> list[tuple[str, type[APIHandler], dict[str, Any]]]:
    """Tornado's URL specs under :data:`~continuum_hub.workflows.API_PREFIX`."""
    found = [(API_PREFIX + path.rstrip("/") + "/?", handler, {}) for path, handler, _ in ROUTES]
    found.append((API_PREFIX + r"(/.*)?", NotFoundHandler, {}))
    return found
