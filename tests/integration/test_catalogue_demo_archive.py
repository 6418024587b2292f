"""The demo archive as users find it through the hub's ``catalogue`` service.

The session ``hub``'s built-in source ``demo`` harvests the demo archive (``fixtures.catalogue``:
262 files on alpha and beta, a STAC catalogue, a CSV list) in the service's background after
the hub starts.  Through the proxy, with hub tokens: every format is there, the calibrators
present on both sites are one entry with two replicas, and the radio VO's private data is
alice's (radio) and not bob's (HEP only), in results, counts and by id.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import requests

from continuum_federation.hub import LocalHub
from continuum_federation.idp import OpenIDProvider
from continuum_hub.catalogue import ACCESS_SCOPE, API_PREFIX
from fixtures.gateway import user_token
from fixtures.slurm import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.catalogue]

#: entries of the demo archive: alpha's 140 files, beta's 122 less the 20 shared, 8 STAC
#: items, 4 listed datasets
ALL = 140 + 102 + 8 + 4
#: those private to the radio VO: the deep field (10 files) and one listed dataset
PRIVATE = 11
SHARED = "demo:alpha/archive/radio/shared/calibrator-000.fits"
DEEP = "demo:beta/archive/radio/private/deep-000.fits"


def call(hub: LocalHub, token: str, path: str, **params: Any) -> requests.Response:
    return requests.get(
        f"{hub.url}{API_PREFIX}/{path}",
        params=params,
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )


def total(hub: LocalHub, token: str) -> int:
    response = call(hub, token, "search", source="demo", limit=1)
    return int(response.json()["total"]) if response.status_code == 200 else 0


def test_demo_archive_through_the_service(hub: LocalHub, idp: OpenIDProvider) -> None:
    alice = user_token(hub, idp, "alice", [ACCESS_SCOPE])
    bob = user_token(hub, idp, "bob", [ACCESS_SCOPE])
    wait_until(lambda: total(hub, alice) == ALL, timeout=120, interval=1.0, what="the harvest")
    found = call(hub, alice, "search", source="demo", facets=1, limit=5).json()
    assert set(found["facets"]["format"]) >= {"root", "parquet", "fits", "netcdf", "hdf5", "zarr"}
    assert found["facets"]["site"]["alpha"] >= 140 and found["facets"]["site"]["beta"] >= 122
    shared = call(hub, alice, f"entries/{quote(SHARED, safe='')}").json()
    assert shared["sites"] == ["alpha", "beta"] and len(shared["replicas"]) == 2
    deep = call(hub, alice, f"entries/{quote(DEEP, safe='')}").json()
    assert (deep["visibility"], deep["vo"], deep["title"]) == (
        "vo",
        "vo.radio.example",
        "Deep field, first pointing",
    )
    # bob (HEP only): the same archive less the radio VO's private entries
    assert total(hub, bob) == ALL - PRIVATE
    seen = call(hub, bob, "search", q="deep field", source="demo", limit=50).json()
    assert not [e for e in seen["entries"] if e["visibility"] == "vo"]
    assert call(hub, bob, f"entries/{quote(DEEP, safe='')}").status_code == 404
