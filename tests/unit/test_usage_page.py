"""The admins' usage page's model (``continuum_hub.usage.page``) on a real SQLite ledger.

The page itself, rendered by the hub (admins only, CSV link, override form), is tested in
``tests/integration/test_usage_admin_page.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from continuum_hub.usage import page
from continuum_spawners.ledger import JobLedger
from fixtures.usage_views import usage_job

pytestmark = pytest.mark.operations

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
YESTERDAY = NOW - timedelta(days=1)


@pytest.fixture
def ledger(tmp_path: Path) -> JobLedger:
    ledger = JobLedger(f"sqlite:///{tmp_path / 'usage.sqlite'}")
    ledger.update(
        [
            usage_job("alice", "vo.radio.example", "server", "alpha", 2, 1, ended=YESTERDAY),
            usage_job(
                "alice",
                "vo.hep.example",
                "dask",
                "alpha",
                1,
                1,
                ended=YESTERDAY,
                source="estimated",
            ),
            usage_job("bob", "vo.hep.example", "server", "beta", 8, 1, ended=YESTERDAY),
            usage_job("carol", None, "batch", "alpha", 1, 1, ended=YESTERDAY),
        ]
    )
    ledger.set_override("bob", {"core_hours": 5.0})
    return ledger


def test_rows_per_user_and_vo_most_core_hours_first(ledger: JobLedger) -> None:
    model = page.page_model(ledger, NOW - timedelta(days=5), NOW, "/hub/api/continuum/usage")
    users = {row["name"]: row for row in model["by_user"]}
    assert [row["name"] for row in model["by_user"]] == ["bob", "alice", "carol"]
    assert users["alice"]["jobs"] == 2
    assert users["alice"]["core_hours"] == pytest.approx(3.0)
    assert users["alice"]["estimated"] is True
    assert users["alice"]["vos"] == ["vo.hep.example", "vo.radio.example"]
    assert users["bob"]["override"] == {"core_hours": 5.0}
    assert users["carol"]["override"] == {}
    assert users["carol"]["vos"] == ["–"]
    vos = {row["name"]: row for row in model["by_vo"]}
    assert set(vos) == {"vo.hep.example", "vo.radio.example", "(no VO)"}
    assert vos["vo.hep.example"]["core_hours"] == pytest.approx(9.0)
    assert vos["vo.hep.example"]["co2e_kg"] == pytest.approx(0.0006 * 9)
    assert model["totals"].jobs == 4
    assert model["truncated"] is False


def test_links_name_the_period_and_the_override_api(ledger: JobLedger) -> None:
    since = datetime(2026, 12, 1, tzinfo=UTC)
    model = page.page_model(ledger, since, NOW, "/hub/api/continuum/usage")
    assert model["csv_url"] == (
        "/hub/api/continuum/usage?user=*&format=csv"
        "&from=2026-12-01T00:00:00%2B00:00&to=2026-12-05T10:00:00%2B00:00"
    )
    assert model["override_url"] == "/hub/api/continuum/usage/budgets"
    assert model["resources"] == ("core_hours", "gpu_hours", "co2e_kg")


def test_a_period_without_jobs(ledger: JobLedger) -> None:
    model = page.page_model(ledger, NOW - timedelta(hours=1), NOW, "/api")
    assert model["by_user"] == [] and model["by_vo"] == []
    assert model["totals"].jobs == 0


def test_the_route_and_template_folder_are_added_once() -> None:
    from jupyterhub import handlers
    from traitlets.config import Config

    c = Config()
    c.JupyterHub.template_paths = ["/etc/jupyterhub/templates"]
    page.add_usage_page(c)
    page.add_usage_page(c)
    assert c.JupyterHub.template_paths == ["/etc/jupyterhub/templates", str(page.TEMPLATES)]
    assert (page.TEMPLATES / page.TEMPLATE).is_file()
    routes = [h for h in handlers.default_handlers if h[0] == page.PAGE_ROUTE]
    assert routes == [(page.PAGE_ROUTE, page.UsagePageHandler)]
