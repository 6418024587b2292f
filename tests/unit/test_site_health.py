"""Sites whose scheduler does not answer (issue 16, item 5): the probe's board, and what the
spawner makes of it — the form shows the site unavailable with the reason and since when,
``soonest`` leaves it out, and a spawn there is refused at once with 503.

The board is the real one of :mod:`continuum_spawners.site_health` with a clock the test
moves; the probe writing to it through the real ``scontrol`` is in ``test_site_probe.py``, and
the whole path through a real hub and a stopped controller in
``tests/integration/test_site_down.py``.
"""

from __future__ import annotations

import pwd
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado import web
from traitlets.config import Config

from continuum_spawners import accounts, site_health
from continuum_spawners.options import SOONEST, candidates
from continuum_spawners.site_health import SiteHealthBoard, down_message, refusal_status
from continuum_spawners.spawner import SiteSpawner

DEMO = Path(__file__).resolve().parents[2] / "hub-config" / "sites.demo.yaml"
ENV = {"CONTINUUM_SLURM_CONF_ALPHA": "/a", "CONTINUUM_SLURM_CONF_BETA": "/b"}
BOTH = ["vo.hep.example", "vo.radio.example"]
WENT_DOWN = datetime(2026, 12, 5, 5, 31, tzinfo=UTC)


class Clock:
    """Monotonic seconds and wall time that the test moves by hand."""

    def __init__(self) -> None:
        self.seconds = 1000.0
        self.wall = WENT_DOWN

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return self.wall


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def board(clock: Clock) -> SiteHealthBoard:
    return SiteHealthBoard(clock=clock.monotonic, now=clock.now)


# -- the board ----------------------------------------------------------------------------------


def test_unknown_and_answering_sites_are_not_down(board: SiteHealthBoard) -> None:
    assert board.get("alpha") is None
    board.record("alpha", True, "Slurmctld(primary) at vm is UP")
    assert board.down(["alpha", "beta"]) == {}
    assert board.get("alpha").reason == ""  # an answering site has no reason to show


def test_down_site_keeps_the_time_it_went_down(board: SiteHealthBoard, clock: Clock) -> None:
    board.record("beta", False, "Unable to contact slurm controller\n(connect failure)")
    clock.seconds += 30
    clock.wall = WENT_DOWN.replace(minute=40)
    health = board.record("beta", False, "still nothing")
    # a site down for an hour was down since its first failed probe, not since the last one
    assert health.since == WENT_DOWN and health.reason == "still nothing"
    message = board.down({"beta": "Beta GPU centre"})["beta"]
    assert message == (
        "Site Beta GPU centre is unavailable: its scheduler has not answered since "
        "2026-12-05 05:31 UTC (still nothing). Choose another site, or try again later."
    )
    board.record("beta", True)
    assert board.down(["beta"]) == {} and board.get("beta").since == WENT_DOWN.replace(minute=40)


def test_stale_answer_no_longer_counts(board: SiteHealthBoard, clock: Clock) -> None:
    board.record("beta", False, "timed out", valid_for=60)
    clock.seconds += 59
    assert "beta" in board.down(["beta"])
    clock.seconds += 2  # the probe stopped: an old failure must not block the site for ever
    assert board.down(["beta"]) == {} and board.get("beta") is None


def test_reason_is_one_short_line(board: SiteHealthBoard) -> None:
    health = board.record("beta", False, "a\n  b\tc " + "x" * 500)
    assert health.reason.startswith("a b c x") and len(health.reason) == 200
    assert "\n" not in down_message(health)


def test_forget(board: SiteHealthBoard) -> None:
    board.record("alpha", False)
    board.record("beta", False)
    board.forget("alpha")
    assert list(board.down(["alpha", "beta"])) == ["beta"]
    board.forget()
    assert board.down(["alpha", "beta"]) == {}


@pytest.mark.parametrize(
    "wanted,down,no_account,status",
    [
        ("beta", {"beta"}, set(), 503),  # the site asked for does not answer
        ("alpha", {"beta"}, set(), None),  # another site is down: not this request's business
        ("beta", {"beta"}, {"beta"}, None),  # no account there either: that is the refusal
        ("gamma", {"gamma"}, set(), None),  # not allowed to the user: the usual 403 says so
        (SOONEST, {"alpha", "beta"}, set(), 503),  # nothing left for soonest
        (None, {"alpha", "beta"}, set(), 503),  # nor for the default site
        (SOONEST, {"alpha"}, set(), None),  # beta still answers
        (SOONEST, {"alpha"}, {"beta"}, 503),  # beta answers but the user has no account there
        (SOONEST, set(), {"alpha", "beta"}, None),  # no account anywhere: 403, not an outage
        (["beta"], {"beta"}, set(), None),  # malformed: the usual 400
    ],
)
def test_refusal_status(wanted, down, no_account, status) -> None:
    messages = {name: f"{name} is down" for name in down}
    assert refusal_status(wanted, messages, {"alpha", "beta"}, no_account) == status


# -- the spawner --------------------------------------------------------------------------------


@pytest.fixture
def spawner(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[SiteSpawner]:
    """alice (both VOs, an account at both demo sites) with a fresh process board."""

    def entry(name: str) -> pwd.struct_passwd | None:
        if name != "alice":
            return None
        return pwd.struct_passwd((name, "x", 2000, 2000, "", "/home/alice", "/bin/sh"))

    monkeypatch.setattr(accounts, "passwd_entry", entry)
    monkeypatch.setattr(site_health, "BOARD", SiteHealthBoard(clock.monotonic, clock.now))
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    user = SimpleNamespace(
        name="alice", groups=[SimpleNamespace(name=g) for g in BOTH], url="/user/alice/"
    )
    yield SiteSpawner(user=user, config=Config({"SiteSpawner": {"registry_path": str(DEMO)}}))


def test_spawn_at_a_down_site_is_refused_at_once_with_503(spawner: SiteSpawner) -> None:
    site_health.BOARD.record("beta", False, "Unable to contact slurm controller")
    started = time.monotonic()
    with pytest.raises(web.HTTPError) as info:
        spawner._apply_options({"site": "beta"})
    assert time.monotonic() - started < 1  # from the probe's answer, nothing asked of the site
    assert info.value.status_code == 503
    assert "Beta GPU centre" in info.value.log_message
    assert "since 2026-12-05 05:31 UTC (Unable to contact slurm controller)" in (
        info.value.log_message
    )
    spawner._apply_options({"site": "alpha"})  # the other site still takes servers
    assert spawner.request.site == "alpha"


def test_form_shows_the_down_site_unavailable(spawner: SiteSpawner) -> None:
    site_health.BOARD.record("beta", False, "Unable to contact slurm controller")
    form = spawner._render_options_form()
    assert "has not answered since 2026-12-05 05:31 UTC" in form
    assert 'value="beta/gpu"' not in form and 'value="alpha/' in form
    site_health.BOARD.record("beta", True)
    assert 'value="beta/gpu"' in spawner._render_options_form()


def test_soonest_leaves_the_down_site_out(spawner: SiteSpawner) -> None:
    request = spawner.check_options({"site": SOONEST})
    assert {c.site for c in candidates(request, spawner.registry, BOTH)} == {"alpha", "beta"}
    site_health.BOARD.record("beta", False, "timed out")
    request = spawner.check_options({"site": SOONEST})
    unavailable = spawner.unavailable_sites()
    assert {c.site for c in candidates(request, spawner.registry, BOTH, unavailable)} == {"alpha"}
    site_health.BOARD.record("alpha", False, "timed out")
    with pytest.raises(web.HTTPError) as info:
        spawner._apply_options({"site": SOONEST})
    assert info.value.status_code == 503
