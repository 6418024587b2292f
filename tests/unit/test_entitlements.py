"""AARC-G069 entitlement parsing and the trust filter."""

import pytest

from continuum_hub.identity.entitlements import (
    Entitlement,
    EntitlementError,
    group_name,
    parse_entitlement,
    trusted_entitlements,
)

VALID = [
    (
        "urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu",
        Entitlement("mace:egi.eu", ("vo.example.org",), "member", "aai.egi.eu"),
    ),
    (
        "urn:mace:egi.eu:group:vo.example.org:analysis:higgs:role=manager#aai.egi.eu",
        Entitlement(
            "mace:egi.eu", ("vo.example.org", "analysis", "higgs"), "manager", "aai.egi.eu"
        ),
    ),
    (
        "urn:geant:h-df.de:group:myExampleColab#unity.helmholtz.de",
        Entitlement("geant:h-df.de", ("myExampleColab",), "member", "unity.helmholtz.de"),
    ),
    (
        "urn:mace:egi.eu:group:vo.example.org",
        Entitlement("mace:egi.eu", ("vo.example.org",), "member", None),
    ),
    (
        "urn%3Amace%3Aegi.eu%3Agroup%3Avo.example.org%3Arole%3Dmember%23aai.egi.eu",
        Entitlement("mace:egi.eu", ("vo.example.org",), "member", "aai.egi.eu"),
    ),
    (
        "URN:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu",
        Entitlement("mace:egi.eu", ("vo.example.org",), "member", "aai.egi.eu"),
    ),
]

MALFORMED = [
    ("", "not a URN"),
    ("vo.example.org", "not a URN"),
    ("urn:mace:egi.eu:vo.example.org:role=member#aai.egi.eu", "no ':group:'"),
    ("urn:mace:group:vo.example.org", "no valid namespace"),
    ("urn:mace:egi.eu:group:role=member#aai.egi.eu", "names no group"),
    ("urn:mace:egi.eu:group::role=member", "invalid segment"),
    ("urn:mace:egi.eu:group:vo example:role=member", "whitespace"),
    ("urn:mace:egi.eu:group:vo.example.org:role=#aai.egi.eu", "invalid role"),
    ("urn:mace:egi.eu:group:vo.example.org#bad!authority", "invalid authority"),
    ("urn%253Amace%253Aegi.eu%253Agroup%253Avo", "encoded more than once"),
    ("urn:mace:egi.eu:group:vo;rm -rf /", "whitespace"),
    ("urn:mace:egi.eu:group:vo.example.org:role=member:sub", "invalid segment"),
    ("urn:mace:egi.eu:group:" + "a" * 2000, "longer than"),
]


@pytest.mark.parametrize("value,expected", VALID, ids=[v[0][:60] for v in VALID])
def test_valid(value, expected):
    assert parse_entitlement(value) == expected


@pytest.mark.parametrize("value,message", MALFORMED, ids=[m[0][:50] or "empty" for m in MALFORMED])
def test_malformed(value, message):
    with pytest.raises(EntitlementError, match=message):
        parse_entitlement(value)


def test_non_string_is_refused():
    with pytest.raises(EntitlementError):
        parse_entitlement(["urn:mace:egi.eu:group:vo"])  # type: ignore[arg-type]


def test_round_trip_and_group_names():
    ent = parse_entitlement("urn:mace:egi.eu:group:vo.example.org:sub:role=owner#aai.egi.eu")
    assert str(ent) == "urn:mace:egi.eu:group:vo.example.org:sub:role=owner#aai.egi.eu"
    assert ent.vo == "vo.example.org"
    assert group_name(ent) == "vo.example.org:sub#owner"
    member = parse_entitlement("urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu")
    assert group_name(member) == "vo.example.org"


TRUST = [
    ("urn:mace:egi.eu:group:vo.a:role=member#aai.egi.eu", True, "trusted"),
    ("urn:mace:EGI.eu:group:vo.a:role=member#AAI.egi.eu", True, "case-insensitive"),
    ("urn:mace:evil.example:group:vo.a:role=member#aai.egi.eu", False, "wrong-namespace"),
    ("urn:mace:egi.eu:group:vo.a:role=member#evil.example", False, "wrong-authority"),
    ("urn:mace:egi.eu:group:vo.a:role=member", False, "missing-authority"),
    ("not an entitlement", False, "malformed"),
]


@pytest.mark.parametrize("value,kept,_id", TRUST, ids=[t[2] for t in TRUST])
def test_trust_filter(value, kept, _id):
    accepted, rejected = trusted_entitlements([value], ["mace:egi.eu"], ["aai.egi.eu"])
    assert bool(accepted) is kept
    assert bool(rejected) is not kept


def test_any_authority_when_not_configured():
    accepted, _ = trusted_entitlements(["urn:mace:egi.eu:group:vo.a"], ["mace:egi.eu"], None)
    assert [e.vo for e in accepted] == ["vo.a"]


def test_non_string_values_are_rejected_not_raised():
    accepted, rejected = trusted_entitlements([42, None], ["mace:egi.eu"])
    assert accepted == [] and len(rejected) == 2
