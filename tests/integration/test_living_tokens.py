"""Living tokens end to end: a real provider with 60-second access tokens, a hub, Slurm.

The hub refreshes tokens before they expire and hands a server's own token only its user's
access token; the server keeps ``BEARER_TOKEN_FILE`` (0600, the user's) valid for as long as it
runs; a refresh token revoked at the provider ends the session with a *sign in again* page and
removes the tokens from the hub; an entitlement taken away at the provider removes the group
at the next refresh.  The provider (whose users a test changes) and the hub are the session's
``short_idp`` and ``token_hub`` (``fixtures.tokens``, shared with the batch runs' token test).

The five minutes of watching alice's token file overlap the rest of the session, like the batch
runs' token test: a ``run_first`` test starts the watch in a daemon thread, a ``run_last`` test
joins it and asserts (``tests/conftest.py`` orders them).
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from continuum_federation.hub import LocalHub
from continuum_federation.idp import ADMIN_GROUP, VO_RADIO, OpenIDProvider, entitlement
from continuum_hub.identity.token_api import SCOPE
from fixtures.hub import (
    admin_hub,
    api,
    hub_login,
    server_environ,
    server_model,
    stop_server,
    wait_for_server,
)
from fixtures.idp import userinfo
from fixtures.slurm import wait_until
from fixtures.tokens import TOKEN_SITE

pytestmark = [pytest.mark.integration, pytest.mark.identity]


@pytest.fixture(scope="session")
def alice_server(token_hub, short_idp):
    """Alice signed in, with a running server on the token hub's site (stopped at the end of
    the session: the five-minute watch below follows it while the rest of the session runs)."""
    browser = hub_login(token_hub, short_idp, "alice")
    options = {"site": TOKEN_SITE, "partition": "interactive", "cores": 1, "memory_gb": 1}
    response = api(token_hub, "POST", "/users/alice/server", json={"user_options": options})
    assert response.status_code in (201, 202), response.text
    wait_for_server(token_hub, "alice")
    try:
        yield browser
    finally:
        stop_server(token_hub, "alice")


def auth_state(hub: LocalHub, username: str) -> dict[str, Any]:
    """The user's auth_state as an admin sees it (``admin:auth_state``)."""
    response = api(hub, "GET", f"/users/{username}")
    response.raise_for_status()
    return response.json().get("auth_state") or {}


def token_request(hub: LocalHub, token: str | None, path: str = "") -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.get(f"{hub.url}/hub/api/continuum/token{path}", headers=headers, timeout=60)


def test_token_endpoint_serves_a_servers_own_user_only(token_hub, short_idp, alice_server):
    env = server_environ(token_hub, "alice", having="BEARER_TOKEN_FILE")
    server_token = env["JUPYTERHUB_API_TOKEN"]

    assert token_request(token_hub, None).status_code == 401
    # the admin service may do much, but not read users' access tokens
    assert token_request(token_hub, token_hub.api_token).status_code == 403
    # a server's token reads its own user's token, never another user's
    assert token_request(token_hub, server_token, "/bob").status_code == 403
    assert token_request(token_hub, server_token, "/alice").status_code == 200
    # nor does a browser session (a script in a page) get it
    browser = alice_server.get(f"{token_hub.url}/hub/api/continuum/token", timeout=60)
    assert browser.status_code in (401, 403) and "access_token" not in browser.text

    # concurrent requests of a stale token: one refresh at a time, all answered
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: token_request(token_hub, server_token), range(6)))
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    for body in {a.text: a.json() for a in answers}.values():
        assert set(body) == {"access_token", "expires_at"}
        assert body["expires_at"] > time.time()
        info = userinfo(short_idp, body["access_token"])
        assert info.status_code == 200 and info.json()["preferred_username"] == "alice"
    # the refresh token never leaves the hub: not in the answers, not in the server
    refresh_token = auth_state(token_hub, "alice")["refresh_token"]
    assert refresh_token and all(refresh_token not in a.text for a in answers)
    assert refresh_token not in "\0".join(env.values())


def test_token_agent_of_a_batch_job_with_a_token_of_only_that_scope(
    token_hub, short_idp, alice_server
):
    # alice makes herself a token that can do nothing but fetch access tokens (as on /hub/token)
    alice_server.get(f"{token_hub.url}/hub/token", timeout=60)
    made = alice_server.post(
        f"{token_hub.url}/hub/api/users/alice/tokens",
        json={"scopes": [f"{SCOPE}!user"], "note": "batch job"},
        headers={"X-XSRFToken": alice_server.cookies.get("_xsrf", "")},
        timeout=60,
    )
    assert made.status_code == 201, made.text
    scopes = made.json()["scopes"]
    assert f"{SCOPE}!user=alice" in scopes and "inherit" not in scopes, scopes
    alice = pwd.getpwnam("alice")
    folder = Path(alice.pw_dir) / ".continuum" / "tokens"
    secret = folder / f"agent-test-{os.getpid()}.hub-token"
    output = folder / f"agent-test-{os.getpid()}.token"
    secret.write_text(made.json()["token"] + "\n")
    secret.chmod(0o600)
    os.chown(secret, alice.pw_uid, alice.pw_gid)
    env = [f"JUPYTERHUB_API_URL=http://127.0.0.1:{token_hub.api_port}/hub/api"]
    if os.environ.get("PYTHONPATH"):  # a checkout not installed in the environment
        env.append(f"PYTHONPATH={os.environ['PYTHONPATH']}")
    argv = ["sudo", "-n", "-u", "alice", "env", *env, sys.executable, "-m"]
    argv += ["continuum_lab.token_agent", "--once", "--output", str(output)]
    try:
        result = subprocess.run(
            [*argv, "--token-file", str(secret)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        info = output.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == alice.pw_uid
        answer = userinfo(short_idp, output.read_text().strip())
        assert answer.status_code == 200 and answer.json()["preferred_username"] == "alice"
    finally:
        secret.unlink(missing_ok=True)
        output.unlink(missing_ok=True)


@dataclass
class TokenWatch:
    """Alice's ``BEARER_TOKEN_FILE`` read once a minute for five minutes, in a daemon thread.

    Each minute: the file's mode and owner, the provider's answer to the token in it, and
    whether the server is still ready.  The kick-off test (``run_first``) starts it so that
    its five minutes overlap the rest of the session; the last test (``run_last``) joins it
    and asserts.  Selected alone, the last test starts it itself and waits.
    """

    hub: LocalHub
    idp: OpenIDProvider
    path: Path
    minutes: int = 6
    seen: list[str] = field(default_factory=list)
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self.follow, name="token-watch", daemon=True)
            self.thread.start()

    def follow(self) -> None:
        try:
            alice = pwd.getpwnam("alice").pw_uid
            for minute in range(self.minutes):
                if minute and self.stop.wait(60):
                    return
                info = self.path.stat()
                assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == alice, oct(
                    info.st_mode
                )
                assert stat.S_IMODE(self.path.parent.stat().st_mode) == 0o700
                token = self.path.read_text().strip()
                answer = userinfo(self.idp, token)
                assert answer.status_code == 200, f"minute {minute}: {answer.status_code}"
                assert answer.json()["preferred_username"] == "alice"
                self.seen.append(token)
                assert server_model(self.hub, "alice").get("ready"), f"minute {minute}"
        except BaseException as exc:  # re-raised by the last test
            self.error = exc


@pytest.fixture(scope="session")
def token_watch(token_hub, short_idp, alice_server) -> Iterator[TokenWatch]:
    path = Path(server_environ(token_hub, "alice", having="BEARER_TOKEN_FILE")["BEARER_TOKEN_FILE"])
    watch = TokenWatch(token_hub, short_idp, path)
    try:
        yield watch
    finally:
        watch.stop.set()
        if watch.thread is not None:
            watch.thread.join(timeout=30)


@pytest.mark.run_first
def test_bearer_token_file_watch_starts(token_watch: TokenWatch) -> None:
    """The kick-off: the watch's five minutes pass while the rest of the session runs."""
    token_watch.start()
    assert token_watch.thread is not None and token_watch.thread.is_alive()


@pytest.mark.run_last
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_bearer_token_file_stays_valid_for_five_minutes(token_hub, token_watch: TokenWatch):
    token_watch.start()  # selected alone: nothing started it
    assert token_watch.thread is not None
    token_watch.thread.join(timeout=(token_watch.minutes - 1) * 60 + 120)
    assert not token_watch.thread.is_alive(), "the watch did not end in time"
    if token_watch.error is not None:
        raise token_watch.error
    seen = token_watch.seen
    assert len(seen) == token_watch.minutes
    # 60-second tokens over five minutes: the file was renewed again and again
    assert len(set(seen)) >= 4, f"{len(set(seen))} distinct tokens in 5 minutes"
    refresh_token = auth_state(token_hub, "alice")["refresh_token"]
    assert refresh_token not in token_watch.path.read_text()


def test_revoked_refresh_token_ends_the_session(token_hub, short_idp):
    bob = hub_login(token_hub, short_idp, "bob")
    refresh_token = auth_state(token_hub, "bob")["refresh_token"]
    revoked = requests.post(
        short_idp.metadata()["revocation_endpoint"],
        data={"token": refresh_token, "token_type_hint": "refresh_token"},
        auth=(short_idp.client_id, short_idp.client_secret),
        timeout=30,
    )
    assert revoked.status_code == 200, revoked.text

    def landed() -> requests.Response | None:
        page = bob.get(f"{token_hub.url}/hub/home", timeout=60)
        return page if "/hub/continuum/sign-in-again" in page.url else None

    # the next request that refreshes (auth older than AUTH_REFRESH_AGE, or a stale token)
    page = wait_until(landed, timeout=180, interval=2, what="sign-in-again page")
    assert "Please sign in again" in page.text and "Sign in again" in page.text
    state = auth_state(token_hub, "bob")
    assert not {"access_token", "refresh_token", "id_token", "token_response"} & set(state)
    # a clean redirect, not JupyterHub stumbling over the failed refresh
    assert "Failed to get current user" not in token_hub.log(2000)
    # the hub's session cookie is gone: the next page is the ordinary login page
    again = bob.get(f"{token_hub.url}/hub/home", timeout=60)
    assert "/hub/login" in again.url, again.url


def test_lost_entitlement_removes_the_group_at_the_next_refresh(token_hub, short_idp):
    dave = hub_login(token_hub, short_idp, "dave")
    user = api(token_hub, "GET", "/users/dave").json()
    assert sorted(user["groups"]) == [ADMIN_GROUP, VO_RADIO] and user["admin"]
    original = [dict(u) for u in short_idp.users]
    changed = [
        {**u, "entitlements": [entitlement(ADMIN_GROUP)]} if u["username"] == "dave" else u
        for u in original
    ]
    try:
        reload_users(short_idp, changed)

        def groups() -> list[str] | None:
            dave.get(f"{token_hub.url}/hub/home", timeout=60)  # activity: refresh when due
            found = sorted(api(token_hub, "GET", "/users/dave").json()["groups"])
            return found if found == [ADMIN_GROUP] else None

        wait_until(groups, timeout=120, interval=2, what="radio group removed from dave")
        assert api(token_hub, "GET", "/users/dave").json()["admin"] is True
        assert dave.get(f"{token_hub.url}/hub/home", timeout=60).status_code == 200
    finally:
        reload_users(short_idp, original)


def reload_users(idp: OpenIDProvider, users: list[dict[str, Any]]) -> None:
    """Give the running provider new users and wait until it has re-read them."""
    before = idp.log_path.read_text().count("SIGHUP: re-read")
    idp.reload_users(users)
    wait_until(
        lambda: idp.log_path.read_text().count("SIGHUP: re-read") > before,
        timeout=30,
        what="provider re-read its users",
    )


def test_hub_refuses_to_start_without_crypt_key(federation_root, repo_root, short_idp, slurm_sites):
    """auth_state holds the tokens: without JUPYTERHUB_CRYPT_KEY the hub must not start."""
    hub = admin_hub(federation_root / "hub-no-key", repo_root, short_idp, slurm_sites)
    hub.state_dir.mkdir(parents=True, exist_ok=True)
    from continuum_federation.hub import write_private_json

    write_private_json(hub.state_dir / "continuum_hub_config.json", hub.config())
    env = {k: v for k, v in hub.environment().items() if k != "JUPYTERHUB_CRYPT_KEY"}
    jupyterhub = Path(sys.executable).parent / "jupyterhub"
    config = repo_root / "hub-config" / "jupyterhub_config.py"
    result = subprocess.run(
        [str(jupyterhub), "-f", str(config)],
        env=env,
        cwd=hub.state_dir,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "auth_state is enabled, but encryption is not available" in output, output[-2000:]
    assert "JUPYTERHUB_CRYPT_KEY" in output
