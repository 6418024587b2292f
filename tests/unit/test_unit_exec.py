"""``fixtures.unit_exec``: systemd unit files read and started as systemd would start them."""

from __future__ import annotations

import pwd
import time
from pathlib import Path

import pytest

from fixtures.unit_exec import (
    descendants,
    parse_unit,
    read_environment_file,
    start_unit,
    stop,
    unit_environment,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_parse_unit_keeps_order_repeats_and_continuations(tmp_path: Path) -> None:
    unit = parse_unit(
        write(
            tmp_path / "x.service",
            "# comment\n[Unit]\nDescription=x\n\n[Service]\n; other comment\n"
            "Environment=A=1\nEnvironment=B=2\nExecStart=/bin/echo one \\\n  two\n"
            "Restart=no\nRestart=on-failure\n",
        )
    )
    assert unit.values("Service", "Environment") == ["A=1", "B=2"]
    assert unit.get("Service", "ExecStart") == "/bin/echo one  two"
    assert unit.get("Service", "Restart") == "on-failure"
    assert unit.get("Unit", "Description") == "x"
    assert unit.get("Install", "WantedBy") is None


def test_parse_unit_refuses_lines_outside_sections(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a unit file line"):
        parse_unit(write(tmp_path / "x.service", "ExecStart=/bin/true\n"))


def test_environment_files_win_over_environment(tmp_path: Path) -> None:
    env_file = write(tmp_path / "env", '# secret\nA=from-file\nQ="quoted value"\n\n')
    assert read_environment_file(env_file) == {"A": "from-file", "Q": "quoted value"}
    unit = parse_unit(
        write(
            tmp_path / "x.service",
            f'[Service]\nEnvironment=A=inline "B=two words"\nEnvironmentFile={env_file}\n'
            f"EnvironmentFile=-{tmp_path / 'missing'}\nExecStart=/bin/true\n",
        )
    )
    env = unit_environment(unit)
    assert env["A"] == "from-file" and env["B"] == "two words" and env["Q"] == "quoted value"
    assert "/usr/bin" in env["PATH"]


def test_start_unit_as_its_user_in_its_folder_with_its_log(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir(mode=0o777)
    work.chmod(0o777)
    log = tmp_path / "out.log"
    log.write_text("earlier\n")
    env_file = write(tmp_path / "env", "GREETING=hello\n")
    unit = write(
        tmp_path / "x.service",
        "[Service]\nUser=nobody\n"
        f"EnvironmentFile={env_file}\nWorkingDirectory={work}\n"
        "ExecStart=/bin/sh -c 'echo $GREETING $(id -un) $(pwd); echo oops >&2'\n"
        f"StandardOutput=append:{log}\nStandardError=inherit\n",
    )
    process = start_unit(unit)
    assert process.wait(20) == 0
    lines = log.read_text().splitlines()
    assert lines == ["earlier", f"hello nobody {work}", "oops"]


@pytest.mark.parametrize(
    "line",
    ["ExecStartPre=/bin/true", "DynamicUser=yes", "StandardError=journal"],
    ids=["exec-start-pre", "dynamic-user", "stderr-journal"],
)
def test_start_unit_refuses_what_it_does_not_implement(tmp_path: Path, line: str) -> None:
    unit = write(tmp_path / "x.service", f"[Service]\nExecStart=/bin/true\n{line}\n")
    with pytest.raises(ValueError, match="not implement"):
        start_unit(unit)


def test_stop_ends_children_in_other_sessions(tmp_path: Path) -> None:
    # a child that leaves the process group, as the hub's managed services do
    pid_file = tmp_path / "child.pid"
    unit = write(
        tmp_path / "x.service",
        "[Service]\nExecStart=/bin/sh -c "
        f"'setsid sleep 300 & echo $! > {pid_file}; exec sleep 300'\n",
    )
    process = start_unit(unit)
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the unit never started its child"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert child in descendants(process.pid)
    stop(process)
    assert process.returncode is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{child}").exists():
        # a killed child is a zombie of init until reaped: its state says so
        state = Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()[0]
        if state == "Z":
            break
        time.sleep(0.05)
    else:
        assert not Path(f"/proc/{child}").exists()


def test_unit_environment_is_not_the_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTINUUM_CALLER_ONLY", "1")
    unit = parse_unit(write(tmp_path / "x.service", "[Service]\nUser=nobody\nExecStart=/x\n"))
    env = unit_environment(unit)
    assert env["USER"] == env["LOGNAME"] == "nobody"
    assert env["HOME"] == pwd.getpwnam("nobody").pw_dir
    assert "CONTINUUM_CALLER_ONLY" not in env
