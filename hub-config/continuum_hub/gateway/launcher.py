"""The gateway's launcher: run as the cluster's user (``sudo -nHu USER``, or on a site's login
node through the SSH transport), submit or cancel.

A drop-in for dask-gateway's ``dask-gateway-jobqueue-launcher`` (same request on standard
input, same answer on standard output), run as ``python -I -S <this file>``: it imports only
the standard library, where upstream's entry point imports ``dask_gateway_server`` and with it
aiohttp and SQLAlchemy (a quarter of a second of imports per job on an idle machine, more on a
busy one, before every ``sbatch`` and ``scancel``).  It imports nothing of this project either:
``-I`` keeps the script's folder off ``sys.path``.

Request (JSON): ``{"action": "start" | "stop", "cmd": [...], "env": {...}, "stdin": str|null,
"staging_dir": str|null, "files": {name: text}}``.  ``start`` creates the staging folder (0700,
must not exist yet) with the files (0600), then runs ``cmd``; ``stop`` removes the folder (if
there) and runs ``cmd``.  Answer: ``{"ok": true, "returncode", "stdout", "stderr"}`` or
``{"ok": false, "error"}``.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from typing import Any


def finish(**answer: Any) -> None:
    json.dump(answer, sys.stdout)
    sys.stdout.flush()


def run_command(cmd: list[str], env: dict[str, str], stdin: str | None = None) -> None:
    proc = subprocess.run(
        cmd,
        env=env,
        # the account's own home, not $HOME: over SSH, sudo may keep the login account's
        cwd=pwd.getpwuid(os.getuid()).pw_dir,
        input=None if stdin is None else stdin.encode("utf8"),
        capture_output=True,
        check=False,
    )
    finish(
        ok=True,
        returncode=proc.returncode,
        stdout=proc.stdout.decode("utf8", "replace"),
        stderr=proc.stderr.decode("utf8", "replace"),
    )


def start(
    cmd: list[str],
    env: dict[str, str],
    stdin: str | None = None,
    staging_dir: str | None = None,
    files: dict[str, str] | None = None,
) -> None:
    if staging_dir:
        try:
            os.makedirs(staging_dir, mode=0o700, exist_ok=False)
            for name, value in (files or {}).items():
                path = os.path.join(staging_dir, name)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(value)
        except Exception as exc:
            finish(ok=False, error=f"Error setting up staging directory {staging_dir}: {exc}")
            return
    run_command(cmd, env, stdin=stdin)


def stop(cmd: list[str], env: dict[str, str], staging_dir: str | None = None) -> None:
    if staging_dir:
        if not os.path.exists(staging_dir):
            return  # as upstream: nothing printed, the caller cancels without the folder
        try:
            shutil.rmtree(staging_dir)
        except Exception as exc:
            finish(ok=False, error=f"Error removing staging directory {staging_dir}: {exc}")
            return
    run_command(cmd, env)


def main() -> None:
    try:
        request = json.load(sys.stdin)
    except ValueError as exc:
        finish(ok=False, error=str(exc))
        return
    action = request.pop("action", None)
    if action == "start":
        start(**request)
    elif action == "stop":
        stop(**request)
    else:
        finish(ok=False, error="Valid actions are 'start' and 'stop'")


if __name__ == "__main__":
    main()
