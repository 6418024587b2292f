"""The spawn form's HTML."""

from dataclasses import replace
from pathlib import Path

from continuum_spawners.form import render_form
from continuum_spawners.options import JobRequest
from continuum_spawners.sites import SiteRegistry

DEMO = Path(__file__).resolve().parents[2] / "hub-config" / "sites.demo.yaml"


def registry():
    return SiteRegistry.from_file(
        DEMO, {"CONTINUUM_SLURM_CONF_ALPHA": "/a", "CONTINUUM_SLURM_CONF_BETA": "/b"}
    )


def test_form_lists_allowed_sites_and_preselects_last_choice():
    sites = list(registry())
    html = render_form(sites, JobRequest("beta", "gpu", 3, 5, 1, 90))
    assert '<option value="beta/gpu" selected' in html
    assert '<option value="alpha/interactive"' in html
    assert 'value="3"' in html and 'value="1:30"' in html
    assert "Beta GPU centre · gpu — up to 4 cores, 16 GB, 2 × demo, 12:00 h" in html


def test_form_without_sites_explains():
    assert "access to no site" in render_form([])


def test_form_escapes_registry_text():
    site = next(iter(registry()))
    evil = replace(site, display_name='<script>alert("x")</script>')
    html = render_form([evil])
    assert '<script>alert("x")' not in html and "&lt;script&gt;alert" in html


def test_stale_last_choice_falls_back_to_default():
    sites = [s for s in registry() if s.name == "alpha"]
    html = render_form(sites, JobRequest("beta", "gpu", 1, 2, 1, 60))
    assert '<option value="alpha/interactive" selected' in html
