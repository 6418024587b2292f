"""ID token validation: each way a token can be wrong is refused (keys made in the test)."""

import asyncio
import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from continuum_hub.identity.idtoken import IDTokenError, IDTokenValidator

ISSUER, CLIENT = "https://aai.example.org", "continuum-hub"


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key, kid):
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


class Provider:
    """Publishes a JWKS and signs tokens; counts JWKS fetches."""

    def __init__(self):
        self.keys = {"k1": rsa_key()}
        self.fetches = 0

    async def jwks(self):
        self.fetches += 1
        return {"keys": [jwk(key, kid) for kid, key in self.keys.items()]}

    def token(self, kid="k1", key=None, alg="RS256", **claims):
        now = int(time.time())
        body = {"iss": ISSUER, "aud": CLIENT, "sub": "abc", "iat": now, "exp": now + 300}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.keys[kid], algorithm=alg, headers={"kid": kid})


@pytest.fixture
def provider():
    return Provider()


@pytest.fixture
def validator(provider):
    return IDTokenValidator(ISSUER, CLIENT, provider.jwks, refetch_interval=0)


async def test_valid_token(provider, validator):
    claims = await validator.validate(provider.token())
    assert claims["sub"] == "abc"


def unsigned(claims):
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'kid': 'k1'})}.{part(claims)}."


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda p: p.token(key=rsa_key()), "InvalidSignatureError"),
        (lambda p: p.token(iss="https://evil.example.org"), "InvalidIssuerError"),
        (lambda p: p.token(aud="other-client"), "InvalidAudienceError"),
        (lambda p: p.token(exp=int(time.time()) - 1), "ExpiredSignatureError"),
        (lambda p: p.token(iat=int(time.time()) + 600), "ImmatureSignatureError"),
        (lambda p: p.token(aud=[CLIENT, "other"], azp="other"), "authorized party"),
        (lambda p: p.token(aud=[CLIENT, "other"]), "authorized party"),
        (lambda p: p.token(sub=None), "sub"),
        (lambda p: p.token(kid="unknown"), "no key 'unknown'"),
        (lambda p: unsigned({"iss": ISSUER, "aud": CLIENT, "sub": "x"}), "'none' is not accepted"),
        (lambda p: "not-a-jwt", "not a JWT"),
    ],
    ids=[
        "forged-signature",
        "wrong-iss",
        "wrong-aud",
        "expired",
        "iat-future",
        "azp-mismatch",
        "azp-missing-multi-aud",
        "no-sub",
        "unknown-kid",
        "alg-none",
        "garbage",
    ],
)
async def test_refused(provider, validator, make, reason):
    if reason == "no key 'unknown'":
        provider.keys["unknown"] = rsa_key()
        token = make(provider)
        del provider.keys["unknown"]
    else:
        token = make(provider)
    with pytest.raises(IDTokenError, match=reason):
        await validator.validate(token)


async def test_hmac_is_refused(validator):
    # HS256 "signed" with the provider's public key is the classic algorithm-confusion attack
    body = {"iss": ISSUER, "aud": CLIENT, "sub": "x", "iat": 1, "exp": 2**31}
    token = jwt.encode(body, "public-key-bytes", algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(IDTokenError, match="'HS256' is not accepted"):
        await validator.validate(token)


async def test_key_rotation_is_picked_up_without_restart(provider, validator):
    await validator.validate(provider.token())
    provider.keys = {"k2": rsa_key()}  # the provider rotates its key
    claims = await validator.validate(provider.token(kid="k2"))
    assert claims["sub"] == "abc" and provider.fetches == 2


async def test_unknown_kids_do_not_hammer_the_provider(provider):
    validator = IDTokenValidator(ISSUER, CLIENT, provider.jwks, refetch_interval=3600)
    await validator.validate(provider.token())
    for _ in range(5):
        with pytest.raises(IDTokenError):
            await validator.validate(provider.token(kid="nope", key=rsa_key()))
    assert provider.fetches == 1


async def test_a_burst_on_a_fresh_validator_shares_one_fetch(provider):
    """Sign-ins arriving while the first JWKS fetch is under way wait for it (a workshop's
    first minute on a freshly started hub): none is refused, the provider is asked once."""
    slow = Provider()
    slow.keys = provider.keys

    async def jwks():
        await asyncio.sleep(0.2)
        return await slow.jwks()

    validator = IDTokenValidator(ISSUER, CLIENT, jwks, refetch_interval=3600)
    tokens = [provider.token(sub=f"user{i}") for i in range(20)]
    claims = await asyncio.gather(*(validator.validate(t) for t in tokens))
    assert [c["sub"] for c in claims] == [f"user{i}" for i in range(20)]
    assert slow.fetches == 1


async def test_a_failed_fetch_fails_its_waiters_and_the_next_one_is_fresh(provider):
    calls = 0

    async def jwks():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        if calls == 1:
            raise OSError("provider unreachable")
        return await provider.jwks()

    validator = IDTokenValidator(ISSUER, CLIENT, jwks, refetch_interval=0)
    outcomes = await asyncio.gather(
        *(validator.validate(provider.token()) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, OSError) for o in outcomes) and calls == 1
    assert (await validator.validate(provider.token()))["sub"] == "abc" and calls == 2


def test_unsafe_algorithms_cannot_be_configured(provider):
    for algorithms in (["none"], ["HS256"], ["RS256", "HS512"]):
        with pytest.raises(ValueError, match="must not be accepted"):
            IDTokenValidator(ISSUER, CLIENT, provider.jwks, algorithms=algorithms)
