"""The hub's supervisor (``continuum_federation.supervisor``) on a stand-in for the hub.

The stand-in is a shell script that leaves processes behind the way JupyterHub's managed
services are left: one in a session of its own (``setsid``), one whose parent has already gone
(a double fork).  Real processes, real signals; every wait polls with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

FEDERATION = Path(__file__).resolve().parents[2] / "images" / "federation"
STAND_IN = """\
setsid sleep 3001 &
echo $! >> {pids}
( setsid sleep 3002 & echo $! >> {pids} )
echo "stand-in $$ up"
{end}
"""


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"


class Run:
    """A supervisor running the stand-in (its output in ``log``)."""

    def __init__(self, folder: Path, end: str, *options: str) -> None:
        self.pids = folder / "pids"
        self.log = folder / "supervisor.log"
        script = folder / "stand-in.sh"
        script.write_text(STAND_IN.format(pids=self.pids, end=end))
        argv = [sys.executable, "-m", "continuum_federation.supervisor", *options]
        env = {**os.environ, "PYTHONPATH": str(FEDERATION)}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*argv, "--", "bash", str(script)], stdout=out, stderr=subprocess.STDOUT, env=env
            )

    def text(self) -> str:
        return self.log.read_text()

    def left_behind(self) -> list[int]:
        """Pids of the stand-ins' leftovers so far (``setsid sleep``)."""
        if not self.pids.exists():
            return []
        return [int(p) for p in self.pids.read_text().split()]

    def stand_ins(self) -> list[int]:
        return [int(line.split()[1]) for line in self.text().splitlines() if "stand-in" in line]

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pid in self.left_behind():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    made: list[Run] = []

    def make(end: str, *options: str) -> Run:
        folder = tmp_path / str(len(made))
        folder.mkdir()
        made.append(Run(folder, end, *options))
        return made[-1]

    yield make
    for run in made:
        run.end()


def test_a_killed_hub_is_restarted_and_its_leftovers_killed(runs: Callable[..., Run]) -> None:
    run = runs("exec sleep 1000", "--delay", "0.2")
    wait_for(lambda: len(run.left_behind()) == 2 and run.stand_ins(), "the stand-in up")
    first, orphans = run.stand_ins()[0], run.left_behind()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: len(run.stand_ins()) == 2, "the stand-in started again")
    assert not [pid for pid in orphans if alive(pid)], "the dead stand-in's processes lived on"
    line = next(line for line in run.text().splitlines() if "SIGKILL" in line)
    assert f"(pid {first}) was killed by SIGKILL after" in line
    assert "killed 2 processes it left: sleep (" in line and "restarting it in 0.2 s" in line
    # a stop: the stand-in gets SIGTERM, what it left is killed, the supervisor exits 0
    wait_for(lambda: len(run.left_behind()) == 4, "the second stand-in's processes")
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(20) == 0
    assert not [pid for pid in run.left_behind() if alive(pid)]
    assert not alive(run.stand_ins()[1])
    assert "was killed by SIGTERM" in run.text() and "; stopped" in run.text()


def test_a_clean_end_is_not_restarted(runs: Callable[..., Run]) -> None:
    run = runs("exit 0", "--delay", "0.2")
    assert run.proc.wait(20) == 0
    assert len(run.stand_ins()) == 1
    assert "exited with status 0" in run.text() and "a clean end: not restarted" in run.text()
    assert not [pid for pid in run.left_behind() if alive(pid)]


def test_quick_failures_back_off_then_give_up(runs: Callable[..., Run]) -> None:
    run = runs("exit 3", "--delay", "0.2", "--burst", "2")
    assert run.proc.wait(20) == 1
    assert len(run.stand_ins()) == 3
    text = run.text()
    assert "restarting it in 0.2 s" in text and "restarting it in 0.4 s" in text
    assert "2 quick failures in a row: giving up" in text
    assert not [pid for pid in run.left_behind() if alive(pid)]


def test_the_hub_stops_when_its_supervisor_is_killed(runs: Callable[..., Run]) -> None:
    run = runs("exec sleep 1000")
    wait_for(run.stand_ins, "the stand-in up")
    os.kill(run.proc.pid, signal.SIGKILL)
    stand_in = run.stand_ins()[0]
    wait_for(lambda: not alive(stand_in), "the stand-in gone (PR_SET_PDEATHSIG)")


STAND_IN_MODULE = """\
import os, subprocess, sys, time

IMPORTED_AT = time.time()
SET_UP = os.environ.get("STANDIN_SET_UP", "no")  # --setup ran before this import
with open(os.environ["STANDIN_IMPORTS"], "a") as marks:  # the test waits for the spare's
    print(os.getpid(), file=marks)


def main():
    leftover = subprocess.Popen(["setsid", "sleep", "3003"])
    print(f"stand-in {os.getpid()} up imported={IMPORTED_AT} set_up={SET_UP} argv={sys.argv} "
          f"leftover={leftover.pid}", flush=True)
    time.sleep(1000)
"""


def fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def test_a_warm_spare_takes_over(tmp_path: Path) -> None:
    (tmp_path / "standin_hub.py").write_text(STAND_IN_MODULE)
    (tmp_path / "standin_setup.py").write_text(
        "import os\n\ndef mark():\n    os.environ['STANDIN_SET_UP'] = 'yes'\n"
    )
    log, pid_file = tmp_path / "supervisor.log", tmp_path / "hub.pid"
    argv = [sys.executable, "-m", "continuum_federation.supervisor", "--delay", "0.2"]
    argv += ["--entry", "standin_hub:main", "--preload", "standin_hub", "--spare-after", "0.2"]
    argv += ["--setup", "standin_setup:mark"]
    argv += ["--pid-file", str(pid_file), "--", "standin", "--flag"]
    imports = tmp_path / "imports"
    env = {
        **os.environ,
        "PYTHONPATH": f"{FEDERATION}:{tmp_path}",
        "STANDIN_IMPORTS": str(imports),
    }

    def up() -> list[dict[str, str]]:
        return [fields(line) for line in log.read_text().splitlines() if " up " in line]

    def spares() -> list[int]:
        """The waiting spares (the hub itself was started as one: its pid is in the file)."""
        hub = int(pid_file.read_text()) if pid_file.exists() else None
        found = []
        for entry in Path("/proc").iterdir():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--spare" in cmdline and str(tmp_path).encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        return [pid for pid in found if alive(pid) and pid != hub]

    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(up, "the stand-in up")
        first = int(pid_file.read_text())
        assert up()[0]["argv"] == "['standin',"  # sys.argv is the command
        assert up()[0]["set_up"] == "yes"  # --setup, before the preloads
        wait_for(spares, "the warm spare")
        spare = spares()[0]
        wait_for(lambda: str(spare) in imports.read_text().split(), "the spare's preload")
        killed = time.time()
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(up()) == 2, "the spare taking over")
        second = up()[1]
        assert float(second["imported"]) < killed  # imported before it was needed
        assert int(pid_file.read_text()) != first
        assert not alive(int(up()[0]["leftover"]))
        assert (
            "started standin (pid" in log.read_text() and "from the warm spare" in log.read_text()
        )
        wait_for(lambda: len(spares()) == 1, "a new spare")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert not spares() and not pid_file.exists()
        assert not alive(int(second["leftover"]))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_the_demo_repeats_the_supervisors_new_lines(tmp_path: Path) -> None:
    from continuum_federation.cli import SupervisorLines

    log = tmp_path / "jupyterhub.log"
    log.write_text("[I 08:00:00.000 supervisor] started jupyterhub (pid 1)\n")
    lines = SupervisorLines(log)  # what was there before the demo printed its banner is not
    with log.open("a") as out:
        out.write("[I 08:00:01.000 JupyterHub app:1] a hub line\n")
        out.write("[W 08:00:02.000 supervisor] jupyterhub (pid 1) was killed by SIGKILL\n")
        out.write("[I 08:00:03.000 supervisor] started jupyter")  # still being written
    assert lines.new_lines() == [
        "[W 08:00:02.000 supervisor] jupyterhub (pid 1) was killed by SIGKILL"
    ]
    with log.open("a") as out:
        out.write("hub (pid 2)\n")
    assert lines.new_lines() == ["[I 08:00:03.000 supervisor] started jupyterhub (pid 2)"]
    assert lines.new_lines() == []
