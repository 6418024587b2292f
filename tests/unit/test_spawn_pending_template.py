"""Our spawn-pending page (``continuum_hub/workshops/templates/spawn_pending.html``) rendered by
Jinja as the hub loads it: JupyterHub's own ``spawn_pending.html`` (the real file) under the
``templates/`` prefix, ours first on the search path, and a stand-in for ``page.html`` (its
blocks only, as the real one needs the hub's ``static_url``).

What the fallback does in a browser whose progress stream is blocked (hand over to the ready
server, show a failed spawn) is tested in Chromium against the session hub in
``tests/browser/test_spawn_pending_fallback.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
from jupyterhub._data import DATA_FILES_PATH
from traitlets.config import Config

from continuum_hub.workshops.events_page import TEMPLATES, add_events_page

pytestmark = pytest.mark.workshops

#: JupyterHub's templates as installed (where the hub itself finds them)
STOCK = Path(DATA_FILES_PATH) / "templates"
PAGE = (
    "<head>{% block meta %}<meta name=description>{% endblock meta %}</head>"
    "<body>{% block main %}{% endblock main %}{% block script %}{% endblock script %}</body>"
)


def render(user: str = "alice", server: str = "", **template_vars: object) -> str:
    """The page as the hub renders it for ``user``'s ``server`` (JupyterHub's loaders)."""
    loader = jinja2.ChoiceLoader(
        [
            jinja2.PrefixLoader({"templates": jinja2.FileSystemLoader([str(STOCK)])}, "/"),
            jinja2.DictLoader({"page.html": PAGE}),
            jinja2.FileSystemLoader([str(TEMPLATES), str(STOCK)]),
        ]
    )
    env = jinja2.Environment(loader=loader, autoescape=True)
    return env.get_template("spawn_pending.html").render(
        base_url="/hub/",
        user=SimpleNamespace(name=user),
        spawner=SimpleNamespace(name=server),
        progress_url=f"/hub/api/users/{user}/server/progress?_xsrf=x",
        **template_vars,
    )


def test_the_stock_page_is_kept_and_the_fallback_added():
    html = render()
    # JupyterHub's page: its progress bar and its stream inside requirejs
    assert 'id="progress-bar"' in html and 'id="stop-server-btn"' in html
    assert 'require(["jquery", "jhapi"]' in html
    assert 'new EventSource("/hub/api/users/alice/server/progress?_xsrf=x")' in html
    # ours: after it, outside requirejs, asking the user's model every 5 s of silence
    fallback = html[html.rindex("<script>") :]
    assert "var every = 5 * 1000;" in fallback
    assert 'var serverName = "";' in fallback
    assert 'var stateUrl = "/hub/api/users/" +' in fallback
    assert 'encodeURIComponent("alice")' in fallback
    assert 'server.pending !== "spawn"' in fallback and "window.location.reload()" in fallback
    # and without JavaScript the page reloads itself
    noscript = re.search(r"<noscript>\s*<meta http-equiv=\"refresh\"\s+content=\"(\d+)\">", html)
    assert noscript and noscript.group(1) == "10"
    assert html.index("<noscript>") < html.index("</head>")


def test_poll_period_from_the_hubs_template_vars():
    html = render(continuum_pending_poll_s=3)
    assert "var every = 3 * 1000;" in html
    assert re.search(r'http-equiv="refresh"\s+content="6"', html)


@pytest.mark.parametrize(
    "user,server",
    [("bob", "gpu-box"), ("x</script><script>alert(1)//", 'a"b')],
    ids=["named-server", "hostile-names"],
)
def test_names_reach_the_script_as_json_strings(user: str, server: str):
    html = render(user, server)
    fallback = html[html.rindex("<script>") :]
    assert "<script>alert(1)" not in fallback
    if server == "gpu-box":
        assert 'var serverName = "gpu-box";' in fallback
        assert 'encodeURIComponent("bob")' in fallback
    else:
        assert r'var serverName = "a\"b";' in fallback
        assert r'encodeURIComponent("x\u003c/script\u003e' in fallback


def test_the_page_is_on_the_hubs_template_path():
    c = Config()
    add_events_page(c)
    assert (TEMPLATES / "spawn_pending.html").is_file()
    assert str(TEMPLATES) in c.JupyterHub.template_paths
