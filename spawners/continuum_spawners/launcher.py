"""``continuum-singleuser``: start the user's server inside a batch job.

Run by the job script as ``continuum-singleuser jupyterhub-singleuser [args…]``.  It picks a free
port on the node (bound to ``CONTINUUM_BIND_IP``), points ``JUPYTERHUB_SERVICE_URL`` at it, sets
``BEARER_TOKEN_FILE`` to a private per-server file (kept fresh by the ``continuum_lab`` server
extension), and runs the server command as its child, behind the workshop material pull
(:func:`material_command`) where the hub's package is installed; it passes signals on and tells
the hub when the scheduler ends the job (:mod:`.job_end`).

The port is reported to the hub with the server's own token (``POST /hub/api/batchspawner``,
body ``{"port": N}`` and nothing else) as soon as the server accepts connections on it
(:func:`report_when_listening`): the hub's check of a new server backs off exponentially
(0.2, 0.4, 0.8 … s), so a port reported while the server still imports cost up to as much again
as the import; reported once the socket listens, the hub's first check finds the server.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import re
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .job_end import Supervisor

# the header's name (also in continuum_spawners.phases, which the launcher does not import:
# it runs in every job before the server and loads only what it needs)
LAUNCHER_AGE_HEADER = "X-Continuum-Launcher-Age"


def reserve_port(host: str) -> socket.socket:
    """A socket bound to a port free on ``host``, holding it for the server until it listens.

    A port merely picked (bound and closed) is free for anyone until the server binds it,
    seconds later while it imports: two jobs on one node were given the same port in a
    200-user storm, and one launcher reported the other's server.  This socket keeps the port
    taken for every other bind: it is bound without ``SO_REUSEADDR`` (so the kernel chose a
    port no one else holds), then marked reusable, which lets the server's own bind (Tornado
    sets ``SO_REUSEADDR``) share it, and it never listens.  Close it once the server listens.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.bind((host, 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    except OSError:
        sock.close()
        raise
    return sock


def report_port(
    api_url: str, token: str, port: int, timeout: float = 30.0, launcher_age: float | None = None
) -> None:
    """Tell the hub which port the server will listen on (and, for the spawn's phases, how
    many seconds ago the launcher started: ``X-Continuum-Launcher-Age``)."""
    if not api_url.startswith(("http://", "https://")):
        raise RuntimeError(f"JUPYTERHUB_API_URL is not an http(s) URL: {api_url!r}")
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    if launcher_age is not None:
        headers[LAUNCHER_AGE_HEADER] = f"{launcher_age:.3f}"
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        api_url.rstrip("/") + "/batchspawner",
        data=json.dumps({"port": port}).encode(),
        headers=headers,
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        if response.status not in (200, 201):
            raise RuntimeError(f"hub answered {response.status} to the port report")


def process_age() -> float | None:
    """Seconds since this process started (Linux ``/proc``: the interpreter's start and the
    imports included), or ``None`` where that cannot be read."""
    try:
        with open("/proc/self/stat") as stat_file, open("/proc/uptime") as uptime_file:
            # the command name may hold spaces and parentheses: fields follow its last ")"
            start_ticks = int(stat_file.read().rsplit(")", 1)[1].split()[19])
            uptime = float(uptime_file.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on ``host:port`` (a wildcard means this node)."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    try:
        with socket.create_connection((target, port), timeout=timeout):
            return True
    except OSError:
        return False


def report_when_listening(
    child: subprocess.Popen[bytes],
    host: str,
    port: int,
    report: Callable[[], None],
    interval: float = 0.02,
) -> bool:
    """Call ``report`` once ``child`` listens on ``port``; ``False`` if ``child`` exited first
    or the report failed (then ``child`` is terminated: a server the hub never learns of would
    only hold the job until its walltime)."""
    while not listening(host, port):
        if child.poll() is not None:
            return False
        time.sleep(interval)
    try:
        report()
    except (OSError, RuntimeError, urllib.error.URLError) as exc:
        print(f"continuum-singleuser: cannot report the port to the hub: {exc}", file=sys.stderr)
        child.terminate()
        return False
    return True


def service_url(url: str, host: str, port: int) -> str:
    """``url`` with its host and port replaced."""
    parts = urlsplit(url)
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def job_times(environ: Mapping[str, str], now: float | None = None) -> dict[str, str]:
    """``CONTINUUM_JOB_START``/``_END`` (ISO 8601 UTC) from the job's start and walltime.

    The start is Slurm's ``SLURM_JOB_START_TIME`` where the site's Slurm sets it, else now
    (the launcher runs within a second of the job's start).
    """
    start = now if now is not None else time.time()
    with contextlib.suppress(KeyError, ValueError):
        start = float(environ["SLURM_JOB_START_TIME"])
    times = {"CONTINUUM_JOB_START": _iso(start)}
    with contextlib.suppress(KeyError, ValueError):
        times["CONTINUUM_JOB_END"] = _iso(start + 60 * int(environ["CONTINUUM_WALLTIME_MINUTES"]))
    return times


def token_file_path(environ: Mapping[str, str], uid: int | None = None) -> Path:
    """Where this server's access token lives (``BEARER_TOKEN_FILE``); its folder is made 0700.

    ``$XDG_RUNTIME_DIR/continuum`` when the job has a runtime folder of the user's own (local,
    private, cleared at logout), else ``~/.continuum/tokens``.  The name carries the site, the
    job and the process, so servers of several hubs or sites never share a file.
    """
    uid = os.getuid() if uid is None else uid
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    folder = Path(pwd.getpwuid(uid).pw_dir) / ".continuum" / "tokens"
    if runtime and _own_private_dir(Path(runtime), uid):
        folder = Path(runtime) / "continuum"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _own_private_dir(folder, uid):
        folder.chmod(0o700)  # created earlier by hand with a looser mode
        if not _own_private_dir(folder, uid):
            raise RuntimeError(f"{folder} must be a folder of your own")
    site = _safe(environ.get("CONTINUUM_SITE", "")) or "local"
    job = _safe(environ.get("SLURM_JOB_ID", "")) or "nojob"
    return folder / f"{site}-{job}-{os.getpid()}.token"


def material_command(args: list[str]) -> list[str]:
    """``args`` run behind the pull of the user's workshop material
    (``continuum_hub.workshops.material_pull``, which never stops the server from starting)
    when the hub's package is installed beside this launcher, else ``args`` as they are."""
    if importlib.util.find_spec("continuum_hub") is None:
        return args
    return [sys.executable, "-m", "continuum_hub.workshops.material_pull", "--", *args]


def _own_private_dir(path: Path, uid: int) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid and not info.st_mode & 0o077


def _safe(value: str) -> str:
    """``value`` if it is a plain name (letters, digits, ``-_.``), else empty."""
    return value if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value) else ""


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv: list[str] | None = None) -> None:
    # when the launcher started, for the spawn's phases (its main() if /proc says nothing)
    began = time.monotonic() - (process_age() or 0.0)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.exit("usage: continuum-singleuser COMMAND [ARGS…]")
    host = os.environ.get("CONTINUUM_BIND_IP", "127.0.0.1")
    try:
        api_url = os.environ["JUPYTERHUB_API_URL"]
        token = os.environ["JUPYTERHUB_API_TOKEN"]
        url = os.environ["JUPYTERHUB_SERVICE_URL"]
    except KeyError as exc:
        sys.exit(f"continuum-singleuser: {exc.args[0]} is not set; is this a hub job?")
    if not api_url.startswith(("http://", "https://")):
        sys.exit(f"continuum-singleuser: JUPYTERHUB_API_URL is not an http(s) URL: {api_url!r}")
    reservation = reserve_port(host)
    port = int(reservation.getsockname()[1])
    os.environ["JUPYTERHUB_SERVICE_URL"] = service_url(url, host, port)
    os.environ.update(job_times(os.environ))
    try:
        # kernels and terminals inherit it; the server extension keeps the file fresh
        os.environ["BEARER_TOKEN_FILE"] = str(token_file_path(os.environ))
    except (OSError, RuntimeError, KeyError) as exc:
        print(f"continuum-singleuser: no BEARER_TOKEN_FILE: {exc}", file=sys.stderr, flush=True)
    # the server runs from this launcher's environment, whatever PATH the site gave the job
    bin_dir = os.path.dirname(sys.executable)
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "/usr/bin:/bin")])
    print(f"continuum-singleuser: serving on {host}:{port}", flush=True)
    # the launcher stays the server's parent, to report the scheduler's SIGTERM (job_end)
    supervisor = Supervisor(material_command(args), api_url, token, os.environ)
    reported: list[bool] = []

    def report() -> None:
        report_port(api_url, token, port, launcher_age=time.monotonic() - began)

    def watch() -> None:
        while supervisor.child is None:  # run() starts it in a moment
            time.sleep(0.005)
        try:
            reported.append(report_when_listening(supervisor.child, host, port, report))
        finally:
            reservation.close()

    threading.Thread(target=watch, name="port-report", daemon=True).start()
    returncode = supervisor.run()
    # a server that ended before its port was reported failed to start, whatever its status
    sys.exit(returncode if reported == [True] else returncode or 1)


if __name__ == "__main__":
    main()
