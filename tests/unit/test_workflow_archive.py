"""A run folder's download: ``continuum-workflow-run archive FOLDER`` and its service end.

The archive holds the folder's results below one top folder, never a credential (the run's
tokens, their temporary files, keys) at any depth; a symbolic link staying inside is kept as a
link, one leaving the folder refuses the archive before a byte is written.  The service's end
streams the same command's bytes through the transport's own argument list.
"""

import asyncio
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from continuum_hub.workflows import archive
from continuum_hub.workflows.executor import SiteExecutor
from continuum_hub.workflows.runfolder import RunFolderRefused, prepare, read_bundle
from continuum_spawners.schedulers.transport import LocalTransport, current_user
from fixtures.workflow_runs import TOKEN, make_plan

pytestmark = pytest.mark.workflows

RUNNER = Path(sys.executable).with_name("continuum-workflow-run")


@pytest.fixture
def folder(tmp_path) -> Path:
    """A finished sweep's folder with results, the run's tokens and stray credentials."""
    plan = make_plan(parameters=[{"n": 1}, {"n": 2}])
    folder = tmp_path / "runs" / "r-0123456789ab"
    prepare(str(folder), read_bundle(io.BytesIO(SiteExecutor().bundle(plan).encode())))
    (folder / ".bearer-token").write_text("access-token\n")
    (folder / "..bearer-token.x1.tmp").write_text("half a token\n")
    (folder / "slurm-12_0.out").write_text("hello\n")
    member = folder / "members" / "0"
    (member / "output.ipynb").write_text("{}")
    (member / "results").mkdir()
    (member / "results" / "table.csv").write_text("a,b\n1,2\n")
    (member / "results" / "x509up_u1000").write_text("proxy")
    (member / "results" / "client.pem").write_text("key")
    (member / "latest.csv").symlink_to("results/table.csv")
    return folder


def names(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {member.name: member for member in tar.getmembers()}


def test_archive_holds_results_and_no_credential(folder):
    out = io.BytesIO()
    count = archive.archive(str(folder), out)
    members = names(out.getvalue())
    assert count == len(members)
    top = "r-0123456789ab"
    for rel in ("run.json", "slurm-12_0.out", "members/0/output.ipynb", "members/1/parameters.json",
                "members/0/results/table.csv"):  # fmt: skip
        assert f"{top}/{rel}" in members, rel
    assert not [name for name in members if "token" in name or "x509" in name or "pem" in name]
    assert TOKEN.encode() not in out.getvalue()
    link = members[f"{top}/members/0/latest.csv"]
    assert link.issym() and link.linkname == "results/table.csv"
    assert all(m.uid == 0 and m.uname == "" for m in members.values())
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()), mode="r:gz") as tar:
        data = tar.extractfile(f"{top}/members/0/results/table.csv")
        assert data is not None and data.read() == b"a,b\n1,2\n"


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../secret", "../x/../../../../r-2/x"])
def test_a_link_leaving_the_folder_refuses_the_archive(folder, target):
    (folder / "members" / "1" / "escape").symlink_to(target)
    out = io.BytesIO()
    with pytest.raises(RunFolderRefused, match="outside the run folder"):
        archive.archive(str(folder), out)
    assert out.getvalue() == b""


def test_a_linked_run_folder_is_refused(folder, tmp_path):
    (tmp_path / "linked").symlink_to(folder)
    with pytest.raises(RunFolderRefused, match="symbolic link"):
        archive.archive(str(tmp_path / "linked"), io.BytesIO())


def test_command_line_prints_the_archive_or_refuses(folder):
    result = subprocess.run([str(RUNNER), "archive", str(folder)], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "r-0123456789ab/run.json" in names(result.stdout)
    (folder / "out").symlink_to("/")
    result = subprocess.run([str(RUNNER), "archive", str(folder)], capture_output=True, timeout=60)
    assert result.returncode == 3 and result.stdout == b""
    assert b"outside the run folder" in result.stderr


def test_the_service_streams_the_commands_bytes(folder):
    """:func:`archive.stream_command` through a real (local) transport: bytes unchanged,
    a refusal raised with the command's last line."""

    async def collect(argv):
        return b"".join(
            [c async for c in archive.stream_command(LocalTransport(), argv, current_user(), 30)]
        )

    data = asyncio.run(collect([str(RUNNER), "archive", str(folder)]))
    assert "r-0123456789ab/members/0/results/table.csv" in names(data)
    os.symlink("/", folder / "out")
    with pytest.raises(RuntimeError, match="outside the run folder"):
        asyncio.run(collect([str(RUNNER), "archive", str(folder)]))
