"""Living tokens, unit level: refresh policy, serialized refreshes, token file writer, keeper.

The identity provider and the hub are replaced at their HTTP boundary (a fake provider on
127.0.0.1, ``fixtures.fake_idp``, for the refresher of a real ``FederatedAuthenticator``; a local
``http.server`` for the keeper); the end-to-end behaviour against the real provider, hub and
Slurm is in ``tests/integration/test_living_tokens.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from continuum_hub.identity.token_api import SCOPE, add_token_scopes
from continuum_hub.identity.tokens import RefreshPolicy, TokenRefresher
from continuum_lab.token_agent import read_private_token
from continuum_lab.tokens import (
    HubTokenError,
    TokenKeeper,
    next_pull_delay,
    parse_token_answer,
    retry_delay,
    write_token_file,
)
from continuum_spawners.launcher import token_file_path
from fixtures.fake_idp import SUBJECT, FakeIdP, entitlement, fake_idp, hub_authenticator

pytestmark = pytest.mark.identity

NOW = 1_000_000.0


# ---- refresh policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expires_in,remaining,fraction,minimum,stale",
    [
        (3600, 3000, 0.5, 60, False),
        (3600, 1700, 0.5, 60, True),  # below half of the lifetime
        (3600, 1900, 0.5, 60, False),
        (3600, 50, 0.1, 60, True),  # below the minimum
        (3600, 300, 0.05, 120, False),
        (60, 58, 0.5, 60, False),  # a fresh short-lived token is good enough (90 % cap)
        (60, 53, 0.5, 60, True),
        (60, -5, 0.5, 60, True),  # expired
    ],
    ids=[
        "fresh-1h",
        "half-life-passed",
        "before-half-life",
        "minimum",
        "above-minimum",
        "fresh-60s",
        "60s-after-6s",
        "expired",
    ],
)
def test_refresh_policy(expires_in, remaining, fraction, minimum, stale):
    state = {
        "access_token": "a",
        "expires_at": NOW + remaining,
        "token_response": {"expires_in": expires_in},
    }
    assert RefreshPolicy(fraction, minimum).needs_refresh(state, NOW) is stale


@pytest.mark.parametrize(
    "state",
    [
        {"access_token": "a"},
        {"access_token": "a", "expires_at": "soon"},
        {"expires_at": NOW + 3000, "token_response": {"expires_in": 3600}},
    ],
    ids=["no-expiry", "bad-expiry", "no-access-token"],
)
def test_refresh_policy_refreshes_tokens_of_unknown_age(state):
    assert RefreshPolicy().needs_refresh(state, NOW)


# ---- the refresher, with a fake provider at the HTTP boundary ---------------------------


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdP]:
    with fake_idp() as provider:
        yield provider


@pytest.fixture
def provider(idp: FakeIdP) -> FakeIdP:
    """The module's fake provider, reset to its first tokens."""
    idp.reset()
    return idp


class FakeUser:
    name = "alice"

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    async def get_auth_state(self) -> dict[str, Any]:
        await asyncio.sleep(0.01)  # JupyterHub decrypts in a thread
        return json.loads(json.dumps(self.state))

    async def save_auth_state(self, state: dict[str, Any]) -> None:
        await asyncio.sleep(0.01)
        self.state = json.loads(json.dumps(state))


def stale_state(idp: FakeIdP, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "demo",
        "issuer": idp.issuer,
        "access_token": "at-1",
        "refresh_token": "rt-1",
        "id_token": "id",
        "expires_at": int(time.time()) + 5,
        "token_response": {"expires_in": 60},
        "oauth_user": {"sub": SUBJECT, "eduperson_entitlement": [entitlement("hep")]},
        **extra,
    }


@pytest.fixture
def refresher(provider: FakeIdP, tmp_path: Path) -> TokenRefresher:
    """The refresher of a real ``FederatedAuthenticator`` whose provider is the fake one."""
    auth = hub_authenticator(
        provider, tmp_path, token_refresh_fraction=0.5, token_refresh_min_seconds=10
    )
    refresher = auth.token_refresher()
    assert refresher.policy == RefreshPolicy(0.5, 10)
    return refresher


async def test_concurrent_refreshes_spend_the_refresh_token_once(refresher, provider):
    user = FakeUser(stale_state(provider))
    results = await asyncio.gather(*(refresher.refresh_user(user, reread=False) for _ in range(5)))
    assert provider.refreshes == 1 and refresher.refresh_count == 1
    assert isinstance(results[0], dict) and results[1:] == [True] * 4
    assert user.state["access_token"] == "at-2" and user.state["refresh_token"] == "rt-2"
    assert user.state["expires_at"] > user.state["token_response"]["expires_in"]
    assert user.state["id_token"] == user.state["token_response"]["id_token"] != "id"


async def test_refresh_rereads_entitlements_and_groups_follow(refresher, provider):
    user = FakeUser(stale_state(provider))
    provider.entitlements = ["hep"]
    model = await refresher.refresh_user(user)
    assert model["groups"] == ["hep"] and model["admin"] is False
    assert user.state["oauth_user"]["eduperson_entitlement"] == [entitlement("hep")]


async def test_fresh_token_is_not_refreshed_but_userinfo_is_reread(refresher, provider):
    state = stale_state(provider, expires_at=int(time.time()) + 60)
    user = FakeUser(state)
    assert await refresher.refresh_user(user, reread=False) is True
    # the hub's periodic refresh re-reads userinfo (the access token at-1 is current there)
    provider.generation = 1
    provider.entitlements = ["radio"]
    model = await refresher.refresh_user(user)
    assert provider.refreshes == 0 and model["groups"] == ["radio"]


async def test_access_token_dropped_early_is_refreshed_once(refresher, provider):
    state = stale_state(
        provider, expires_at=stale_state(provider)["expires_at"] + 55
    )  # fresh by its expiry
    provider.generation = 7  # … yet the provider no longer accepts at-1
    provider.refresh_token = "rt-1"
    model = await refresher.refresh_user(FakeUser(state))
    assert isinstance(model, dict) and provider.refreshes == 1


async def test_refused_refresh_token_ends_the_session_and_removes_the_tokens(refresher, provider):
    user = FakeUser(stale_state(provider, refresh_token="rt-revoked"))
    assert await refresher.refresh_user(user) is False
    assert set(user.state) == {"provider", "issuer", "signed_out"}
    assert "refused the refresh token" in user.state["signed_out"]["reason"]
    assert await refresher.refresh_user(user) is False  # nothing left to refresh with


async def test_lost_last_allowed_entitlement_ends_the_session_and_revokes(refresher, provider):
    user = FakeUser(stale_state(provider))
    provider.entitlements = []
    assert await refresher.refresh_user(user) is False
    assert "access_token" not in user.state and "refresh_token" not in user.state
    assert provider.revoked == ["rt-2"]


@pytest.mark.parametrize(
    "answer",
    [(503, {"error": "temporarily_unavailable"}), (400, {"error": "invalid_client"})],
    ids=["unavailable", "client-refused"],
)
async def test_unreachable_or_misconfigured_provider_keeps_the_session(refresher, provider, answer):
    state = stale_state(provider)
    user = FakeUser(state)
    provider.replace["/token"] = answer
    assert await refresher.refresh_user(user) is True
    assert user.state == state and provider.revoked == []


async def test_rotated_refresh_token_is_kept_when_userinfo_fails_after_the_refresh(
    refresher, provider
):
    user = FakeUser(stale_state(provider))
    provider.userinfo_down = True
    assert await refresher.refresh_user(user) is True  # retried at the next request
    assert user.state["refresh_token"] == "rt-2" and user.state["access_token"] == "at-2"
    provider.userinfo_down = False
    assert isinstance(await refresher.refresh_user(user), dict)
    assert provider.refreshes == 1  # the saved token was fresh: no second refresh


async def test_refreshed_id_token_of_another_subject_ends_the_session(refresher, provider):
    user = FakeUser(stale_state(provider))
    provider.id_token_claims = {"sub": "someone-else"}
    assert await refresher.refresh_user(user) is False
    assert "another subject" in user.state["signed_out"]["reason"]
    assert provider.revoked == ["rt-2"]  # the rotated refresh token is the one revoked


async def test_unknown_provider_ends_the_session(refresher, provider):
    user = FakeUser(stale_state(provider, provider="gone"))
    assert await refresher.refresh_user(user) is False
    assert "refresh_token" not in user.state


# ---- scopes --------------------------------------------------------------------------------


def test_server_tokens_keep_a_deployments_server_role():
    c = Config()
    c.JupyterHub.load_roles = [{"name": "server", "scopes": ["users:activity!user", "x"]}]
    add_token_scopes(c)
    assert c.Spawner.server_token_scopes == ["users:activity!user", "x", f"{SCOPE}!user"]


def test_token_scope_is_added_after_the_layers_and_keeps_theirs():
    c = Config()
    c.JupyterHub.custom_scopes = {"custom:other": {"description": "x"}}
    c.JupyterHub.extra_user_scopes = {"access:services!service=dask-gateway"}
    add_token_scopes(c)
    add_token_scopes(c)  # idempotent
    assert set(c.JupyterHub.custom_scopes) == {"custom:other", SCOPE}
    assert c.JupyterHub.extra_user_scopes == {
        "access:services!service=dask-gateway",
        f"{SCOPE}!user",
    }
    assert c.Spawner.server_token_scopes == [
        "users:activity!user",
        "access:servers!server",
        f"{SCOPE}!user",
    ]


# ---- token file, keeper --------------------------------------------------------------------


def test_write_token_file_is_private_atomic_and_leaves_nothing_behind(tmp_path: Path):
    path = tmp_path / "bt"
    path.write_text("old\n")
    path.chmod(0o644)
    before = path.stat().st_ino
    write_token_file(path, "new-token")
    assert path.read_text() == "new-token\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != before  # a new file renamed over, never rewritten in place
    assert os.listdir(tmp_path) == ["bt"]
    with pytest.raises(FileNotFoundError):
        write_token_file(tmp_path / "missing" / "bt", "x")


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"expires_at": 5},
        {"access_token": "a b", "expires_at": 5},
        {"access_token": "a\n", "expires_at": 5},
        {"access_token": "a", "expires_at": True},
        {"access_token": "a", "expires_at": "5"},
    ],
    ids=["not-object", "no-token", "space", "newline", "bool-expiry", "text-expiry"],
)
def test_malformed_hub_answers_are_refused(data):
    with pytest.raises(HubTokenError):
        parse_token_answer(data)


def test_pull_delays():
    assert next_pull_delay(NOW + 60, NOW, 0.5, 5, 3600) == 30
    assert next_pull_delay(NOW + 4, NOW, 0.5, 5, 3600) == 5
    assert next_pull_delay(NOW + 86400, NOW, 0.5, 5, 3600) == 3600
    assert [retry_delay(n, 5, 60) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 40, 60]


class FakeHub(BaseHTTPRequestHandler):
    answers: list[tuple[int, dict[str, Any]]] = []
    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(f"{self.path} {self.headers.get('Authorization')}")
        code, body = self.answers.pop(0)
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    FakeHub.answers, FakeHub.seen = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    server.shutdown()
    server.server_close()


def test_keeper_writes_then_keeps_the_file_through_failures(fake_hub, tmp_path: Path):
    path = tmp_path / "bt"
    keeper = TokenKeeper(path, fake_hub, "server-token", min_delay=5)
    expires = time.time() + 600
    FakeHub.answers = [
        (200, {"access_token": "at-1", "expires_at": expires}),
        (401, {"message": "sign in again"}),
        (503, {"message": "later"}),
    ]
    delay = keeper.pull_once()
    assert path.read_text() == "at-1\n" and 290 < delay <= 300
    assert FakeHub.seen == ["/hub/api/continuum/token token server-token"]
    assert keeper.pull_once() == 5 and keeper.pull_once() == 10  # doubling retries
    assert path.read_text() == "at-1\n"  # the last good token stays until it expires


def test_token_file_path_is_private_and_per_job(tmp_path: Path):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime), "CONTINUUM_SITE": "alpha", "SLURM_JOB_ID": "42"}
    path = token_file_path(env)
    assert path.parent == runtime / "continuum"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.name == f"alpha-42-{os.getpid()}.token"
    env.update(CONTINUUM_SITE="../../etc", SLURM_JOB_ID="1;rm")
    assert token_file_path(env).name == f"local-nojob-{os.getpid()}.token"


def test_agent_refuses_a_token_file_others_can_read(tmp_path: Path):
    path = tmp_path / "hub-token"
    path.write_text("secret\n")
    path.chmod(0o644)
    with pytest.raises(SystemExit, match="chmod 600"):
        read_private_token(path)
    path.chmod(0o600)
    assert read_private_token(path) == "secret"


def test_agent_once_writes_the_token_without_it_on_the_command_line(
    fake_hub, tmp_path: Path, monkeypatch
):
    from continuum_lab.token_agent import main

    token_file = tmp_path / "hub-token"
    token_file.write_text("job-token\n")
    token_file.chmod(0o600)
    output = tmp_path / "bt"
    monkeypatch.delenv("BEARER_TOKEN_FILE", raising=False)
    argv = [
        "--once",
        "--output",
        str(output),
        "--hub-api-url",
        fake_hub,
        "--token-file",
        str(token_file),
    ]
    FakeHub.answers = [(200, {"access_token": "at-agent", "expires_at": time.time() + 60})]
    main(argv)
    assert output.read_text() == "at-agent\n" and stat.S_IMODE(output.stat().st_mode) == 0o600
    assert FakeHub.seen == ["/hub/api/continuum/token token job-token"]
    FakeHub.answers = [(401, {"message": "Please sign in again."})]
    with pytest.raises(SystemExit, match="401: Please sign in again"):
        main(argv)


def test_a_runs_agent_says_its_credential_was_revoked(
    fake_hub, tmp_path: Path, monkeypatch, caplog
):
    """In a batch run's job a refused hub token is the run's credential revoked by its owner;
    the provider's *sign in again* answer keeps its own message."""
    from continuum_lab.token_agent import RUN_REVOKED, main

    token_file = tmp_path / "hub-token"
    token_file.write_text("run-token\n")
    token_file.chmod(0o600)
    argv = ["--once", "--output", str(tmp_path / "bt"), "--hub-api-url", fake_hub]
    argv += ["--token-file", str(token_file)]
    monkeypatch.setenv("CONTINUUM_RUN_ID", "r-0123456789ab")
    FakeHub.answers = [(401, {"message": "an API token is required"})]
    with pytest.raises(SystemExit, match="credential revoked — the run's owner revoked it"):
        main(argv)
    FakeHub.answers = [(401, {"message": "Please sign in again."})]
    with pytest.raises(SystemExit, match="401: Please sign in again") as ended:
        main(argv)
    assert "revoked" not in str(ended.value)
    keeper = TokenKeeper(tmp_path / "bt", fake_hub, "run-token", refused_message=RUN_REVOKED)
    FakeHub.answers = [(401, {"message": "an API token is required"})]
    with caplog.at_level("WARNING"):
        keeper.pull_once()
    assert f"continuum token: {RUN_REVOKED} (the hub answered 401" in caplog.text
    assert "sign in to the hub again" not in caplog.text
