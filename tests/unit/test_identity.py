"""Federated identity without a network: the identity table, provider configuration, nonce,
per-provider trust and the login buttons."""

from __future__ import annotations

import os
import stat
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jupyterhub import apihandlers
from jupyterhub import handlers as page_handlers
from jupyterhub.app import JupyterHub
from jwt.algorithms import RSAAlgorithm
from traitlets.config import Config

from continuum_hub.identity.auth import FederatedAuthenticator
from continuum_hub.identity.identities import IdentityError, IdentityStore, sanitize_username
from continuum_hub.identity.idtoken import IDTokenError, IDTokenValidator
from continuum_hub.identity.login import login_buttons, nonce_for
from continuum_hub.identity.token_api import SignInAgainHandler, TokenHandler

pytestmark = pytest.mark.identity

HOME, PARTNER, THIRD = "https://home.example", "https://partner.example", "https://third.example"
NS_HOME, NS_PARTNER = "urn:mace:home.example", "urn:mace:partner.example"


# ---- identity table ----------------------------------------------------------------------


@pytest.fixture
def store(database) -> IdentityStore:
    """The identity table on SQLite, then on PostgreSQL (``fixtures.databases``)."""
    return IdentityStore(database("identities"))


def resolve(store: IdentityStore, issuer: str, sub: str, provider: str, name: str, **kw) -> str:
    return store.resolve(issuer, sub, provider=provider, suggestion=name, **kw).username


def test_username_is_stable_per_issuer_and_subject(store):
    assert resolve(store, HOME, "s1", "home", "alice") == "alice"
    # a renamed account keeps its hub username; the table is authoritative
    assert resolve(store, HOME, "s1", "home", "alice.renamed") == "alice"
    assert store.lookup(HOME, "s1") == "alice" and store.lookup(HOME, "s2") is None


def test_same_name_at_other_providers_never_collides(store):
    names = [
        resolve(store, HOME, "s1", "home", "alice"),
        resolve(store, PARTNER, "s1", "partner", "alice"),  # same sub, other issuer
        resolve(store, PARTNER, "s2", "partner", "Alice"),
        resolve(store, THIRD, "x", "third", "alice"),
        resolve(store, HOME, "s3", "home", "alice-partner"),
    ]
    # the last one is someone really called alice-partner at home
    assert names == [
        "alice",
        "alice-partner",
        "alice-partner-2",
        "alice-third",
        "alice-partner-home",
    ]


@pytest.mark.parametrize(
    "suggestion,expected",
    [
        ("alice", "alice"),
        ("Alice.Smith", "alice-smith"),
        ("alice@partner.example", "alice"),
        ("Jürgen Müller", "jurgen-muller"),
        ("42nd", "u42nd"),
        ("__svc", "__svc"),
        ("", "user"),
        ("@@@", "user"),
        ("x" * 40, "x" * 32),
        ("../../etc/passwd", "etc-passwd"),
    ],
    ids=[
        "plain",
        "dots",
        "eppn",
        "accents",
        "digit",
        "underscore",
        "empty",
        "symbols",
        "long",
        "path",
    ],
)
def test_suggestions_become_posix_names(suggestion, expected):
    assert sanitize_username(suggestion) == expected


def test_qualified_names_fit_32_characters(store):
    long = "a" * 32
    assert resolve(store, HOME, "1", "home", long) == long
    qualified = resolve(store, PARTNER, "1", "partner", long)
    assert qualified == "a" * 24 + "-partner" and len(qualified) == 32


def test_linking_needs_a_trusted_claim_on_both_sides(store):
    link = ("voperson_id", "bob@home.example")
    assert resolve(store, HOME, "b1", "home", "bob", link=link) == "bob"
    # trusted partner: the same person, whatever they are called there
    assert resolve(store, PARTNER, "b2", "partner", "bbrown", link=link) == "bob"
    # a provider not trusted for the claim passes no link: a new user
    assert resolve(store, THIRD, "b3", "third", "bob") == "bob-third"
    assert [row[0] for row in store.identities_of("bob")] == ["home", "partner"]


def test_a_reserved_name_goes_to_its_provider_before_any_link(store):
    link = ("voperson_id", "bob@home.example")
    # Bob signs in at the partner first: nobody to link to yet, a new user
    assert resolve(store, PARTNER, "b2", "partner", "bbrown", link=link) == "bbrown"
    # at home, "bob" is reserved for the home provider's bob: he keeps his account's name
    identity = store.resolve(
        HOME, "b1", provider="home", suggestion="bob", link=link, reserved=["bob"]
    )
    assert identity.username == "bob" and identity.created and not identity.linked
    # reserved but already given, and the value now names two hub users: no guessing
    identity = store.resolve(
        THIRD, "b3", provider="third", suggestion="bob", link=link, reserved=["bob"]
    )
    assert identity.username == "bob-third" and not identity.linked


def test_link_to_an_identity_recorded_without_trust_is_not_made(store):
    resolve(store, HOME, "c1", "home", "carol")  # its provider was not trusted for the claim
    link = ("voperson_id", "carol@home.example")
    assert resolve(store, PARTNER, "c2", "partner", "carol", link=link) == "carol-partner"


def test_link_never_merges_two_subjects_of_one_issuer(store):
    link = ("voperson_id", "dave@home.example")
    assert resolve(store, HOME, "d1", "home", "dave", link=link) == "dave"
    # a second account at the same issuer claiming the same value is someone else
    assert resolve(store, HOME, "d2", "home", "dave2", link=link) == "dave2"
    # now ambiguous: two usernames carry the value, so nobody is linked
    assert resolve(store, PARTNER, "d3", "partner", "dave", link=link) == "dave-partner"


def test_taken_and_invalid_names_are_skipped(store):
    name = resolve(
        store,
        PARTNER,
        "e1",
        "partner",
        "erin",
        taken={"erin"}.__contains__,
        valid=lambda n: not n.endswith("-partner"),
    )
    assert name == "erin-partner-2"
    with pytest.raises(IdentityError):
        store.resolve(HOME, "e2", provider="home", suggestion="x", valid=lambda n: False)
    with pytest.raises(IdentityError):
        store.resolve(HOME, "", provider="home", suggestion="x")


def test_table_is_private(tmp_path):
    store = IdentityStore(tmp_path / "state" / "identities.sqlite")
    resolve(store, HOME, "s", "home", "alice")
    mode = stat.S_IMODE(os.stat(store.path).st_mode)
    assert mode == 0o600 and stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700


def test_concurrent_first_sign_ins_get_distinct_names(store):
    barrier = threading.Barrier(8)

    def sign_in(number: int) -> str:
        barrier.wait()
        return resolve(store, PARTNER, f"sub-{number}", "partner", "alice")

    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(sign_in, range(8)))
    assert len(set(names)) == 8 and "alice" in names

    def again(_: int) -> str:  # one identity, many concurrent sign-ins: one name
        barrier.wait()
        return resolve(store, HOME, "same", "home", "zoe")

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(again, range(8))) == {"zoe"}


def _allocate_in_process(url: str, number: int) -> str:
    return IdentityStore(url).resolve(PARTNER, f"p{number}", provider="p", suggestion="bo").username


def test_concurrent_allocation_across_processes(store):
    resolve(store, HOME, "first", "home", "bo")
    with ProcessPoolExecutor(4) as pool:
        names = list(pool.map(_allocate_in_process, [store.url] * 12, range(12)))
    assert len(set(names)) == 12 and "bo" not in names


# ---- provider configuration --------------------------------------------------------------


def authenticator(tmp_path: Path, **providers) -> FederatedAuthenticator:
    c = Config()
    c.FederatedAuthenticator.issuer = HOME
    c.FederatedAuthenticator.client_id = "hub"
    c.FederatedAuthenticator.client_secret = "s3cret"
    c.FederatedAuthenticator.provider_name = "home"
    c.FederatedAuthenticator.login_service = "Home IdP"
    c.FederatedAuthenticator.oauth_callback_url = "https://hub.example/hub/oauth_callback"
    c.FederatedAuthenticator.trusted_namespaces = [NS_HOME.removeprefix("urn:")]
    c.FederatedAuthenticator.reserved_usernames = ["alice"]
    c.FederatedAuthenticator.identity_db_path = str(tmp_path / "ids.sqlite")
    c.FederatedAuthenticator.providers = providers
    return FederatedAuthenticator(config=c)


def partner(**extra) -> dict:
    return {
        "issuer": PARTNER,
        "client_id": "hub-at-partner",
        "client_secret": "p",
        "display_name": "Partner",
        "trusted_namespaces": [NS_PARTNER.removeprefix("urn:")],
        **extra,
    }


def test_single_provider_configuration_is_the_primary_provider(tmp_path):
    auth = authenticator(tmp_path)
    assert list(auth.providers_by_name) == ["home"]
    home = auth.primary_provider
    assert (home.issuer, home.client_id, home.display_name) == (HOME, "hub", "Home IdP")
    assert auth.provider_for({}) is home  # auth_state from before several providers
    assert auth.provider_callback_url(home) == "https://hub.example/hub/oauth_callback"


def test_providers_have_their_own_settings_and_redirect_uri(tmp_path):
    secret = tmp_path / "partner-secret"
    secret.write_text("from-file\n")
    auth = authenticator(
        tmp_path, partner=partner(client_secret="", client_secret_file=str(secret))
    )
    assert list(auth.providers_by_name) == ["home", "partner"]
    other = auth.providers_by_name["partner"]
    assert other.client_secret == "from-file" and other.display_name == "Partner"
    assert auth.provider_callback_url(other) == "https://hub.example/hub/oauth_callback/partner"
    assert auth.provider_for({"provider": "partner", "issuer": PARTNER}) is other
    with pytest.raises(KeyError):
        auth.provider_for({"provider": "gone"})
    with pytest.raises(ValueError, match="another issuer"):
        auth.provider_for({"provider": "partner", "issuer": THIRD})


def test_providers_without_a_primary_one(tmp_path):
    c = Config()
    c.FederatedAuthenticator.oauth_callback_url = "https://hub.example/hub/oauth_callback"
    c.FederatedAuthenticator.providers = {"partner": partner(), "third": partner(issuer=THIRD)}
    auth = FederatedAuthenticator(config=c)
    assert auth.primary_provider is None  # /hub/oauth_login shows the choice
    assert auth.provider_for({"provider": "third"}).issuer == THIRD
    with pytest.raises(KeyError):
        auth.provider_for({})
    third = auth.providers_by_name["third"]
    assert auth.provider_callback_url(third) == "https://hub.example/hub/oauth_callback/third"
    assert len(auth.get_handlers(None)) == 12  # 9 of sign-in and tokens, 3 of workshops' links
    auth.auto_login = True  # nowhere to send people automatically
    with pytest.raises(ValueError, match="auto_login"):
        auth.get_handlers(None)
    c.FederatedAuthenticator.providers = {"partner": partner()}
    assert FederatedAuthenticator(config=c).primary_provider.name == "partner"


def test_identity_routes_come_from_the_authenticator(tmp_path):
    """The token API and the sign-in-again page are the authenticator's routes, below /hub/."""
    auth = authenticator(tmp_path)
    handlers = JupyterHub.add_url_prefix("/hub/", auth.get_handlers(None))
    routes = {route[0]: route[1:] for route in handlers}
    assert list(routes) == [
        "/hub/login",
        "/hub/oauth_login",
        "/hub/oauth_login/([a-z0-9-]{1,32})",
        "/hub/oauth_callback",
        "/hub/oauth_callback/([a-z0-9-]{1,32})",
        "/hub/logout",
        "/hub/api/continuum/token",
        "/hub/api/continuum/token/([^/]+)",
        "/hub/continuum/sign-in-again",
        # joining workshop events through their link (continuum_hub.workshops.join)
        "/hub/continuum/join/([A-Za-z0-9_-]{1,64})",
        "/hub/continuum/join/([A-Za-z0-9_-]{1,64})/guest",
        "/hub/continuum/join/([A-Za-z0-9_-]{1,64})/start",
    ]
    refresher = auth.token_refresher()
    assert routes["/hub/api/continuum/token"] == (TokenHandler, {"refresher": refresher})
    assert routes["/hub/api/continuum/token/([^/]+)"] == (TokenHandler, {"refresher": refresher})
    assert routes["/hub/continuum/sign-in-again"] == (SignInAgainHandler,)
    # nothing of identity's is added to JupyterHub's own handler lists any more
    assert not any("continuum/token" in h[0] for h in apihandlers.default_handlers)
    assert not any("sign-in-again" in h[0] for h in page_handlers.default_handlers)


@pytest.mark.parametrize(
    "settings,message",
    [
        (partner(colour="red"), "unknown options"),
        (partner(issuer=HOME), "same issuer"),
        (partner(client_id=""), "lacks client_id"),
        (partner(issuer=""), "lacks issuer"),
        (partner(client_secret=""), "no client_secret"),
        (partner(client_secret="", client_secret_file="/nonexistent"), "cannot read"),
        (partner(id_token_algorithms=["RS256", "HS256"]), "asymmetric"),
        (partner(issuer="ftp://partner.example"), "http"),
        (partner(name="other"), "names itself"),
    ],
    ids=[
        "unknown",
        "issuer-twice",
        "client-id",
        "issuer",
        "secret",
        "secret-file",
        "hmac",
        "scheme",
        "name",
    ],
)
def test_misconfigured_provider_is_refused(tmp_path, settings, message):
    with pytest.raises(Exception, match=message):
        authenticator(tmp_path, partner=settings).providers_by_name  # noqa: B018


@pytest.mark.parametrize("name", ["Partner", "par_tner", "-x", "x" * 33, ""])
def test_provider_names_are_url_safe(tmp_path, name):
    with pytest.raises(Exception, match="must match"):
        authenticator(tmp_path, **{name: partner()}).providers_by_name  # noqa: B018


def test_entitlements_are_trusted_per_provider(tmp_path):
    auth = authenticator(tmp_path, partner=partner())
    home, other = auth.providers_by_name["home"], auth.providers_by_name["partner"]
    claims = {
        "eduperson_entitlement": [
            f"{NS_HOME}:group:continuum-admins:role=member#home",
            f"{NS_PARTNER}:group:vo.hep.example:role=member#partner",
        ]
    }
    assert auth.groups_from_user_info(home, claims) == {"continuum-admins"}
    assert auth.groups_from_user_info(other, claims) == {"vo.hep.example"}
    assert auth.groups_from_user_info(other, {"eduperson_entitlement": {"not": "a list"}}) == set()


async def test_reserved_and_pre_existing_names_go_to_their_provider(tmp_path):
    auth = authenticator(tmp_path, partner=partner())
    auth.add_user(SimpleNamespace(name="olduser"))  # in the hub before the identity table
    home, other = auth.providers_by_name["home"], auth.providers_by_name["partner"]
    info = {"preferred_username": "alice"}
    assert await auth.username_for(other, "p-alice", info) == "alice-partner"
    assert await auth.username_for(home, "h-alice", info) == "alice"
    info = {"preferred_username": "olduser"}
    assert await auth.username_for(other, "p-old", info) == "olduser-partner"
    assert await auth.username_for(home, "h-old", info) == "olduser"


async def test_sign_in_only_through_a_providers_callback(tmp_path):
    auth = authenticator(tmp_path)
    assert await auth.authenticate(SimpleNamespace(), {"username": "alice"}) is None


# ---- nonce -------------------------------------------------------------------------------


@pytest.fixture
def signer():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k", "use": "sig"}

    async def jwks():
        return {"keys": [jwk]}

    def token(**claims):
        now = int(time.time())
        body = {"iss": HOME, "aud": "hub", "sub": "s", "iat": now, "exp": now + 60, **claims}
        return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k"})

    return IDTokenValidator(HOME, "hub", jwks), token


async def test_nonce_must_be_the_one_sent(signer):
    validator, token = signer
    assert (await validator.validate(token(nonce="n-123"), nonce="n-123"))["sub"] == "s"
    for bad in (token(nonce="n-999"), token(), token(nonce=123)):
        with pytest.raises(IDTokenError, match="nonce"):
            await validator.validate(bad, nonce="n-123")
    # tokens not bound to a sign-in (refresh responses) are checked without one
    assert (await validator.validate(token()))["sub"] == "s"


def test_the_nonce_sent_is_a_hash_of_the_cookies_secret():
    assert nonce_for("secret") == nonce_for("secret") != nonce_for("secret2")
    assert "secret" not in nonce_for("secret") and len(nonce_for("secret")) == 43


# ---- login page --------------------------------------------------------------------------


def test_login_buttons_escape_names_and_mark_the_last_provider():
    providers = [
        SimpleNamespace(name="home", display_name="Home <IdP>"),
        SimpleNamespace(name="partner", display_name='Partner "proxy"'),
    ]
    html = login_buttons(providers, "/hub/", "/hub/spawn?x=1&y=2", last="partner")
    assert "Home &lt;IdP&gt;" in html and "<IdP>" not in html
    assert "Partner &#34;proxy&#34;" in html
    assert 'href="/hub/oauth_login/home?next=%2Fhub%2Fspawn%3Fx%3D1%26y%3D2"' in html
    marked = html.split("used last time")[0].rsplit("<a ", 1)[-1]
    assert 'data-provider="partner"' in marked and "btn-jupyter" in marked
    plain = login_buttons(providers, "/hub/", "", last="")
    assert "used last time" not in plain and 'href="/hub/oauth_login/partner"' in plain
