"""Workshop material pulled into a home (issue 13, item 4): the merge rule on real files, a real
git repository (a bare one on disk, through the test-only ``allow_file``), the URL checks, and
the hub's versions and plan."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from continuum_hub.workshops.material_api import MaterialVersions, folder_name, material_plan
from continuum_hub.workshops.material_pull import (
    MANIFEST,
    MaterialError,
    beside_name,
    check_git_url,
    git_checkout,
    pull_all,
    pull_event,
    sync_tree,
)
from continuum_hub.workshops.model import Event
from continuum_hub.workshops.store import EventStore
from fixtures.workshops import running_event

pytestmark = pytest.mark.workshops


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_beside_names():
    assert beside_name("intro.ipynb") == "intro.upstream.ipynb"
    assert beside_name("day1/data.tar.gz") == "day1/data.tar.upstream.gz"
    assert beside_name("Makefile") == "Makefile.upstream"
    assert beside_name(".env") == ".env.upstream"


def test_merge_rule(tmp_path):
    upstream, home = tmp_path / "upstream", tmp_path / "home"
    write(upstream, {"a.ipynb": "a1", "b.ipynb": "b1", "sub/c.py": "c1", "d.txt": "d1"})
    (upstream / "link").symlink_to("/etc/passwd")
    first = sync_tree(upstream, home)
    assert sorted(first.added) == ["a.ipynb", "b.ipynb", "d.txt", "sub/c.py"]
    assert not (home / "link").exists()
    assert sync_tree(upstream, home).summary().startswith("0 added, 0 updated, 0 kept")

    # the participant edits a and c, deletes d, makes their own e; upstream changes a, b, adds
    # new and e, leaves c alone
    write(home, {"a.ipynb": "a-mine", "sub/c.py": "c-mine", "e.ipynb": "e-mine"})
    (home / "d.txt").unlink()
    write(upstream, {"a.ipynb": "a2", "b.ipynb": "b2", "new.ipynb": "n1", "e.ipynb": "e1"})
    report = sync_tree(upstream, home)
    assert (home / "a.ipynb").read_text() == "a-mine"
    assert (home / "a.upstream.ipynb").read_text() == "a2"
    assert (home / "b.ipynb").read_text() == "b2"
    assert (home / "sub/c.py").read_text() == "c-mine"
    assert not (home / "sub/c.upstream.py").exists()  # upstream did not change c
    assert (home / "new.ipynb").read_text() == "n1"
    assert (home / "d.txt").read_text() == "d1"  # deleted files come back fresh
    assert (home / "e.ipynb").read_text() == "e-mine"
    assert (home / "e.upstream.ipynb").read_text() == "e1"
    assert sorted(report.updated) == ["b.ipynb"]
    assert sorted(report.beside) == ["a.upstream.ipynb", "e.upstream.ipynb"]

    # idempotent: nothing happens again, the beside copies are not rewritten
    (home / "a.upstream.ipynb").write_text("looked at it")
    again = sync_tree(upstream, home)
    assert (again.added, again.updated, again.beside) == ([], [], [])
    assert (home / "a.upstream.ipynb").read_text() == "looked at it"
    # upstream moves again: the copy beside follows, the edit still stays
    write(upstream, {"a.ipynb": "a3"})
    sync_tree(upstream, home)
    assert (home / "a.ipynb").read_text() == "a-mine"
    assert (home / "a.upstream.ipynb").read_text() == "a3"
    # removed upstream: stays in the home
    (upstream / "b.ipynb").unlink()
    sync_tree(upstream, home)
    assert (home / "b.ipynb").read_text() == "b2"
    assert "b.ipynb" not in json.loads((home / MANIFEST).read_text())["files"]


def test_lost_manifest_never_overwrites(tmp_path):
    upstream, home = tmp_path / "upstream", tmp_path / "home"
    write(upstream, {"a.ipynb": "a1"})
    write(home, {"a.ipynb": "mine"})
    sync_tree(upstream, home)
    assert (home / "a.ipynb").read_text() == "mine"
    (home / MANIFEST).write_text("garbage")
    write(upstream, {"a.ipynb": "a2"})
    sync_tree(upstream, home)
    assert (home / "a.ipynb").read_text() == "mine"
    assert (home / "a.upstream.ipynb").read_text() == "a2"


def git(*argv: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *argv], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def origin(tmp_path) -> tuple[Path, Path]:
    """A bare repository and a working clone that commits to it."""
    bare, work = tmp_path / "origin.git", tmp_path / "work"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git("clone", "--quiet", str(bare), str(work))
    for key, value in (("user.name", "Instructor"), ("user.email", "i@example.org")):
        git("config", key, value, cwd=work)
    return bare, work


def commit(work: Path, files: dict[str, str]) -> None:
    write(work, files)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "material", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)


def test_git_pull_clones_then_merges(origin, tmp_path):
    bare, work = origin
    commit(work, {"intro.ipynb": "v1", "data/x.csv": "1,2"})
    home = tmp_path / "home"
    entry = {
        "id": "0123456789ab",
        "folder": "Intro",
        "material": {"git": bare.as_uri(), "ref": "main"},
        "version": 0,
    }
    with pytest.raises(MaterialError, match="https only"):
        pull_event(entry, home)  # file:// only with the test-only switch
    pull_event(entry, home, allow_file=True)
    assert (home / "Intro/intro.ipynb").read_text() == "v1"
    assert not (home / "Intro/.git").exists()
    (home / "Intro/intro.ipynb").write_text("my answers")
    commit(work, {"intro.ipynb": "v2", "day2.ipynb": "new"})
    report = pull_event(entry, home, allow_file=True)
    assert report.added == ["day2.ipynb"]
    assert (home / "Intro/intro.ipynb").read_text() == "my answers"
    assert (home / "Intro/intro.upstream.ipynb").read_text() == "v2"
    assert (
        report.summary()
        == "1 added, 0 updated, 1 kept with your changes (1 upstream copies beside)"
    )
    with pytest.raises(MaterialError, match="git failed"):
        git_checkout(bare.as_uri(), "no-such-branch", tmp_path / "cache", allow_file=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://github.com/a/b",
        "file:///etc",
        "ssh://git@github.com/a/b",
        "https://127.0.0.1/a",
        "https://localhost/a",
        "https://[::ffff:10.0.0.1]/a",
        "https://2130706433/a",
    ],
)
def test_git_urls_refused(url):
    with pytest.raises(MaterialError):
        check_git_url(url)


def test_odd_entries_and_errors_are_not_fatal(tmp_path, capsys):
    with pytest.raises(MaterialError, match="odd"):
        pull_event({"id": "../x", "folder": "a", "material": {"folder": "/"}}, tmp_path)
    with pytest.raises(MaterialError, match="odd"):
        pull_event({"id": "0123456789ab", "folder": "../x", "material": {}}, tmp_path)
    source = tmp_path / "src"
    write(source, {"a.txt": "a"})
    seen: dict[str, object] = {}
    plan = {
        "events": [
            {"id": "0123456789ab", "folder": "F", "material": {"folder": "/nonexistent"}},
            {
                "id": "ba9876543210",
                "folder": "G",
                "material": {"folder": str(source)},
                "version": 3,
            },
        ]
    }
    pull_all(plan, tmp_path / "home", seen)
    assert seen == {"ba9876543210": 3}
    assert (tmp_path / "home/G/a.txt").read_text() == "a"
    assert "not a folder here" in capsys.readouterr().err
    (tmp_path / "home/G/a.txt").unlink()
    pull_all(plan, tmp_path / "home", seen)  # same version: not pulled again
    assert not (tmp_path / "home/G/a.txt").exists()


def event(**changes: object) -> Event:
    return running_event(
        **{
            "title": "Intro to Dask: day 1!",
            "material": {"folder": "/srv/material/dask"},
            **changes,
        }
    )


def test_versions_and_plan(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path / 'events.sqlite'}")
    ev = event()
    store.add(ev)
    store.add(event(id="ba9876543210", material=None))
    for event_id in (ev.id, "ba9876543210"):
        store.add_participant(event_id, "pia")
    assert folder_name(ev) == "Intro-to-Dask-day-1"
    assert folder_name(event(title="???")) == "event-0123456789ab"
    plan = material_plan(store, "pia", 5.0)
    assert plan == {
        "interval": 5.0,
        "events": [
            {"id": ev.id, "folder": "Intro-to-Dask-day-1", "material": ev.material, "version": 0}
        ],
    }
    versions = MaterialVersions(store)
    assert [versions.push(ev.id), versions.push(ev.id)] == [1, 2]
    assert material_plan(store, "pia", 5.0)["events"][0]["version"] == 2
    assert material_plan(store, "someone", 5.0)["events"] == []


@pytest.fixture
def fake_hub():
    """A real HTTP server answering ``/continuum/events/material`` with ``plan`` (a stand-in
    for the hub at the boundary; the hub's side is tested in the integration test)."""
    import http.server
    import threading

    state: dict[str, object] = {"plan": {"events": []}, "tokens": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the stdlib names it
            state["tokens"].append(self.headers.get("Authorization"))  # type: ignore[union-attr]
            found = self.path == "/hub/api/continuum/events/material"
            body = json.dumps(state["plan"]).encode()
            self.send_response(200 if found else 404)
            self.end_headers()
            self.wfile.write(body if found else b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/hub/api"
    yield state
    server.shutdown()


def test_command_pulls_then_runs_the_server_and_watches(fake_hub, tmp_path):
    """The real command as the job runs it: pull, start the watcher, exec the 'server' (which
    here waits for the pushed file and exits)."""
    folder = f"continuum-test-{secrets.token_hex(4)}"
    home = Path(pwd.getpwuid(os.getuid()).pw_dir) / folder
    source = tmp_path / "material"
    write(source, {"intro.ipynb": "v1"})
    entry = {"id": "0123456789ab", "folder": folder, "material": {"folder": str(source)}}
    fake_hub["plan"] = {"interval": 1, "events": [{**entry, "version": 0}]}
    waits = (
        "import pathlib, time\n"
        f"path = pathlib.Path({str(home / 'day2.ipynb')!r})\n"
        "deadline = time.monotonic() + 30\n"
        "while not path.exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.1)\n"
        "print('server saw', path.exists())\n"
    )
    env = {**os.environ, "JUPYTERHUB_API_URL": fake_hub["url"], "JUPYTERHUB_API_TOKEN": "t0k"}
    module = "continuum_hub.workshops.material_pull"
    server = subprocess.Popen(
        [sys.executable, "-m", module, "--", sys.executable, "-c", waits],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (home / "intro.ipynb").exists():
            assert time.monotonic() < deadline, "first pull did not happen"
            time.sleep(0.05)
        (home / "intro.ipynb").write_text("mine")
        write(source, {"intro.ipynb": "v2", "day2.ipynb": "new"})
        fake_hub["plan"] = {"interval": 1, "events": [{**entry, "version": 1}]}
        out, err = server.communicate(timeout=40)
        assert "server saw True" in out, err
        assert (home / "intro.ipynb").read_text() == "mine"
        assert "into ~/" + folder in err
        assert set(fake_hub["tokens"]) == {"token t0k"}
    finally:
        server.kill()
        shutil.rmtree(home, ignore_errors=True)


def test_launcher_runs_the_server_behind_the_pull():
    from continuum_spawners.launcher import material_command

    command = material_command(["jupyterhub-singleuser", "--debug"])
    assert command == [
        sys.executable,
        "-m",
        "continuum_hub.workshops.material_pull",
        "--",
        "jupyterhub-singleuser",
        "--debug",
    ]
