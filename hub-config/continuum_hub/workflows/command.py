"""``continuum-hub run NOTEBOOK -p NAME VALUE … --site S``: a batch run from a terminal.

Reads the notebook below the home folder (no symbolic link followed), builds the same request
as the lab's *Run as batch job…* dialog and submits it to the workflow service with the
server's ``JUPYTERHUB_API_TOKEN`` (URL from ``CONTINUUM_WORKFLOWS_URL`` or ``--url``).  Values
are JSON when they parse as JSON (``-p n 5`` is a number, ``-p flags '[1, 2]'`` a list), else
text (``-p label run-A``); the service converts them to the types of the notebook's
``parameters`` cell and refuses what does not fit, with its reason.  ``--sweep NAME=V1,V2``
(repeatable) makes a grid; ``--wait`` waits for the run to end and exits 0 only when it is done.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .client import FINAL_STATES, WorkflowsClient, WorkflowsError, read_notebook, service_url
from .paths import PathError


def value(text: str) -> Any:
    """``text`` as JSON when it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def sweep_grid(items: list[str]) -> dict[str, list[Any]] | None:
    """``["energy=1,2,4", "seed=7"]`` → ``{"energy": [1, 2, 4], "seed": [7]}``."""
    if not items:
        return None
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name or not values:
            raise WorkflowsError(f"--sweep {item!r}: write NAME=VALUE1,VALUE2", 400)
        grid[name] = [value(v) for v in values.split(",")]
    return grid


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="continuum-hub run", description=__doc__.splitlines()[0].split(": ", 1)[-1]
    )
    p.add_argument("notebook", help="the notebook, below your home folder")
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter (JSON, else text); repeatable",
    )
    p.add_argument("--site", required=True, help="the site to run on")
    p.add_argument("--partition", help="the partition (default: the site's)")
    p.add_argument("--cores", type=int)
    p.add_argument("--memory-gb", type=int)
    p.add_argument("--gpus", type=int)
    p.add_argument("--walltime", help="H:MM")
    p.add_argument("--environment", help="the site's software environment")
    p.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2", help="repeatable")
    p.add_argument("--max-parallel", type=int, help="at most this many sweep members at once")
    p.add_argument("--output", action="append", default=[], help="a declared output; repeatable")
    p.add_argument("--input", action="append", default=[], help="an input path; repeatable")
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--name", help="the run's name (default: the notebook's)")
    p.add_argument("--url", help="the workflow service (default: CONTINUUM_WORKFLOWS_URL)")
    p.add_argument("--wait", action="store_true", help="wait until the run ends")
    return p


def request(args: argparse.Namespace, home: str | None = None) -> dict[str, Any]:
    """The run request the arguments describe (the notebook read from disk)."""
    resources = {
        "site": args.site,
        "partition": args.partition,
        "cores": args.cores,
        "memory_gb": args.memory_gb,
        "gpus": args.gpus,
        "walltime": args.walltime,
        "environment": args.environment,
    }
    body: dict[str, Any] = {
        "notebook": read_notebook(args.notebook, home),
        "parameters": {name: value(text) for name, text in args.parameter},
        "resources": {k: v for k, v in resources.items() if v is not None},
        "outputs": args.output,
        "inputs": args.input,
        "retries": args.retries,
    }
    grid = sweep_grid(args.sweep)
    if grid is not None:
        body["sweep"] = {"grid": grid}
    if args.max_parallel is not None:
        body["max_parallel"] = args.max_parallel
    if args.name:
        body["name"] = args.name
    return body


def main(argv: list[str] | None = None) -> int:
    """Submit (and with ``--wait`` follow) one run; 0 submitted/done, 1 failed, 2 refused."""
    args = parser().parse_args(argv)
    try:
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        if not token:
            raise WorkflowsError("JUPYTERHUB_API_TOKEN is not set (run this in your server)", 0)
        client = WorkflowsClient(args.url or service_url(), token)
        run = client.submit(**request(args))
    except (WorkflowsError, PathError) as exc:
        print(f"continuum-hub run: {exc}", file=sys.stderr)
        return 2
    print(f"{run['id']}: {run['state']} on {run['resources'].get('site')}")
    if not args.wait:
        return 0
    last = ""
    while run["state"] not in FINAL_STATES:
        run = client.wait(run["id"], timeout=30)
        line = f"{run['id']}: {run['state']}" + (f" ({run['reason']})" if run["reason"] else "")
        if line != last:
            print(line, flush=True)
            last = line
    return 0 if run["state"] == "done" else 1
