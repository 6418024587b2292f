"""The lab's front door (issue 18) on the real stack, in Debian's Chromium driven by Playwright.

An axe-core check of the hub's login, spawn and pending pages; alice's fresh JupyterLab shows
the *Continuum* section on the Launcher with our cards and a *Continuum* menu that opens each
panel; the Jupyter news prompt never shows (the wheel's ``overrides.json``); each panel is
photographed at 280 px and 600 px (``test-results/front-door/``, not committed) and checked by
axe-core, and Tab walks through its controls with a visible focus; no cell of the clusters
table overflows its panel. axe-core findings outside our code (stock JupyterLab/JupyterHub) are
printed, ours fail the test.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from fixtures.browser import RESULTS, sign_in
from fixtures.gateway import HubGateway
from fixtures.hub import stop_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.lab,
    pytest.mark.gateway,
]

# what our code renders: the hub's provider buttons and spawn form, the lab's panels, cards, menu
OURS = ", ".join(
    [
        "#provider-login",
        "#spawn_form",
        '[id^="continuum-"]',
        '[class*="jp-Continuum"]',
        "#jp-mainmenu-continuum",
        '.jp-LauncherCard[data-category="Continuum"]',
    ]
)
# stock parts inside those: JupyterHub's *Start* button below our spawn form's fields
STOCK_INSIDE = ".btn-jupyter"
# (Launcher card text, Continuum menu item, panel id) in rank order; None: no panel (a dialog)
FRONT_DOOR = [
    ("New Dask Cluster", "New Dask Cluster", None),
    ("Dask clusters", "Show Dask Clusters", "continuum-clusters-panel"),
    ("Session", "Show Session Job Details", "continuum-session-panel"),
    ("Batch runs", "Show Batch Runs", "continuum-workflows-panel"),
    ("Catalogue", "Show Catalogue", "continuum-catalogue-panel"),
    ("Usage", "Show Usage", "continuum-usage-panel"),
]
PANELS = [panel for _, _, panel in FRONT_DOOR if panel]
SHOTS = RESULTS / "front-door"
SERIOUS = {"serious", "critical"}


def axe_check(page: Page, axe: Axe, where: str) -> list[str]:
    """Run axe-core on the page; print every serious/critical violation, return ours.

    A violation is ours when one of its nodes lies inside what :data:`OURS` selects (and
    outside :data:`STOCK_INSIDE`).
    """
    violations = axe.run(page).response["violations"]
    ours: list[str] = []
    for violation in violations:
        if violation["impact"] not in SERIOUS:
            continue
        targets = [node["target"][0] for node in violation["nodes"] if node["target"]]
        inside: list[str] = page.evaluate(
            """([targets, ours, stock]) => targets.filter(t => {
                   const node = document.querySelector(t);
                   return node?.closest(ours) != null && node.closest(stock) == null;
               })""",
            [targets, OURS, STOCK_INSIDE],
        )
        line = f"{where}: {violation['impact']} {violation['id']} ({violation['help']})"
        if inside:
            ours.append(f"{line} at {inside}")
        else:
            print(f"stock finding, not ours — {line}: {targets[:3]}")
    return ours


def set_sidebar_width(page: Page, width: int) -> None:
    """Drag the handle between the main area and the right side bar until the bar is ``width``."""
    stack = page.locator("#jp-right-stack")
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:not(.lm-mod-hidden)").last
    for _ in range(3):
        box, grip = stack.bounding_box(), handle.bounding_box()
        assert box and grip
        if abs(box["width"] - width) <= 4:
            return
        y = grip["y"] + grip["height"] / 2
        page.mouse.move(grip["x"] + grip["width"] / 2, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] - width - grip["width"] / 2, y, steps=4)
        page.mouse.up()
    box = stack.bounding_box()
    assert box and abs(box["width"] - width) <= 4, f"side bar is {box} wide, not {width}"


def open_from_menu(page: Page, item: str) -> None:
    """Open the *Continuum* main menu and click ``item``."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Continuum$")).click()
    menu = page.locator("#jp-mainmenu-continuum")
    expect(menu).to_be_visible()
    menu.get_by_text(item, exact=True).click()


def check_keyboard(page: Page, panel_id: str) -> list[str]:
    """Tab from the panel's first control through all of them: each takes the focus in turn and
    shows it (an outline or a ring); returns the controls that do not."""
    controls = page.locator(
        f"#{panel_id} :is(button, input, select, textarea, a[href]):visible:not([disabled])"
    )
    count = controls.count()
    problems = [] if count else [f"{panel_id}: no control to reach"]
    controls.first.focus()
    for index in range(count):
        if index:
            page.keyboard.press("Tab")
        control = controls.nth(index)
        focused, shown, name = control.evaluate(
            """node => {
                const style = getComputedStyle(node);
                const ring = style.outlineStyle !== 'none' && style.outlineWidth !== '0px';
                return [node === document.activeElement,
                        ring || style.boxShadow !== 'none',
                        node.getAttribute('aria-label') || node.textContent.trim()
                          || node.getAttribute('placeholder') || node.outerHTML.slice(0, 80)];
            }"""
        )
        if not focused:
            problems.append(f"{panel_id}: Tab does not reach {name!r}")
        elif not shown:
            problems.append(f"{panel_id}: no visible focus on {name!r}")
    return problems


def overflowing_cells(page: Page) -> list[dict[str, Any]]:
    """Cells of the clusters table (and the panel itself) wider than their box."""
    result: list[dict[str, Any]] = page.evaluate(
        """() => {
            const panel = document.getElementById('continuum-clusters-panel');
            const nodes = [panel, ...panel.querySelectorAll('th, td')];
            return nodes.filter(n => n.scrollWidth > n.clientWidth + 1)
              .map(n => ({field: n.dataset.field ?? n.id, scroll: n.scrollWidth,
                          client: n.clientWidth}));
        }"""
    )
    return result


def test_front_door_panels_fit_and_are_accessible(
    page: Page, hub, idp, slurm_sites, gateway: HubGateway
) -> None:
    axe = Axe()
    ours: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    client = gateway.client(gateway.token("alice"))
    try:
        # a cluster for the clusters table (it need not finish starting)
        client.submit(site="alpha", worker_cores=1, worker_memory_gb=1)

        page.goto(f"{hub.url}/hub/login")
        expect(page.locator("#provider-login")).to_be_visible()
        ours += axe_check(page, axe, "login page")
        sign_in(page, hub.url, "alice", idp.passwords["alice"])
        page.wait_for_url(re.compile(r"/hub/spawn"))
        expect(page.locator("#spawn_form")).to_be_visible()
        ours += axe_check(page, axe, "spawn page")
        page.select_option("select[name=target]", "alpha/interactive")
        page.get_by_role("button", name="Start").click()
        page.wait_for_url(re.compile(r"/hub/spawn-pending/alice"))
        ours += axe_check(page, axe, "pending page")
        page.wait_for_url(re.compile(r"/user/alice/lab"), timeout=240_000)

        # a fresh workspace opens on the Launcher
        page.goto(f"{hub.url}/user/alice/lab?reset")
        cards = page.locator('.jp-LauncherCard[data-category="Continuum"]')
        expect(cards).to_have_count(len(FRONT_DOOR), timeout=120_000)
        expect(cards.locator(".jp-LauncherCard-label")).to_have_text(
            [card for card, _, _ in FRONT_DOOR]
        )
        section = page.locator(".jp-Launcher-section", has=cards.first)
        expect(section.locator(".jp-Launcher-sectionTitle")).to_have_text("Continuum")
        section.screenshot(path=str(SHOTS / "launcher-section.png"))

        # the menu opens each panel; each is photographed narrow and wide and checked by axe
        for width in (280, 600):
            for _, item, panel_id in FRONT_DOOR[1:]:
                open_from_menu(page, item)
                panel = page.locator(f"#{panel_id}")
                expect(panel).to_be_visible()
                set_sidebar_width(page, width)
                panel.screenshot(path=str(SHOTS / f"{panel_id}-{width}px.png"))
                if width == 600:
                    ours += axe_check(page, axe, f"lab with {panel_id}")
                    ours += check_keyboard(page, panel_id)
            open_from_menu(page, "Show Dask Clusters")
            row = page.locator("#continuum-clusters-panel tbody tr").first
            expect(row).to_be_visible(timeout=30_000)
            assert not overflowing_cells(page), (width, overflowing_cells(page))
            # narrow: one card per cluster (its cells one under the other); wide: a table
            display = row.locator('td[data-field="status"]').evaluate(
                "cell => getComputedStyle(cell).display"
            )
            assert display == ("block" if width == 280 else "table-cell"), (width, display)
        print(f"screenshots: {SHOTS}")
        expect(page.get_by_text(re.compile("official Jupyter news"))).to_have_count(0)
        assert not ours, "\n".join(ours)
    finally:
        for report in client.list_clusters():
            client.stop_cluster(report.name)
        client.close()
        stop_server(hub, "alice")
