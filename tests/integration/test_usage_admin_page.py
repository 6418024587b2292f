"""The admins' usage page ``/hub/continuum/usage`` on the real hub, over HTTP.

alice's and bob's jobs are written into the hub's ledger (:mod:`fixtures.usage_views`); dave
(an admin of the demo federation) sees both per user and per VO, downloads every job as CSV
from the page's link, and sets and removes bob's budget override through the API the page's
form calls (with the page's XSRF token, as the form sends it); alice, no admin, gets 403 for the
page and for everyone's CSV.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from html import unescape

import pytest
import requests

from fixtures.hub import hub_login
from fixtures.usage_views import Seeded, seeded_usage

pytestmark = [pytest.mark.integration, pytest.mark.operations]

PAGE = "/hub/continuum/usage"


@pytest.fixture
def seeded(hub) -> Iterator[Seeded]:
    with seeded_usage(hub.state_dir) as jobs:
        yield jobs
        jobs.ledger.set_override("bob", None)


def row_of(page: str, name: str) -> str:
    """The table row of ``name`` in the page's per-user table (its HTML)."""
    table = page.split('id="usage-by-user"', 1)[1].split("</table>", 1)[0]
    found = re.search(rf'<tr data-name="{re.escape(name)}">(.*?)</tr>', table, re.S)
    assert found, f"no row of {name} in the per-user table"
    return found.group(1)


def cell(row: str, field: str) -> str:
    found = re.search(rf'data-field="{field}">(.*?)</td>', row, re.S)
    assert found, field
    return unescape(found.group(1)).strip()


def test_admins_see_everyone_and_download_the_csv(hub, idp, seeded: Seeded) -> None:
    dave = hub_login(hub, idp, "dave")
    page = dave.get(f"{hub.url}{PAGE}", timeout=30)
    assert page.status_code == 200, page.text[:500]
    html = page.text
    assert "<h1>Usage</h1>" in html
    # per user: alice's three jobs (2 + 2 + 2 core-hours), bob's one (8)
    alice, bob = row_of(html, "alice"), row_of(html, "bob")
    assert int(cell(alice, "jobs")) >= 3
    assert int(cell(bob, "jobs")) >= 1
    assert float(cell(bob, "core_hours")) >= 8 * 0.99
    # per VO
    vo_table = html.split('id="usage-by-vo"', 1)[1].split("</table>", 1)[0]
    assert 'data-name="vo.hep.example"' in vo_table
    assert 'data-name="vo.radio.example"' in vo_table

    link = re.search(r'id="usage-csv" href="([^"]+)"', html)
    assert link, "no CSV link"
    download = dave.get(f"{hub.url}{unescape(link.group(1))}", timeout=30)
    assert download.status_code == 200, download.text[:300]
    assert download.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    ids = {row["job_id"]: row["user"] for row in rows}
    for user, jobs in seeded.jobs.items():
        for job in jobs:
            assert ids.get(job.job_id) == user, (job.job_id, user)


def test_the_override_form_sets_and_removes_a_budget(hub, idp, seeded: Seeded) -> None:
    hub_login(hub, idp, "bob")  # a user the hub knows
    dave = hub_login(hub, idp, "dave")
    html = dave.get(f"{hub.url}{PAGE}", timeout=30).text
    xsrf = re.search(r'xsrf_token: "([^"]+)"', html)
    form = re.search(r'id="budget-override"[^>]*data-url="([^"]+)"', html)
    assert xsrf and form
    url = f"{hub.url}{unescape(form.group(1))}/bob"
    headers = {"X-XSRFToken": xsrf.group(1), "Content-Type": "application/json"}

    set_it = dave.put(url, json={"core_hours": 5}, headers=headers, timeout=30)
    assert set_it.status_code == 200, set_it.text
    assert seeded.ledger.override("bob") == {"core_hours": 5.0}
    assert cell(row_of(dave.get(f"{hub.url}{PAGE}", timeout=30).text, "bob"), "override") == (
        "core_hours ≤ 5"
    )
    # without the page's token the browser's cookie alone does not do
    forged = dave.put(url, json={"core_hours": 1e6}, timeout=30)
    assert forged.status_code == 403
    removed = dave.put(url, data="null", headers=headers, timeout=30)
    assert removed.status_code == 200, removed.text
    assert seeded.ledger.override("bob") is None


def test_anyone_else_is_refused(hub, idp, seeded: Seeded) -> None:
    alice = hub_login(hub, idp, "alice")
    assert alice.get(f"{hub.url}{PAGE}", timeout=30).status_code == 403
    everyone = alice.get(
        f"{hub.url}/hub/api/continuum/usage", params={"user": "*", "format": "csv"}, timeout=30
    )
    assert everyone.status_code == 403
    # nobody signed in: the login page
    anonymous = requests.get(f"{hub.url}{PAGE}", allow_redirects=False, timeout=30)
    assert anonymous.status_code == 302
    assert "/hub/login" in anonymous.headers["Location"]
