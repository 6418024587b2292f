"""The workflow service's database: runs with members and attempts, workflows, credentials.

Round trips through a real SQLite file, a second ``Store`` on the same file (a restarted
service), the file's mode, and what the REST API's views leave out.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from continuum_hub.workflows.store import Store, public_credential, public_run

pytestmark = pytest.mark.workflows


def a_run(run_id: str, created: str, owner: str = "alice") -> dict:
    return {
        "id": run_id,
        "owner": owner,
        "name": "analysis.ipynb",
        "state": "pending",
        "site": "alpha",
        "account": "alice",
        "snapshot": "ab" * 32,
        "created": created,
        "spec": {"parameters": {"label": "x"}, "sweep": None, "depends_on": []},
        "members": [
            {"index": 0, "parameters": {"label": "x"}},
            {"index": 1, "parameters": {"label": "y"}},
        ],
    }


def test_runs_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "workflows.sqlite"
    store = Store(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.add_run(a_run("r-000000000001", "2026-01-01T00:00:00Z"))
    store.add_run(a_run("r-000000000002", "2026-01-02T00:00:00Z", owner="bob"))
    number = store.add_attempt("r-000000000001", {"site": "alpha", "state": "submitting"})
    store.update_attempt("r-000000000001", number, job_id="17", state="queued")
    store.update_run("r-000000000001", state="submitting", job_id="17")
    store.update_member("r-000000000001", 1, state="running", cell=2, cells=5, node="n1")
    with pytest.raises(KeyError):
        store.update_run("r-000000000001", parameters={})

    again = Store(f"sqlite:///{path}")  # the service started again
    run = again.run("r-000000000001")
    assert run["state"] == "submitting" and run["job_id"] == "17"
    assert run["parameters"] == {"label": "x"} and run["depends_on"] == []
    assert [m["index"] for m in run["members"]] == [0, 1]
    assert run["members"][1] | {"state": "running", "cell": 2, "node": "n1"} == run["members"][1]
    assert run["attempts"] == [
        {
            "number": 1,
            "site": "alpha",
            "job_id": "17",
            "state": "queued",
            "reason": "",
            "submitted": None,
            "ended": None,
        }
    ]
    assert [r["id"] for r in again.runs()] == ["r-000000000002", "r-000000000001"]
    assert [r["id"] for r in again.runs(owner="alice")] == ["r-000000000001"]
    assert [r["id"] for r in again.runs(states=("submitting",))] == ["r-000000000001"]
    shown = public_run(run)
    assert shown["state"] == "pending"  # submitting is the service's own business
    assert "account" not in shown and "snapshot" not in shown
    assert again.run("r-999999999999") is None


def test_credentials_never_show_their_token(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'w.sqlite'}")
    store.add_credential(
        {
            "id": "c-000000000001",
            "owner": "alice",
            "run_id": "r-000000000001",
            "hub_token_id": "42",
            "token": "secret-run-token",
            "created": "2026-01-01T00:00:00Z",
            "expires": "2026-01-08T00:00:00Z",
            "revoked": False,
        }
    )
    (found,) = store.credentials("alice")
    assert found["token"] == "secret-run-token"
    shown = public_credential(found)
    assert "secret-run-token" not in str(shown) and "hub_token_id" not in shown
    assert shown["expires"] == "2026-01-08T00:00:00Z" and shown["revoked"] is False
    store.update_credential("c-000000000001", revoked=True, token=None)
    assert store.credential("c-000000000001")["token"] is None
    assert store.credentials("bob") == []
