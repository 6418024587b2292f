"""The instructors' events page (``continuum_hub.workshops.events_page``): which sites and
partitions the form offers, what the page lists to whom, and its template rendered.

The manager is a real :class:`~continuum_hub.workshops.manager.EventManager` on a SQLite store
and the demo registry; the template is rendered by Jinja with the real templates and a stand-in
for JupyterHub's ``page.html`` (its blocks only).  The page served by a hub (403 for people who
are not instructors) is tested in ``tests/integration/test_workshop_events_page.py``, the form
in Chromium in ``tests/browser/test_workshop_browser.py``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
from jupyterhub import handlers as hub_handlers
from test_workshop_events import NOW, make_event_of
from traitlets.config import Config

from continuum_hub.sharing.page import TEMPLATES as SHARING_TEMPLATES
from continuum_hub.workshops.events_page import (
    PAGE_ROUTE,
    TEMPLATE,
    TEMPLATES,
    EventsPageHandler,
    add_events_page,
    events_link,
    page_model,
    targets,
)
from continuum_hub.workshops.manager import EventManager
from continuum_spawners.sites import SiteRegistry

pytestmark = pytest.mark.workshops

DEMO = Path(__file__).resolve().parents[2] / "hub-config" / "sites.demo.yaml"
SLURM_CONFS = {"CONTINUUM_SLURM_CONF_ALPHA": "/a", "CONTINUUM_SLURM_CONF_BETA": "/b"}
#: JupyterHub's page.html reduced to the blocks our template fills
PAGE = "{% block main %}{% endblock %}{% block script %}{% endblock %}"


def person(name: str, *groups: str, admin: bool = False) -> SimpleNamespace:
    return SimpleNamespace(name=name, admin=admin, groups=[SimpleNamespace(name=g) for g in groups])


ALICE = person("alice", "vo.hep.example", "vo.hep.example#instructor")


@pytest.fixture
def manager(tmp_path, monkeypatch) -> EventManager:
    for key, value in SLURM_CONFS.items():
        monkeypatch.setenv(key, value)
    return EventManager(
        db_url=f"sqlite:///{tmp_path / 'events.sqlite'}",
        registry_path=str(DEMO),
        material_roots=["/srv/material"],
    )


def test_targets_follow_the_groups():
    registry = SiteRegistry.from_file(DEMO, SLURM_CONFS)
    hep = targets(registry, {"vo.hep.example"}, admin=False)
    assert [t["value"] for t in hep] == ["alpha/interactive", "alpha/batch"]
    assert hep[0]["max_cores"] == 4 and hep[0]["max_walltime"] == "8:00"
    assert hep[0]["environments"] == [{"name": "python", "label": "Python 3.11 · JupyterLab"}]
    assert hep[0]["reservations"] is True
    everything = [t["value"] for t in targets(registry, set(), admin=True)]
    assert everything == ["alpha/interactive", "alpha/batch", "beta/gpu"]
    assert targets(registry, {"vo.other"}, admin=False) == []


def test_model_lists_own_events_with_links(manager):
    mine, other = make_event_of("alice"), make_event_of("carol")
    manager.store.add(mine)
    manager.store.add(other)
    model = page_model(manager, ALICE, "/hub/", NOW)
    assert [row["id"] for row in model["events"]] == [mine.id]
    row = model["events"][0]
    assert row["join_url"] == f"/hub/continuum/join/{mine.join_code}"
    assert row["instructor_url"] == f"/hub/continuum/events/{mine.id}/instructor"
    assert (row["seats"], row["taken"], row["guest_seats"], row["has_material"]) == (10, 0, 2, True)
    assert model["vos"] == ["vo.hep.example"]
    assert model["material_roots"] == ["/srv/material"]
    admin = page_model(manager, person("dave", "admins", admin=True), "/hub/", NOW)
    assert {row["id"] for row in admin["events"]} == {mine.id, other.id}
    assert admin["vos"] is None  # admins type the VOs


def render(**model) -> str:
    loader = jinja2.ChoiceLoader(
        [
            jinja2.DictLoader({"page.html": PAGE}),
            jinja2.FileSystemLoader([str(TEMPLATES), str(SHARING_TEMPLATES)]),
        ]
    )
    env = jinja2.Environment(loader=loader, autoescape=True)
    return env.get_template(TEMPLATE).render(
        user=ALICE,
        api_url="/hub/api/continuum/events",
        join_base="/hub/continuum/join",
        instructor_base="/hub/continuum/events",
        **model,
    )


def test_form_renders_the_partitions_and_events(manager):
    ev = make_event_of("alice")
    manager.store.add(replace(ev, title="<Intro & Dask>"))
    html = render(**page_model(manager, ALICE, "/hub/", NOW))
    options = re.findall(r'<option value="([^"]+)">', html)
    assert options[:2] == ["alpha/interactive", "alpha/batch"] and "beta/gpu" not in options
    assert 'value="vo.hep.example" checked' in html
    assert "&lt;Intro &amp; Dask&gt;" in html and "<Intro" not in html  # escaped
    assert f'data-push="{ev.id}"' in html  # it has material
    assert f'href="/hub/continuum/events/{ev.id}/instructor"' in html
    assert "window.continuumCall" in html  # the shared XSRF-aware call
    assert 'id="ev-add-profile"' in html and "const maxProfiles = 5;" in html
    assert "Folders under: /srv/material" in html
    empty = render(**page_model(manager, person("bea", "vo.hep.example#instructor"), "/hub/", NOW))
    assert "No events yet." in empty


def test_route_and_templates_installed():
    c = Config()
    add_events_page(c)
    add_events_page(c)
    routes = [h for h in hub_handlers.default_handlers if h[0] == PAGE_ROUTE]
    assert routes == [(PAGE_ROUTE, EventsPageHandler)]
    assert c.JupyterHub.template_paths == [str(TEMPLATES), str(SHARING_TEMPLATES)]
    assert c.JupyterHub.template_vars.get_value({}) == {"continuum_events_link": events_link}


def test_navigation_link_for_instructors_and_admins(tmp_path):
    assert events_link(ALICE) == ""  # no manager yet (made when the hub's loop starts)
    EventManager.instance(db_url=f"sqlite:///{tmp_path / 'events.sqlite'}")
    try:
        assert events_link(ALICE) == "continuum/events"
        assert events_link(person("dave", admin=True)) == "continuum/events"
        assert events_link(person("bob", "vo.hep.example")) == ""
        assert events_link(None) == ""  # the login page
        assert events_link(SimpleNamespace(kind="service", name="s")) == ""
    finally:
        EventManager.clear_instance()
    # JupyterHub's page.html (its navigation block only) with the link added
    base = "{% block nav_bar_left_items %}<li>Home</li>{% endblock %}"
    loader = jinja2.ChoiceLoader(
        [
            jinja2.PrefixLoader({"templates": jinja2.DictLoader({"page.html": base})}, "/"),
            jinja2.FileSystemLoader(str(TEMPLATES)),
        ]
    )
    page = jinja2.Environment(loader=loader, autoescape=True).get_template("page.html")
    linked = page.render(base_url="/hub/", continuum_events_link="continuum/events")
    assert "<li>Home</li>" in linked and 'href="/hub/continuum/events">Events<' in linked
    assert "Events" not in page.render(base_url="/hub/", continuum_events_link="")
