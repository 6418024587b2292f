"""Fixtures of the attack suite (marker ``security``): a hub whose back channel is attacked.

``sec_idp`` (session)
    An OpenID provider of the suite's own (npm ``oidc-provider``, like ``idp``): a pool of
    victims ``sec01`` … (members of ``vo.hep.example``), and ``mallory``, a HEP member whose
    non-authoritative claims (name, given and family name, e-mail) and untrusted entitlements
    spell the admin group.  One client, for ``sec_hub``.
``sec_idp2`` (session)
    A second provider, the hub's ``partner`` (its own namespace; user ``pat``).
``sec_attacker``, ``sec_attacker2`` (session)
    :class:`~fixtures.attacker.BackChannelAttacker` in front of ``sec_idp``'s and
    ``sec_idp2``'s token and userinfo endpoints.
``sec_hub`` (session)
    JupyterHub (``admin_hub``: admin token for the REST API) with two providers:
    ``continuum`` (primary, ``sec_idp``; callback ``/hub/oauth_callback``) and ``partner``
    (``sec_idp2``; ``/hub/oauth_callback/partner``), each provider's ``token_url`` and
    ``userdata_url`` pointing at its attacker.  It never spawns: one unreachable site.
``attacker``, ``attacker2`` (function)
    ``sec_attacker`` / ``sec_attacker2``, honest and with empty records at the start and end
    of the test.
``victim``, ``other_victim`` (function)
    Usernames no other test of the session signs in, so "not created" can be checked
    whatever the order of the tests.
``hub_log`` (function)
    A :class:`~security_support.LogWatch` on the hub's log from the start of the test.
``attack_report`` (session)
    Collects an :class:`~security_support.Observation` per refused attack and writes the table
    to ``test-results/security-attacks.md`` at the end of the session.
``target`` (function)
    A :class:`~security_support.Target`: ``sec_hub`` and ``sec_idp`` with ``hub_log`` and
    ``attack_report``; ``target.sign_in(victim)`` attempts a sign-in, ``target.refused(…)``
    checks a refusal and reports it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from security_support import (
    PARTNER,
    PARTNER_AUTHORITY,
    PARTNER_NAMESPACE,
    PARTNER_USERS,
    PRIMARY,
    USERS,
    VICTIMS,
    LogWatch,
    Observation,
    Target,
)

from continuum_federation.hub import LocalHub
from continuum_federation.idp import OpenIDProvider, hub_client, with_passwords
from continuum_federation.process import free_port
from fixtures.attacker import BackChannelAttacker
from fixtures.hub import admin_hub

#: the suite's hub never spawns: one site it cannot reach keeps its configuration valid
REGISTRY = """\
sites:
  - name: nowhere
    scheduler: slurm
    connection: {transport: local}
    partitions:
      - {name: none, default: true, max_cores: 1, max_memory_gb: 1, max_walltime: "01:00:00",
         default_walltime: "00:10:00"}
"""
REPORT = Path(__file__).resolve().parents[2] / "test-results" / "security-attacks.md"


@pytest.fixture(scope="session")
def sec_hub_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def sec_idp(federation_root: Path, repo_root: Path, sec_hub_port: int) -> Iterator[OpenIDProvider]:
    provider = OpenIDProvider(
        federation_root / "sec-idp",
        repo_root,
        users=with_passwords(USERS),
        clients=[hub_client(sec_hub_port, secrets.token_urlsafe(32))],
        name="sec-idp",
    )
    with provider:
        yield provider


@pytest.fixture(scope="session")
def sec_idp2(federation_root: Path, repo_root: Path, sec_hub_port: int) -> Iterator[OpenIDProvider]:
    client = hub_client(sec_hub_port, secrets.token_urlsafe(32), client_id="continuum-hub-2")
    client["redirect_uris"] = [f"http://127.0.0.1:{sec_hub_port}/hub/oauth_callback/{PARTNER}"]
    provider = OpenIDProvider(
        federation_root / "sec-idp2",
        repo_root,
        users=with_passwords(PARTNER_USERS),
        clients=[client],
        name="sec-idp2",
    )
    with provider:
        yield provider


@pytest.fixture(scope="session")
def sec_attacker(
    sec_idp: OpenIDProvider, attacker_factory: Callable[[OpenIDProvider], BackChannelAttacker]
) -> BackChannelAttacker:
    return attacker_factory(sec_idp)


@pytest.fixture(scope="session")
def sec_attacker2(
    sec_idp2: OpenIDProvider, attacker_factory: Callable[[OpenIDProvider], BackChannelAttacker]
) -> BackChannelAttacker:
    return attacker_factory(sec_idp2)


@pytest.fixture(scope="session")
def sec_hub(
    federation_root: Path,
    repo_root: Path,
    sec_idp: OpenIDProvider,
    sec_idp2: OpenIDProvider,
    sec_attacker: BackChannelAttacker,
    sec_attacker2: BackChannelAttacker,
    sec_hub_port: int,
) -> Iterator[LocalHub]:
    state = federation_root / "sec-hub"
    state.mkdir(mode=0o700)
    registry = state / "sites.yaml"
    registry.write_text(REGISTRY)
    hub = admin_hub(
        state,
        repo_root,
        sec_idp,
        {},
        port=sec_hub_port,
        registry_path=registry,
        # an explicit token_url / userdata_url wins over the discovery document's
        extra_config={
            "FederatedAuthenticator": {
                "provider_name": PRIMARY,
                "token_url": sec_attacker.token_url,
                "userdata_url": sec_attacker.userinfo_url,
                "providers": {
                    PARTNER: {
                        "issuer": sec_idp2.issuer,
                        "client_id": sec_idp2.client_id,
                        "client_secret": sec_idp2.client_secret,
                        "display_name": "Partner proxy",
                        "trusted_namespaces": [PARTNER_NAMESPACE.removeprefix("urn:")],
                        "trusted_authorities": [PARTNER_AUTHORITY],
                        "token_url": sec_attacker2.token_url,
                        "userdata_url": sec_attacker2.userinfo_url,
                    }
                },
            }
        },
    )
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def attacker(sec_attacker: BackChannelAttacker) -> Iterator[BackChannelAttacker]:
    sec_attacker.reset()
    try:
        yield sec_attacker
    finally:
        sec_attacker.reset()


@pytest.fixture
def attacker2(sec_attacker2: BackChannelAttacker) -> Iterator[BackChannelAttacker]:
    sec_attacker2.reset()
    try:
        yield sec_attacker2
    finally:
        sec_attacker2.reset()


_victims = iter(VICTIMS)


@pytest.fixture
def victim() -> str:
    try:
        return next(_victims)
    except StopIteration:
        pytest.fail(f"more than {len(VICTIMS)} victims needed: add users to VICTIMS")


@pytest.fixture
def other_victim(victim: str) -> str:
    """A second such username for the same test."""
    try:
        return next(_victims)
    except StopIteration:
        pytest.fail(f"more than {len(VICTIMS)} victims needed: add users to VICTIMS")


@pytest.fixture
def hub_log(sec_hub: LocalHub) -> LogWatch:
    return LogWatch(sec_hub.state_dir / "jupyterhub.log")


@pytest.fixture(scope="session")
def attack_report() -> Iterator[list[Observation]]:
    observations: list[Observation] = []
    yield observations
    if observations:
        REPORT.parent.mkdir(exist_ok=True)
        rows = [
            f"| {o.attack} | {o.status} | {o.message} | `{o.log_line}` |"
            for o in sorted(observations, key=lambda o: o.attack)
        ]
        header = "| attack | HTTP | message shown | hub log |\n|---|---|---|---|"
        REPORT.write_text("\n".join([header, *rows]) + "\n")


@pytest.fixture
def target(
    sec_hub: LocalHub, sec_idp: OpenIDProvider, hub_log: LogWatch, attack_report: list[Observation]
) -> Target:
    return Target(sec_hub, sec_idp, hub_log, attack_report)
