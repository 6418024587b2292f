"""The user's batch runs, as the *Batch runs* lab panel and the *Run as batch job…* dialog use them.

:class:`WorkflowsManager` forwards the lab extension's requests to the hub's ``workflows``
service (REST below ``/services/workflows/api/v1/``) with the server's own
``JUPYTERHUB_API_TOKEN``, which carries ``access:services!service=workflows``. It adds what only
the user's server can do: read the notebook to submit (:mod:`continuum_lab.notebooks`: checked
path, no symbolic links, size limit) and send its content along, describe its ``parameters``
cell, save an executed notebook into the user's files so that Lab opens it, and ask the hub
when the dialog's resources would start (the spawn form's estimate).

Where the service is: ``ContinuumLab.workflows_url``, else the server's
``CONTINUUM_WORKFLOWS_URL``, else the hub's base derived from ``JUPYTERHUB_API_URL``
(``http://hub:8081/hub/api`` → ``http://hub:8081/services/workflows/``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import yaml
from jupyter_core.utils import ensure_async
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Any as AnyTrait
from traitlets.config import LoggingConfigurable

from .notebooks import (
    WORKFLOW_SUFFIXES,
    api_path,
    notebook_parameters,
    read_notebook,
    read_workflow_file,
)
from .remote import ServiceAPI, ServiceError, fetch_json, hub_service_api

#: run and credential ids (the service's are ``r-<hex>``/``c-<hex>``; anything safe in a URL)
IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
#: what a submit request may carry to the service besides the notebook (the service validates)
SUBMIT_FIELDS = (
    "name",
    "parameters",
    "sweep",
    "max_parallel",
    "resources",
    "inputs",
    "outputs",
    "retries",
    "allow_move",
)
#: a download's file name in the service's Content-Disposition
FILE_NAME = re.compile(r'filename="([A-Za-z0-9._-]{1,120})"')
#: where executed notebooks are saved in the user's files
RUNS_FOLDER = "continuum-runs"
#: the spawn form's fields, which the hub's estimate route reads (``continuum_spawners.options``)
ESTIMATE_FIELDS = ("site", "partition", "cores", "memory_gb", "gpus", "walltime", "environment")


class WorkflowsError(ServiceError):
    """A request about batch runs failed; ``status`` is the HTTP status to answer with."""


def service_endpoint(environ: Mapping[str, str], url: str = "") -> ServiceAPI:
    """The ``workflows`` service of this server: ``url`` (``ContinuumLab.workflows_url``, the
    service's prefix or its API), else ``CONTINUUM_WORKFLOWS_URL``, else the hub's base from
    ``JUPYTERHUB_API_URL`` (:func:`~.remote.hub_service_api`); a :class:`WorkflowsError` 503
    when none names it or there is no API token."""
    return hub_service_api(
        environ,
        url,
        service="workflows",
        variable="CONTINUUM_WORKFLOWS_URL",
        describe="batch workflows service",
        option="ContinuumLab.workflows_url",
        error=WorkflowsError,
    )


def identifier(value: object, what: str) -> str:
    """A run or credential id from a request (400 unless it looks like one)."""
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise WorkflowsError(400, f"Not a {what} id: {value!r}")
    return value


def service_refusal(code: int, reason: str) -> tuple[int, str]:
    """The status and message answering the service's error ``code`` with ``reason``.

    The service's 4xx are the user's (not your run, invalid parameters): passed on as they
    are; its own failures, redirects and a refused server token are a 502.
    """
    if code >= 500 or code in (301, 302, 401):
        return 502, f"The batch workflows service failed: {reason}"
    return code, reason


def hub_refusal(code: int, reason: str) -> tuple[int, str]:
    """As :func:`service_refusal`, for the hub's own routes (the estimate)."""
    if code >= 500 or code in (301, 302, 401):
        return 502, f"The hub failed: {reason}"
    return code, reason


class WorkflowsManager(LoggingConfigurable):
    """Forwards the lab's batch-run requests to the ``workflows`` service.

    Its parent is the :class:`~continuum_lab.config.ContinuumLab` whose ``workflows_url`` and
    ``workflows_timeout`` apply.
    """

    environ = AnyTrait(help="The server's environment (a mapping); os.environ unless tests set it.")

    def _environ_default(self) -> Mapping[str, str]:
        return dict(os.environ)

    @property
    def endpoint(self) -> ServiceAPI:
        """The service this server uses (raises :class:`WorkflowsError` when there is none)."""
        return service_endpoint(self.environ, str(getattr(self.parent, "workflows_url", "")))

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """``method`` the service's ``api/v1/<path>``; its JSON answer (``None`` when empty).

        Raises
        ------
        WorkflowsError
            The service's 4xx with its message; 502 when it fails or cannot be reached.
        """
        endpoint = self.endpoint
        timeout = float(getattr(self.parent, "workflows_timeout", 60.0))
        request = HTTPRequest(
            endpoint.api + path,
            method=method,
            headers={**endpoint.headers, "Accept": "application/json"}
            | ({"Content-Type": "application/json"} if body is not None else {}),
            body=None if body is None else json.dumps(body),
            connect_timeout=min(timeout, 10.0),
            request_timeout=timeout,
            follow_redirects=False,
            # a POST without a body is legal here (cancel); tornado wants it said
            allow_nonstandard_methods=True,
        )
        return await fetch_json(
            request,
            what="The batch workflows service",
            key="message",
            refusal=service_refusal,
            error=WorkflowsError,
        )

    async def options(self) -> Any:
        """Sites, partitions and environments this user may run on, and the limits."""
        return await self.call("GET", "options")

    async def list_runs(self, query: Mapping[str, str]) -> list[Any]:
        """The user's runs, newest first (``state``/``workflow`` filters passed through)."""
        wanted = {k: v for k, v in query.items() if k in ("state", "workflow") and v}
        suffix = f"?{urlencode(wanted)}" if wanted else ""
        answer = await self.call("GET", "runs" + suffix)
        runs = answer.get("runs") if isinstance(answer, dict) else None
        if not isinstance(runs, list):
            raise WorkflowsError(502, "The batch workflows service's run list is not a list")
        return runs

    async def run(self, run_id: object) -> Any:
        """One run with its members' live progress."""
        return await self.call("GET", f"runs/{quote(identifier(run_id, 'run'))}")

    async def estimate(self, query: Mapping[str, str]) -> Any:
        """When the dialog's resources would start, and their energy/CO2e bound.

        The spawn form's estimate: the hub's ``GET /hub/api/continuum/estimate`` (the same
        validation of the fields, the same model, ``site=soonest`` included), asked with the
        server's own token; ``query`` holds the spawn form's fields (:data:`ESTIMATE_FIELDS`).

        Raises
        ------
        WorkflowsError
            The hub's refusal (400/403 with its message); 502 when it fails or cannot be
            reached; 503 when this server knows no hub.
        """
        hub_api = self.environ.get("JUPYTERHUB_API_URL", "").strip().rstrip("/")
        token = self.environ.get("JUPYTERHUB_API_TOKEN", "")
        if not hub_api.startswith(("http://", "https://")) or not token:
            raise WorkflowsError(503, "This server knows no hub to ask for an estimate.")
        wanted = {k: str(query[k]) for k in ESTIMATE_FIELDS if query.get(k)}
        timeout = float(getattr(self.parent, "workflows_timeout", 60.0))
        request = HTTPRequest(
            f"{hub_api}/continuum/estimate?{urlencode(wanted)}",
            headers={"Authorization": f"token {token}", "Accept": "application/json"},
            connect_timeout=min(timeout, 10.0),
            request_timeout=timeout,
            follow_redirects=False,
        )
        return await fetch_json(
            request, what="The hub", key="message", refusal=hub_refusal, error=WorkflowsError
        )

    async def parameters(self, contents_manager: Any, path: object) -> dict[str, Any]:
        """The notebook's parameters cell as the dialog pre-fills it (see :mod:`.notebooks`)."""
        relative, notebook = await read_notebook(contents_manager, path)
        return {"path": relative, **await notebook_parameters(notebook)}

    async def submit(self, contents_manager: Any, body: Mapping[str, Any]) -> Any:
        """Read the notebook named by ``body["path"]`` and submit it with ``body``'s settings."""
        relative, notebook = await read_notebook(contents_manager, body.get("path"))
        request = {k: body[k] for k in SUBMIT_FIELDS if k in body}
        request["notebook"] = {"path": relative, "content": notebook}
        run = await self.call("POST", "runs", request)
        self.log.info("continuum_lab: submitted %s as batch run %s", relative, _run_id(run))
        return run

    async def list_workflows(self) -> Any:
        """The user's workflows (their steps' runs by step name, their state)."""
        return await self.call("GET", "workflows")

    async def submit_workflow(self, contents_manager: Any, path: object) -> Any:
        """Submit the workflow file at ``path`` with the notebooks its steps name.

        The notebooks are read with :func:`~.notebooks.read_notebook`'s checks, keyed by the
        step's ``notebook`` text as the service looks them up; the service checks the file
        itself (its refusals name line and column).
        """
        relative, text = await read_workflow_file(contents_manager, path)
        notebooks = {}
        for name in step_notebooks(text):
            notebooks[name] = (await read_notebook(contents_manager, name))[1]
        workflow = await self.call("POST", "workflows", {"yaml": text, "notebooks": notebooks})
        self.log.info("continuum_lab: submitted workflow %s as %s", relative, _run_id(workflow))
        return workflow

    async def save_workflow(self, contents_manager: Any, body: Mapping[str, Any]) -> dict[str, str]:
        """Write the *Workflow…* dialog's chain as a workflow file; ``{"path"}``.

        ``body["workflow"]`` is the file's document; it is checked and written by the hub's
        own code (``continuum_hub.workflows.spec``: :func:`workflow_from_dict`, ``to_yaml``),
        so the file is what ``Run Workflow`` and the service load — and is read back before it
        is saved. ``body["path"]`` (``.yaml``/``.yml``) must not exist yet, its folder must.

        Raises
        ------
        WorkflowsError
            400 for a document the rules refuse (the message says where), 409 when the file
            exists, 404 when its folder does not.
        """
        from continuum_hub.workflows.spec import WorkflowError, to_yaml, workflow_from_dict

        relative = api_path(body.get("path"), WORKFLOW_SUFFIXES, "workflow file")
        try:
            text = to_yaml(workflow_from_dict(body.get("workflow")))
            workflow_from_dict(yaml.safe_load(text))  # what is saved loads again
        except WorkflowError as exc:
            raise WorkflowsError(400, f"The workflow cannot be saved: {exc}") from None
        folder = relative.rpartition("/")[0]
        if folder and not await ensure_async(contents_manager.dir_exists(folder)):
            raise WorkflowsError(404, f"The folder {folder} does not exist.")
        if await ensure_async(contents_manager.exists(relative)):
            raise WorkflowsError(409, f"{relative} exists already: give the workflow another name.")
        model = {"type": "file", "format": "text", "content": text}
        try:
            await ensure_async(contents_manager.save(model, relative))
        except web.HTTPError as exc:
            raise WorkflowsError(
                exc.status_code, f"cannot save {relative}: {exc.log_message or exc.reason}"
            ) from None
        self.log.info("continuum_lab: saved the workflow file %s", relative)
        return {"path": relative}

    async def cancel(self, run_id: object) -> Any:
        """Cancel a run (the service cancels its job and its dependants)."""
        return await self.call("POST", f"runs/{quote(identifier(run_id, 'run'))}/cancel", {})

    async def rerun(self, run_id: object, parameters: object = None) -> Any:
        """A new run of the same snapshot and settings, with ``parameters`` changed if given."""
        if parameters is not None and not isinstance(parameters, dict):
            raise WorkflowsError(400, "parameters must be a JSON object")
        body = {} if parameters is None else {"parameters": parameters}
        return await self.call("POST", f"runs/{quote(identifier(run_id, 'run'))}/rerun", body)

    async def save_output(self, contents_manager: Any, run_id: object, member: object) -> str:
        """Fetch a run's executed notebook and save it below :data:`RUNS_FOLDER`; its path.

        ``member`` is the sweep member's index, or ``None`` for a single run: the notebook is
        saved as ``continuum-runs/<run>/output.ipynb`` (``output-<i>.ipynb`` for a member).
        """
        run = identifier(run_id, "run")
        if member is not None and (
            isinstance(member, bool) or not isinstance(member, int) or member < 0
        ):
            raise WorkflowsError(400, "member must be a member's index (0, 1, …)")
        query = "" if member is None else f"?member={member}"
        notebook = await self.call("GET", f"runs/{quote(run)}/notebook{query}")
        if not isinstance(notebook, dict) or "cells" not in notebook:
            raise WorkflowsError(502, "The batch workflows service did not send a notebook")
        folder = f"{RUNS_FOLDER}/{run}"
        name = "output.ipynb" if member is None else f"output-{member}.ipynb"
        try:
            for part in (RUNS_FOLDER, folder):
                if not await ensure_async(contents_manager.dir_exists(part)):
                    await ensure_async(contents_manager.save({"type": "directory"}, part))
            model = {"type": "notebook", "format": "json", "content": notebook}
            await ensure_async(contents_manager.save(model, f"{folder}/{name}"))
        except web.HTTPError as exc:
            raise WorkflowsError(
                exc.status_code, f"cannot save {folder}/{name}: {exc.log_message or exc.reason}"
            ) from None
        return f"{folder}/{name}"

    async def archive(self, run_id: object, write: Callable[[str, bytes], None]) -> None:
        """Stream the run folder's tar.gz from the service: ``write(file name, chunk)``.

        Nothing reaches ``write`` unless the service answers 200 (its refusal is raised as
        :class:`WorkflowsError` with its message, as is a failure before the first chunk); the
        file name is the service's ``Content-Disposition`` one, checked, else
        ``<run id>.tar.gz``.
        """
        run = identifier(run_id, "run")
        endpoint = self.endpoint
        status: list[int] = []
        headers: dict[str, str] = {}
        refusal: list[bytes] = []

        def header(line: str) -> None:
            if line.startswith("HTTP/"):
                status[:] = [int(line.split()[1])]
                headers.clear()
            elif ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()

        def body(chunk: bytes) -> None:
            if status == [200]:
                found = FILE_NAME.search(headers.get("content-disposition", ""))
                write(found.group(1) if found else f"{run}.tar.gz", chunk)
            elif sum(map(len, refusal)) < 2**16:
                refusal.append(chunk)

        timeout = float(getattr(self.parent, "workflows_timeout", 60.0))
        request = HTTPRequest(
            f"{endpoint.api}runs/{quote(run)}/archive",
            headers=dict(endpoint.headers),
            connect_timeout=min(timeout, 10.0),
            # the whole download: a large folder streams for a while
            request_timeout=max(timeout, 900.0),
            follow_redirects=False,
            header_callback=header,
            streaming_callback=body,
        )
        try:
            await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            raise WorkflowsError(502, f"The batch workflows service failed: {exc}") from None
        code = status[0] if status else 502
        if code != 200:
            try:
                message = str(json.loads(b"".join(refusal)).get("message", ""))
            except (ValueError, AttributeError):
                message = ""
            raise WorkflowsError(*service_refusal(code, message or f"HTTP {code}"))

    async def credentials(self) -> Any:
        """The user's run credentials (tokens that let runs work unattended)."""
        return await self.call("GET", "credentials")

    async def revoke(self, credential_id: object) -> None:
        """Revoke a run credential: its run's next token refresh fails."""
        await self.call("DELETE", f"credentials/{quote(identifier(credential_id, 'credential'))}")


def step_notebooks(text: str) -> list[str]:
    """The distinct ``notebook`` texts of a workflow file's steps (none when it does not parse:
    the service then says what is wrong, with line and column)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    steps = document.get("steps") if isinstance(document, dict) else None
    names = [s.get("notebook") for s in steps or [] if isinstance(s, dict)]
    return list(dict.fromkeys(n for n in names if isinstance(n, str)))


def _run_id(run: Any) -> str:
    return str(run.get("id")) if isinstance(run, dict) else "?"
