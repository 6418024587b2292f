"""ID token validation against the real OpenID provider's keys."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request

import pytest

from continuum_hub.identity.idtoken import IDTokenError, IDTokenValidator
from fixtures.hub import api, hub_login
from fixtures.idp import login_code_flow

pytestmark = pytest.mark.integration


def validator_for(idp) -> IDTokenValidator:
    def read_jwks():
        with urllib.request.urlopen(idp.metadata()["jwks_uri"], timeout=10) as response:
            return json.load(response)

    async def fetch_jwks():
        return await asyncio.to_thread(read_jwks)

    return IDTokenValidator(idp.issuer, idp.client_id, fetch_jwks)


async def test_real_id_token_validates_and_a_tampered_one_does_not(idp):
    tokens = login_code_flow(idp, "alice", idp.passwords["alice"])["tokens"]
    validator = validator_for(idp)
    claims = await validator.validate(tokens["id_token"])
    assert claims["aud"] == idp.client_id and claims["iss"] == idp.issuer
    header, payload, signature = tokens["id_token"].split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(IDTokenError, match="InvalidSignatureError"):
        await validator.validate(f"{header}.{forged}.{signature}")


def test_hub_signs_in_with_a_validated_id_token(hub, idp):
    hub_login(hub, idp, "bob")
    assert api(hub, "GET", "/users/bob").json()["name"] == "bob"
