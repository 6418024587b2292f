"""Unattended tokens of a batch run: ten minutes of 60-second tokens with nobody signed in.

Issue 10's token test, on the hub whose provider issues 60-second access tokens
(``fixtures.tokens``: ``short_idp``, ``token_hub`` on its own site ``gamma``, shared with
``test_living_tokens``).  Tess (``RUNNER``, a user no other test signs in) signs in, makes a
token for the ``workflows`` service, submits one run and signs out; she has no server.  The
run's notebook reads ``$BEARER_TOKEN_FILE`` every minute for ten minutes and calls the
provider's userinfo with it, recording each call's status and a digest of the token (never the
token) in ``calls.json``; the job's ``continuum-token-agent`` keeps the file fresh with the
run's own hub credential.  Then she revokes that credential through the REST API: the agent's
next refresh fails, the notebook's next calls are refused once the last token expires, and the
run shows ``credential revoked``.  About eleven and a half minutes.

Those minutes overlap the rest of the session: the kick-off test (``run_first``, see
``tests/conftest.py``) submits the run and leaves a daemon thread to wait for the minutes,
revoke the credential and wait for the refusal and the run's end; the last test
(``run_last``) joins that thread, re-raises what failed in it and checks the run folder.
Selected alone, the last test starts the scenario itself and simply waits.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from continuum_federation.hub import LocalHub
from continuum_federation.idp import OpenIDProvider
from continuum_federation.slurm import LocalSlurmCluster
from continuum_hub.workflows import ACCESS_SCOPE, API_PREFIX
from fixtures.hub import api, hub_login, server_model, stop_server
from fixtures.slurm import wait_until
from fixtures.tokens import ACCESS_TOKEN_SECONDS, RUNNER, TOKEN_SITE
from fixtures.workflow_runs import notebook_of

pytestmark = [pytest.mark.integration, pytest.mark.workflows, pytest.mark.slow]

#: userinfo calls a minute apart: the first at the start, the last ten minutes later
CALLS = 11
INTERVAL = 60.0
#: after the minutes: a call every few seconds until one is refused, for at most this long
TAIL = 150.0
FINAL = {"done", "failed", "cancelled"}
#: from the submission to the run's end: the minutes (and the job's start), the tail, slack
SCENARIO_SECONDS = CALLS * INTERVAL + 240 + TAIL + 120 + 60
OWNER = str(RUNNER["username"])
PARAMETERS = f'userinfo_url = ""\ncalls = {CALLS}\ninterval = {INTERVAL}\ntail = {TAIL}'
CELLS = [
    # the agent writes the first token just after the job starts
    """import hashlib, json, os, pathlib, time, urllib.error, urllib.request

token_file = pathlib.Path(os.environ["BEARER_TOKEN_FILE"])
for _ in range(60):
    if token_file.exists():
        break
    time.sleep(1)
records = []

def call_userinfo(phase):
    token = token_file.read_text().strip()
    request = urllib.request.Request(userinfo_url, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            status = answer.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError:
        status = 0
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    records.append({"phase": phase, "at": time.time(), "status": status, "token": digest})
    pathlib.Path("calls.json.part").write_text(json.dumps(records))
    os.replace("calls.json.part", "calls.json")
    return status""",
    """start = time.monotonic()
for index in range(calls):
    time.sleep(max(0.0, start + index * interval - time.monotonic()))
    call_userinfo("minute")""",
    """end = time.monotonic() + tail
while time.monotonic() < end:
    time.sleep(5)
    if call_userinfo("after") != 200:
        break""",
]


def signed_in_token(hub: LocalHub, idp: OpenIDProvider, username: str) -> tuple[Any, str]:
    """Sign in and make a token for the service; the browser session and the token."""
    browser = hub_login(hub, idp, username)
    browser.get(f"{hub.url}/hub/token", timeout=30).raise_for_status()
    made = browser.post(
        f"{hub.url}/hub/api/users/{username}/tokens",
        json={"scopes": [ACCESS_SCOPE], "expires_in": 3600, "note": "batch runs"},
        headers={"X-XSRFToken": browser.cookies.get("_xsrf", "")},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    return browser, str(made.json()["token"])


def read_calls(folder: Path) -> list[dict[str, Any]]:
    """What the notebook recorded so far (read as root from the run folder on the site)."""
    try:
        return list(json.loads((folder / "calls.json").read_text()))
    except (OSError, ValueError):
        return []


class Abandoned(Exception):
    """The session ends before the scenario does (its last test was not run or gave up)."""


@dataclass
class UnattendedRun:
    """The submitted run and the thread following it; the thread's outcome or error."""

    hub: LocalHub
    token: str
    run: dict[str, Any]
    deadline: float
    stop: threading.Event = field(default_factory=threading.Event)
    outcome: dict[str, Any] = field(default_factory=dict)
    error: Exception | None = None
    thread: threading.Thread | None = None

    @property
    def folder(self) -> Path:
        return Path(self.run["folder"])

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        """Call the workflow service's REST API with the owner's token."""
        return requests.request(
            method,
            f"{self.hub.url}{API_PREFIX}/{path}",
            json=body,
            headers={"Authorization": f"token {self.token}"},
            timeout=60,
        )

    def state(self) -> dict[str, Any]:
        """The run as the service reports it (raises :class:`Abandoned` once told to stop)."""
        if self.stop.is_set():
            raise Abandoned("the session ended before the scenario")
        return dict(self.call("GET", f"runs/{self.run['id']}").json())

    def follow(self) -> None:
        """The thread: keep the outcome, or the error for the last test to re-raise."""
        try:
            self.outcome.update(self.minutes_then_revocation())
        except Exception as error:  # re-raised in the main thread by the last test
            self.error = error

    def minutes_then_revocation(self) -> dict[str, Any]:
        """Wait for the eleven calls, revoke the run's credential, wait for the refusal."""

        def minutes_done() -> list[dict[str, Any]] | None:
            current = self.state()
            assert current["state"] not in FINAL, current
            calls = [c for c in read_calls(self.folder) if c["phase"] == "minute"]
            return calls if len(calls) == CALLS else None

        # the first call a few seconds after the job starts, the last ten minutes later
        minutes = wait_until(minutes_done, timeout=CALLS * INTERVAL + 240, interval=5, what="calls")
        assert [c["status"] for c in minutes] == [200] * CALLS, minutes
        assert minutes[-1]["at"] - minutes[0]["at"] >= (CALLS - 1) * INTERVAL - 1
        tokens = {c["token"] for c in minutes}
        assert len(tokens) >= 4, f"{len(tokens)} distinct tokens in ten minutes"
        assert not server_model(self.hub, OWNER)

        # the owner revokes the run's credential: the run says so at once
        revoked = self.call("DELETE", f"credentials/{self.run['credential_id']}")
        assert revoked.status_code == 204, revoked.text
        # the clock itself: a unit test running meanwhile may monkeypatch time.time for a moment
        revoked_at = time.clock_gettime(time.CLOCK_REALTIME)
        current = self.state()
        assert current["state"] == "running" and current["reason"] == "credential revoked", current
        listed = self.call("GET", "credentials").json()["credentials"]
        assert next(c for c in listed if c["id"] == self.run["credential_id"])["revoked"] is True

        # the agent cannot refresh any more: the last token runs out and userinfo refuses it
        def final() -> dict[str, Any] | None:
            current = self.state()
            return current if current["state"] in FINAL else None

        ended = wait_until(final, timeout=TAIL + 120, interval=2, what="the run to end")
        after = [c for c in read_calls(self.folder) if c["phase"] == "after"]
        assert after and after[-1]["status"] == 401, after
        refused = after[-1]["at"] - revoked_at
        assert refused <= ACCESS_TOKEN_SECONDS + 45, f"refused {refused:.0f} s after the revocation"
        return {"ended": ended}


@pytest.fixture(scope="session")
def unattended_run(
    token_hub: LocalHub, short_idp: OpenIDProvider, token_site: LocalSlurmCluster
) -> Iterator[UnattendedRun]:
    """The owner submits the run and signs out; a daemon thread follows it from then on.

    At the end of the session the thread is told to stop (and waited for briefly) before the
    hub stops, and the run's job is cancelled.
    """
    browser, token = signed_in_token(token_hub, short_idp, OWNER)
    if server_model(token_hub, OWNER):  # no server: only the run's credential refreshes
        stop_server(token_hub, OWNER)
    service = f"{token_hub.url}{API_PREFIX}"
    wait_until(
        lambda: requests.get(f"{service}/", timeout=5).status_code == 401,
        timeout=60,
        what="the workflow service",
    )
    body = {
        "notebook": {
            "path": "work/tokens.ipynb",
            "content": json.loads(notebook_of(PARAMETERS, CELLS)),
        },
        "parameters": {"userinfo_url": short_idp.metadata()["userinfo_endpoint"]},
        "resources": {
            "site": TOKEN_SITE,
            "partition": "batch",
            "cores": 1,
            "memory_gb": 1,
            "walltime": "0:20",
        },
    }
    scenario = UnattendedRun(token_hub, token, {}, time.monotonic() + SCENARIO_SECONDS)
    submitted = scenario.call("POST", "runs", body)
    assert submitted.status_code == 201, submitted.text
    scenario.run = submitted.json()
    assert scenario.run["credential_id"], scenario.run
    # the owner signs out; she has no server: nothing of hers runs but the batch job
    browser.get(f"{token_hub.url}/hub/logout", timeout=30)
    assert "/hub/login" in browser.get(f"{token_hub.url}/hub/home", timeout=30).url
    scenario.thread = threading.Thread(target=scenario.follow, name="unattended-run", daemon=True)
    scenario.thread.start()
    try:
        yield scenario
    finally:
        scenario.stop.set()
        scenario.thread.join(timeout=30)
        subprocess.run(
            ["scancel", f"--user={OWNER}"],
            env=token_site.client_env(),
            capture_output=True,
            timeout=30,
            check=False,
        )


@pytest.mark.run_first
def test_a_run_is_submitted_and_left_unattended(
    unattended_run: UnattendedRun, token_hub: LocalHub
) -> None:
    """The kick-off: the rest of the session runs while the run's minutes pass."""
    assert not server_model(token_hub, OWNER)
    current = unattended_run.state()
    assert current["state"] not in FINAL and current["credential_id"], current


@pytest.mark.run_last
@pytest.mark.timeout(1200)
def test_a_run_keeps_its_token_fresh_unattended_until_revoked(
    unattended_run: UnattendedRun, token_hub: LocalHub
) -> None:
    scenario = unattended_run
    assert scenario.thread is not None
    scenario.thread.join(timeout=max(0.0, scenario.deadline - time.monotonic()))
    assert not scenario.thread.is_alive(), f"the run did not end in {SCENARIO_SECONDS:.0f} s"
    if scenario.error is not None:
        raise scenario.error
    ended = scenario.outcome["ended"]
    assert ended["state"] == "done" and ended["reason"] == "credential revoked", ended
    # the job's agent said why (its log is the job's error file)
    folder = scenario.folder
    logs = "".join(p.read_text(errors="replace") for p in folder.glob("slurm-*.err"))
    assert "continuum token:" in logs and "the hub answered 401" in logs, logs[-2000:]

    # the refresh token never left the hub: not in the run folder, not in the notebook
    state = api(token_hub, "GET", f"/users/{OWNER}").json().get("auth_state") or {}
    refresh_token = state["refresh_token"]
    for path in folder.rglob("*"):
        if path.is_file():
            assert refresh_token.encode() not in path.read_bytes(), path
    notebook = scenario.call("GET", f"runs/{scenario.run['id']}/notebook")
    assert notebook.status_code == 200 and refresh_token not in notebook.text
