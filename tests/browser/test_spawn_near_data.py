"""The spawn form near the data, in Debian's Chromium: the reason for the site on the estimate
line as the user decides whether a transfer is acceptable."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from fixtures.browser import sign_in
from fixtures.hub import forget_named_servers

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.catalogue]


@pytest.fixture
def near_alpha_forgotten(hub):
    """The form's page makes the named server ``near-alpha`` (kept though nothing starts): the
    hub allows three per user, so it is removed afterwards."""
    yield
    forget_named_servers(hub, "alice")


def test_form_says_why_a_site_is_chosen(page: Page, hub, idp, near_alpha_forgotten) -> None:
    sign_in(page, hub.url, "alice", idp.passwords["alice"])
    page.wait_for_url(re.compile(r"/hub/(spawn|home)"))
    # a GPU fits beta only, and the data is at alpha: the form comes back with the reason
    page.goto(
        f"{hub.url}/hub/spawn/alice/near-alpha?site=soonest&data_sites=alpha&gpus=1"
        "&datasets=demo:hep/run-1.root"
    )
    expect(page.get_by_text("it is at: alpha").first).to_be_visible()
    expect(page.locator("#ch-data")).to_contain_text("demo:hep/run-1.root")
    expect(page.locator("select[name=target]")).to_have_value("soonest/")
    page.fill("input[name=gpus]", "1")
    line = page.locator("#ch-estimate")
    expect(line).to_contain_text("holds the data", timeout=30_000)
    # accepting a transfer: beta, and why
    page.check("#ch-transfer")
    expect(line).to_contain_text(
        re.compile(r"^beta: no replica \(transfer requested\), starts .*\(partition gpu\)"),
        timeout=30_000,
    )
    # without a GPU alpha holds the data and fits
    page.uncheck("#ch-transfer")
    page.fill("input[name=gpus]", "0")
    expect(line).to_contain_text(re.compile(r"^alpha: data present, starts "), timeout=30_000)
