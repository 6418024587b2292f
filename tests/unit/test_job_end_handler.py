"""The hub's half of the job-ending report: what it accepts, how it follows the job, the page note.

The spawner is a stand-in at the boundary (its status answers); the real hub, Slurm job and
launcher are exercised by ``tests/integration/test_job_end.py``.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from batchspawner import JobStatus
from tornado import web

from continuum_spawners import job_end_handler as handler
from continuum_spawners.job_end import REASONS

TOKEN = "a" * 32


def spawner(token=TOKEN, pending=None, server=True, end_reason=""):
    return SimpleNamespace(
        api_token=token,
        pending=pending,
        server=object() if server else None,
        end_reason=end_reason,
        port=8888,
    )


@pytest.mark.parametrize("reason", REASONS)
def test_accepts_a_reason_of_the_own_running_server(reason):
    s = spawner()
    assert handler.accept_job_ending({"reason": reason}, TOKEN, [spawner("b" * 32), s]) == (
        s,
        reason,
    )


#: reports the hub must refuse: (body, token, the server's state, the answer)
REFUSED = {
    "reason+port": ({"reason": "cancelled", "port": 1}, TOKEN, {}, 400),
    "reason+attribute": ({"reason": "cancelled", "end_reason": "x"}, TOKEN, {}, 400),
    "unknown-reason": ({"reason": "because"}, TOKEN, {}, 400),
    "reason-newline": ({"reason": "cancelled\n"}, TOKEN, {}, 400),
    "reason-list": ({"reason": ["cancelled"]}, TOKEN, {}, 400),
    "port-only": ({"port": 8888}, TOKEN, {}, 400),
    "empty": ({}, TOKEN, {}, 400),
    "list": (["cancelled"], TOKEN, {}, 400),
    "string": ("cancelled", TOKEN, {}, 400),
    "null": (None, TOKEN, {}, 400),
    "other-token": ({"reason": "cancelled"}, "c" * 32, {}, 403),
    "no-token": ({"reason": "cancelled"}, "", {"token": None}, 403),
    "starting": ({"reason": "cancelled"}, TOKEN, {"pending": "spawn"}, 409),
    "stopping": ({"reason": "cancelled"}, TOKEN, {"pending": "stop"}, 409),
    "stopped": ({"reason": "cancelled"}, TOKEN, {"server": False}, 409),
    "already-reported": ({"reason": "walltime"}, TOKEN, {"end_reason": "cancelled"}, 409),
}


@pytest.mark.parametrize("body,token,state,status", REFUSED.values(), ids=REFUSED.keys())
def test_refuses_all_else_and_changes_nothing(body, token, state, status):
    s = spawner(**state)
    before = dict(vars(s))
    with pytest.raises(web.HTTPError) as info:
        handler.accept_job_ending(body, token, [s])
    assert info.value.status_code == status
    assert vars(s) == before


class EndingSpawner:
    """Answers status queries from a script; records how the hub stopped it."""

    startup_poll_interval = 0.01

    def __init__(self, states, requeue_at=None):
        self.states = list(states)
        self.pending = None
        self.server = object()
        self.requeued = False
        self.requeue_at = requeue_at
        self.end_reason = "cancelled"
        self.user = SimpleNamespace(name="alice")
        self.name = ""
        self.ages: list[float] = []
        self.notified = 0

    async def query_job_status(self, max_age=None):
        self.ages.append(max_age)
        if len(self.ages) == self.requeue_at:
            self.requeued = True
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    async def poll_and_notify(self):
        self.notified += 1
        self.server = None
        return 1


async def test_follow_stops_the_server_once_the_job_is_gone():
    s = EndingSpawner([JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.NOTFOUND])
    assert await handler.follow_job_end(s, give_up_after=10) == "stopped"
    assert s.notified == 1
    assert s.ages == [0.01, 0.01, 0.01]  # fresh answers, not the batched poll's
    assert s.end_reason == "cancelled"  # kept for the home page


@pytest.mark.parametrize(
    "states,requeue_at",
    [([JobStatus.RUNNING, JobStatus.PENDING], None), ([JobStatus.RUNNING], 2)],
    ids=["pending", "spawner-saw-requeue"],
)
async def test_follow_leaves_a_requeued_job_to_the_spawner(states, requeue_at):
    s = EndingSpawner(states, requeue_at)
    handler._ENDED[("alice", "")] = "cancelled"
    assert await handler.follow_job_end(s, give_up_after=10) == "requeued"
    assert s.notified == 0 and s.server is not None
    assert s.end_reason == "" and ("alice", "") not in handler._ENDED


async def test_follow_gives_up_to_polling_after_the_timeout():
    s = EndingSpawner([JobStatus.RUNNING])
    assert await handler.follow_job_end(s, give_up_after=0.05) == "timeout"
    assert s.notified == 0


async def test_follow_stops_looking_when_the_server_is_stopped_otherwise():
    s = EndingSpawner([JobStatus.RUNNING])
    s.pending = "stop"
    assert await handler.follow_job_end(s, give_up_after=10) == "stopping"
    assert s.ages == []


def test_announcement_names_why_stopped_servers_ended():
    handler._ENDED.update(
        {
            ("alice", ""): "cancelled",
            ("alice", "<b>gpu</b>"): "walltime",
            ("alice", "running"): "walltime",
            ("bob", ""): "walltime",
        }
    )
    alice = SimpleNamespace(
        name="alice",
        spawners={
            # a stopped server's spawner is gone; a running one hides its old note
            "running": SimpleNamespace(active=True),
            "": SimpleNamespace(active=False),
        },
    )
    try:
        assert handler.announcement(alice) == (
            "Your server stopped: the site ended its job (cancelled or preempted). "
            "Your server &lt;b&gt;gpu&lt;/b&gt; stopped: its job reached the end of its walltime."
        )
        assert handler.announcement(None) is None
        assert handler.announcement(SimpleNamespace(name="carol", spawners={})) is None
        handler.forget_end("alice", "")
        handler.forget_end("alice", "<b>gpu</b>")
        handler.forget_end("alice", "never-ended")
        assert handler.announcement(alice) is None
    finally:
        handler._ENDED.clear()


def test_install_adds_the_route_once():
    from jupyterhub import apihandlers

    handler.install_job_end_handler()
    handler.install_job_end_handler()
    routes = [h for h in apihandlers.default_handlers if h[0] == handler.JOB_ENDING_ROUTE]
    assert routes == [(handler.JOB_ENDING_ROUTE, handler.JobEndingHandler)]
