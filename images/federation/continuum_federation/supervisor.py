"""``python -m continuum_federation.supervisor [options] -- COMMAND…``: keep the hub running.

The demo's and the tests' hub (:class:`~.hub.LocalHub`) runs under this supervisor, which gives
it what ``continuum-hub.service`` gets from systemd (``deploy/``: ``Restart=on-failure``,
``KillMode=mixed``):

* When the hub dies on a failure (a non-zero status, a signal such as ``SIGKILL``), whatever
  it started and left alive is killed first — its managed services (idle culler, Dask Gateway
  and the gateway's proxy, workflows, catalogue …), which JupyterHub starts in sessions of their
  own — so none outlives it to hold its ports against the next hub.  Then the hub starts again
  after a back-off (``--delay``, doubled after each quick failure up to ``--max-delay``), with one
  log line saying how it ended, what was killed and when it comes back.  After ``--burst``
  failures in a row that each lived less than ``--stable`` seconds the supervisor gives up and
  exits 1.  A clean end (status 0, or ``SIGTERM``/``SIGINT``/``SIGHUP``/``SIGPIPE`` from someone
  else) is not restarted, as with systemd's ``on-failure``.
* ``SIGTERM``/``SIGINT`` to the supervisor stop the hub (``SIGTERM``: JupyterHub stops its
  services itself), wait ``--stop-timeout`` seconds, kill what is left and exit.
* When the supervisor's own parent goes away (the demo killed), it stops the hub the same way
  (``LocalHub`` starts it with ``SIGTERM`` as its parent-death signal: at once); the hub gets
  ``SIGTERM`` if the supervisor itself is killed (``PR_SET_PDEATHSIG``).

A warm spare (``--entry MODULE:FUNCTION`` with ``--preload MODULE``…): most of a hub's start
is importing JupyterHub and the configuration's packages (on a busy machine, 17 of 21 s).  With
an entry point, the supervisor keeps one spare process that has imported the ``--preload``
modules and waits (``--spare-after`` seconds after each start, so the two do not compete for
the CPU); a restart hands the spare the go and it runs the entry point with ``sys.argv`` set to
the command, as the command's script would.  The configuration files are read at that moment,
as by a fresh process; code changed since the spare started needs a stop and start.

How the leftovers are found: the supervisor is a *child subreaper*
(``prctl(PR_SET_CHILD_SUBREAPER)``), so the kernel re-parents every orphaned descendant of the
hub to it rather than to init, whatever sessions, process groups, ``sudo`` or set-uid programs
lie in between; after the hub's death its leftovers are exactly the supervisor's descendants.
This is the cgroup of a systemd unit, in one process.  ``PR_SET_PDEATHSIG`` in the services'
commands would not do: the signal reaches a direct child only (the gateway's proxy, a child of
the gateway, would still be orphaned), a set-uid program (``sudo``) or a change of credentials
clears it, and it fires when the *thread* that started the child ends.  The proxy of the hub is
not below the supervisor (``LocalHub`` starts it beside it), so it and users' connections live
on; servers and Dask clusters are Slurm jobs, children of ``slurmd``, never of the hub.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import importlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .process import descendants

log = logging.getLogger("continuum_federation.supervisor")

#: this module, as ``python -m`` runs it (for the warm spare)
MODULE = "continuum_federation.supervisor"
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
#: signals with which systemd counts a service's end as clean (no restart with ``on-failure``)
CLEAN_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE})
#: what the supervisor waits for with ``sigtimedwait`` (blocked, so never lost between checks)
WATCHED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def prctl(option: int, value: int) -> None:
    """Linux ``prctl(option, value)``; raises ``OSError`` when the kernel refuses."""
    if _libc().prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def describe(status: int) -> str:
    """A ``waitpid`` status in words: ``exited with status 1``, ``was killed by SIGKILL``."""
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def failed(status: int) -> bool:
    """Whether systemd's ``Restart=on-failure`` would restart a service that ended so."""
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status) not in CLEAN_SIGNALS
    return os.waitstatus_to_exitcode(status) != 0


def command_name(pid: int) -> str:
    """The program name of ``pid`` (``/proc/PID/comm``), ``?`` once it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def zombie(pid: int) -> bool:
    """Whether ``pid`` has ended and waits to be reaped (or is gone already)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return text[text.rindex(")") + 2] == "Z"


class Supervisor:
    """Runs ``argv`` until told to stop, restarting it on failures (see the module's help)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        delay: float = 1.0,
        max_delay: float = 30.0,
        stable: float = 60.0,
        burst: int = 5,
        stop_timeout: float = 15.0,
        entry: str = "",
        preload: Sequence[str] = (),
        spare_after: float = 10.0,
        pid_file: Path | None = None,
        setup: str = "",
    ) -> None:
        self.argv = list(argv)
        self.entry, self.preload, self.spare_after = entry, list(preload), spare_after
        #: ``MODULE:FUNCTION`` the spare calls before it imports ``preload`` (``--setup``)
        self.setup = setup
        self.pid_file = pid_file
        #: a process that has imported ``preload`` and waits to become the next hub
        self.spare: subprocess.Popen[bytes] | None = None
        self.delay, self.max_delay, self.stable, self.burst = delay, max_delay, stable, burst
        self.stop_timeout = stop_timeout
        self.name = Path(self.argv[0]).name
        self.parent = os.getppid()
        self.pid = os.getpid()
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.started = time.monotonic()

    def _child_setup(self) -> None:
        # runs in the child between fork and exec: it must not inherit the blocked signals, and
        # it gets SIGTERM (a clean stop of the hub and its services) if the supervisor dies
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        # a supervisor started in the background of a shell ignores SIGINT: the hub must not
        # (JupyterHub stops its services with SIGINT, then waits 10 s before SIGTERM)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != self.pid:  # the supervisor died before prctl took effect
            os._exit(1)

    def _popen(self, argv: Sequence[str], stdin: int) -> subprocess.Popen[bytes]:
        # its own process group: a signal to the supervisor's group does not reach it twice
        return subprocess.Popen(argv, stdin=stdin, preexec_fn=self._child_setup, process_group=0)

    def _start_spare(self) -> None:
        preload = [arg for module in self.preload for arg in ("--preload", module)]
        argv = [sys.executable, "-m", MODULE, "--spare", "--entry", self.entry, *preload]
        if self.setup:
            argv += ["--setup", self.setup]
        self.spare = self._popen([*argv, "--", *self.argv], subprocess.PIPE)

    def _start(self) -> None:
        """Start the hub: the warm spare given the go, else a new process."""
        how, child = "", None
        if self.entry:
            if self.spare is None:
                self._start_spare()  # a cold start, through the same path
            else:
                how = " from the warm spare"
            child, self.spare = self.spare, None
            assert child is not None and child.stdin is not None
            try:
                child.stdin.write(b"go")
                child.stdin.close()
            except BrokenPipeError:
                child, how = None, " (the warm spare had died)"
        self.child = child or self._popen(self.argv, subprocess.DEVNULL)
        log.info("started %s (pid %d)%s", self.name, self.child.pid, how)
        if self.pid_file is not None:
            temporary = self.pid_file.with_name(self.pid_file.name + ".tmp")
            temporary.write_text(f"{self.child.pid}\n")
            temporary.replace(self.pid_file)

    def _end_spare(self) -> None:
        if self.spare is not None:
            self.spare.kill()
            self.spare = None

    def _wait(self, timeout: float) -> signal.Signals | None:
        """Wait up to ``timeout`` s for a watched signal; note stop requests and a lost parent."""
        info = signal.sigtimedwait(WATCHED, timeout)
        if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self._request_stop(f"got {signal.Signals(info.si_signo).name}")
        if os.getppid() != self.parent:
            self._request_stop("its parent is gone")
        return None if info is None else signal.Signals(info.si_signo)

    def _request_stop(self, why: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        if self.child is not None and self.child.returncode is None:
            log.info("stopping %s (pid %d): %s", self.name, self.child.pid, why)
            self.child.send_signal(signal.SIGTERM)

    def _reap(self) -> int | None:
        """Reap every ended child (orphans re-parented here too); the hub's status if it ended."""
        status = None
        while True:
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if self.child is not None and pid == self.child.pid:
                self.child.returncode = os.waitstatus_to_exitcode(code)
                status = code
            elif self.spare is not None and pid == self.spare.pid:
                log.warning("the warm spare (pid %d) %s: no more spares", pid, describe(code))
                self.spare.returncode = os.waitstatus_to_exitcode(code)
                self.spare, self.spare_after = None, float("inf")
        return status

    def _wait_child(self, timeout: float | None) -> int | None:
        """Wait for the hub to end (``None``: for ever); its ``waitpid`` status, or ``None``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if (status := self._reap()) is not None:
                return status
            if self.child is not None and (code := self.child.returncode) is not None:
                # reaped by Popen itself (send_signal polls first): its wait status again
                return -code if code < 0 else code << 8
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                return None
            stopping = self.stopping
            self._wait(left)
            lived = time.monotonic() - self.started
            if self.entry and self.spare is None and not self.stopping and lived > self.spare_after:
                self._start_spare()
            if self.stopping and not stopping and deadline is None:
                deadline = time.monotonic() + self.stop_timeout  # a stop just came in

    def end_leftovers(self, timeout: float = 10.0) -> list[str]:
        """Kill (``SIGKILL``) every process left below the supervisor; ``name (pid)`` of each.

        ``SIGKILL`` as systemd's ``KillMode=mixed`` sends it to what is left of a unit: a
        service must survive being killed anyway (the hub can be), and a gentler stop could let
        the gateway stop its clusters.  Repeated until none is left, as killing a parent
        re-parents its children here.
        """
        ended: dict[int, str] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spare = self.spare.pid if self.spare is not None else None
            left = [p for p in descendants(os.getpid()) if p != spare and not zombie(p)]
            if not left:
                self._reap()
                return [f"{name} ({pid})" for pid, name in ended.items()]
            for pid in left:
                ended.setdefault(pid, command_name(pid))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._reap()
            signal.sigtimedwait({signal.SIGCHLD}, 0.1)
            self._reap()
        log.warning("processes still alive after %.0f s: %s", timeout, descendants(os.getpid()))
        return [f"{name} ({pid})" for pid, name in ended.items()]

    def run(self) -> int:
        """Supervise until stopped; the exit status (0, or 1 after giving up)."""
        self.pid = os.getpid()
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # queued, never discarded
        signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
        try:
            return self._supervise()
        finally:
            self._end_spare()
            self._reap()
            if self.pid_file is not None:
                self.pid_file.unlink(missing_ok=True)

    def _supervise(self) -> int:
        quick_failures = 0
        while not self.stopping:
            self.started = time.monotonic()
            self._start()
            status = self._wait_child(None)
            if status is None:  # did not stop in time after SIGTERM
                assert self.child is not None
                log.warning("%s did not stop in %.0f s: killing it", self.name, self.stop_timeout)
                self.child.kill()
                status = self._wait_child(5.0)
                if status is None:  # not even reaped: report it as killed
                    status = int(signal.SIGKILL)
            lived = time.monotonic() - self.started
            if self.stopping or not failed(status):
                self._end_spare()
            ended = self.end_leftovers()
            assert self.child is not None
            what = f"{self.name} (pid {self.child.pid}) {describe(status)} after {lived:.1f} s"
            killed = f"; killed {len(ended)} processes it left: {', '.join(ended)}" if ended else ""
            if self.stopping:
                log.info("%s%s; stopped", what, killed)
                return 0
            if not failed(status):
                log.info("%s%s; a clean end: not restarted", what, killed)
                return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 0
            quick_failures = quick_failures + 1 if lived < self.stable else 1
            if quick_failures > self.burst:
                log.error("%s%s; %d quick failures in a row: giving up", what, killed, self.burst)
                return 1
            delay = min(self.max_delay, self.delay * 2 ** (quick_failures - 1))
            log.warning("%s%s; restarting it in %.1f s", what, killed, delay)
            deadline = time.monotonic() + delay
            while not self.stopping and (left := deadline - time.monotonic()) > 0:
                self._wait(left)
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module's help)."""
    parser = argparse.ArgumentParser(
        prog="python -m continuum_federation.supervisor",
        description="Run COMMAND (the hub); restart it on failures, killing what it left.",
    )
    parser.add_argument("--delay", type=float, default=1.0, help="first back-off, s (1)")
    parser.add_argument("--max-delay", type=float, default=30.0, help="longest back-off, s (30)")
    parser.add_argument(
        "--stable", type=float, default=60.0, help="a run this long resets the back-off, s (60)"
    )
    parser.add_argument(
        "--burst", type=int, default=5, help="quick failures in a row before giving up (5)"
    )
    parser.add_argument(
        "--stop-timeout", type=float, default=15.0, help="wait for a clean stop, s (15)"
    )
    parser.add_argument(
        "--entry", default="", help="MODULE:FUNCTION the command's script runs: keep a warm spare"
    )
    parser.add_argument(
        "--preload", action="append", default=[], help="a module the warm spare imports"
    )
    parser.add_argument(
        "--setup", default="", help="MODULE:FUNCTION the warm spare calls before its preloads"
    )
    parser.add_argument(
        "--spare-after", type=float, default=10.0, help="start the spare after this many s (10)"
    )
    parser.add_argument("--pid-file", type=Path, help="a file holding the command's pid")
    parser.add_argument("--spare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs="+", help="the program and its arguments, after --")
    args = parser.parse_args(argv)
    if args.spare:
        return run_spare(args.entry, args.preload, args.command, args.setup)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="[%(levelname).1s %(asctime)s.%(msecs)03d supervisor] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    supervisor = Supervisor(
        args.command,
        delay=args.delay,
        max_delay=args.max_delay,
        stable=args.stable,
        burst=args.burst,
        stop_timeout=args.stop_timeout,
        entry=args.entry,
        preload=args.preload,
        setup=args.setup,
        spare_after=args.spare_after,
        pid_file=args.pid_file,
    )
    return supervisor.run()


def run_spare(entry: str, preload: Sequence[str], command: Sequence[str], setup: str = "") -> int:
    """The warm spare: call ``setup`` (``MODULE:FUNCTION``, if any), import ``preload``, wait for
    the go on stdin, then run ``entry`` as the command's script would (``sys.argv`` = the
    command).  An end of input (no go): exit 0."""
    if setup:
        module, _, function = setup.partition(":")
        getattr(importlib.import_module(module), function)()
    for module in preload:
        importlib.import_module(module)
    if sys.stdin.buffer.read(2) != b"go":
        return 0
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.argv = list(command)
    module, _, function = entry.partition(":")
    result = getattr(importlib.import_module(module), function)()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
