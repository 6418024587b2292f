"""Supervision of the local federation's processes (demo and test fixtures).

Every daemon of the local federation (munge, slurmctld/slurmd, the OpenID provider, the hub) is a
:class:`ManagedProcess`: started in its own process group with its output in a log file, waited
for until it is ready, and always stopped with its whole group.  Ports are picked free on
127.0.0.1.

A process in a session of its own outlives an owner that dies without calling ``stop()`` (a
benchmark or a test run killed with SIGKILL): nothing signals it.  One started with
``death_signal`` gets that signal when its owner's process ends, however it ends
(``prctl(PR_SET_PDEATHSIG)``, set in the child before ``exec``).  The kernel sends it when the
*thread* that forked the child ends, not the process, so such children are forked by one
long-lived thread of the owner (:func:`_forker`), whatever thread asks for them: a hub started
from a worker thread that then ends keeps its proxy.  The setting reaches the direct child only
and is cleared by a set-uid ``exec``; children of the child are the child's business (the hub's
supervisor kills what its hub leaves).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self

PR_SET_PDEATHSIG = 1


class ProcessError(RuntimeError):
    """A managed process failed to start or died; the message quotes its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, or an empty string."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _stat(pid: int) -> tuple[int, int] | None:
    """``(parent pid, start time)`` of a process, from ``/proc``; ``None`` once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (2nd field) may contain blanks and parentheses: split after its last ')'
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def parent_pid(pid: int) -> int | None:
    """The parent of process ``pid``, ``None`` once it is gone."""
    stat = _stat(pid)
    return None if stat is None else stat[0]


def descendants(pid: int) -> dict[int, int]:
    """All processes below ``pid`` (children, grandchildren, …) with their start times."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found: dict[int, int] = {}
    todo = [pid]
    while todo:
        for child, started in parents.get(todo.pop(), []):
            if child not in found:
                found[child] = started
                todo.append(child)
    return found


@functools.cache
def _prctl() -> Callable[..., int]:
    # looked up before fork: the child must not load libraries (another thread of the owner may
    # hold the loader's lock at fork time)
    return ctypes.CDLL(None, use_errno=True).prctl


_forker_lock = threading.Lock()
_forker_pool: ThreadPoolExecutor | None = None


def _forker() -> ThreadPoolExecutor:
    """The one thread that forks children with a death signal: it lives as long as the
    owner's interpreter, so the signal comes when the owner ends, not a short-lived thread."""
    global _forker_pool
    with _forker_lock:
        if _forker_pool is None:
            _forker_pool = ThreadPoolExecutor(1, thread_name_prefix="owned-children")
        return _forker_pool


def _die_with(owner: int, signum: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``signum`` when ``owner``'s forking thread ends."""
    prctl = _prctl()

    def setup() -> None:
        if prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signum), ctypes.c_ulong(0), 0, 0) != 0:
            raise OSError("prctl(PR_SET_PDEATHSIG) failed")  # Popen raises it in the owner
        if os.getppid() != owner:  # the owner died before the setting took effect
            os._exit(1)

    return setup


def popen_owned(
    argv: Sequence[str], death_signal: int | None, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **kwargs)``; with ``death_signal``, the child gets that signal
    when this process ends, even by ``SIGKILL`` (forked by :func:`_forker`'s thread)."""
    if death_signal is None:
        return subprocess.Popen(argv, **kwargs)
    setup = _die_with(os.getpid(), int(death_signal))

    def fork() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, preexec_fn=setup, **kwargs)

    try:
        future = _forker().submit(fork)
    except RuntimeError:  # the interpreter is shutting down: its threads end now anyway
        return fork()
    return future.result()


class ManagedProcess:
    """One child process with a log file, a readiness check and a clean stop.

    Parameters
    ----------
    name
        Short name used in messages and as the log file's stem.
    argv
        The command, as an argument list (never a shell string).
    log_dir
        Folder for ``<name>.log``.
    env
        Full environment of the child; defaults to the current one.
    cwd
        Working directory of the child.
    death_signal
        Signal the child gets when this (the owner's) process ends without stopping it, even
        by ``SIGKILL`` (see the module); ``None``: the child outlives its owner.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        death_signal: signal.Signals | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_dir) / f"{name}.log"
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.death_signal = death_signal
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        """Start the process in a new session (its own process group)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = popen_owned(
                self.argv,
                self.death_signal,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float = 60.0) -> None:
        """Poll ``check`` until it is true; raise :class:`ProcessError` on death or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ProcessError(
                    f"{self.name} exited with status {self.proc.returncode} while starting; "
                    f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            if check():
                return
            time.sleep(0.1)
        raise ProcessError(
            f"{self.name} was not ready after {timeout:.0f} s; "
            f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def start_ready(self, check: Callable[[], bool], timeout: float = 60.0) -> ManagedProcess:
        """:meth:`start`, then :meth:`wait_ready`; the process is stopped if it never gets ready."""
        self.start()
        try:
            self.wait_ready(check, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Send SIGTERM to the process group, then SIGKILL after ``timeout`` seconds."""
        if self.proc is None:
            return
        # children that started sessions of their own (JupyterHub's proxy and services) are not
        # in our process group; remember them to end those that outlive their parent
        below = descendants(self.proc.pid)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        else:
            # the leader is gone; children of its group may still be alive
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        for pid, started in below.items():
            stat = _stat(pid)
            if stat is not None and stat[1] == started:  # the same process, not a reused pid
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        self.proc = None


class Service:
    """A piece of the local federation: ``start()`` returns it ready, ``stop()`` is idempotent.

    Subclasses implement both; this base makes every piece a context manager.
    """

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
