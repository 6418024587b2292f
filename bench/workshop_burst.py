"""workshop_burst: a workshop's first minute, N participants at once, Slurm site vs local spawner.

Through :mod:`crowd_setup` and :mod:`crowd` (the set-up and the measurement it shares with
``bench/storm.py``): a private munge, the demo's Slurm site ``alpha`` (its node declared with N
CPUs and 2 GiB per job, so that every participant's server fits at once), the OpenID provider
with an instructor ``ws00`` and N generated participants ``ws01`` … (all members of the HEP VO,
fresh passwords, Unix accounts of the same name, created if missing and kept) and two hubs that
differ only in their spawner: ``continuum-site`` (servers are Slurm jobs on ``alpha``) and
JupyterHub's ``LocalProcessSpawner``.

The burst, on one hub and then on the other: the instructor signs in first (``--cold``: nobody
does, as on a hub started just before the workshop), then all N participants at once from a
thread pool: each signs in through the provider's login page (landing on the hub's home page),
starts their server (``POST /hub/api/users/<name>/server``, the admin token), follows its
progress and stops the clock when ``/user/<name>/lab`` answers 200 through the proxy.  The
single-user server is the same as in ``spawn_latency``: the hub's default command with
JupyterLab; ``--lean``: ``jupyterhub-singleuser`` without any server extension (where N
JupyterLabs do not fit in memory), checked on a core page; servers run at nice 10 and the hub,
its proxy and the provider at -10 (as in ``storm``).  A sampler process sends ``GET
/hub/api/users/<participant>`` 0.2 s apart meanwhile, for the hub's API latency.  Servers are
stopped after each burst.

Prints per hub: failures (grouped by reason), the time from the burst's start to the last
sign-in done, p50/p95 login → server ready, the hub's API p50/p95 during the burst and its CPU
seconds; and the ratios site / local.  The issue's goal: 0 failures at N = 60, all joined
within 60 s.  The issue's 20 real Chromium sessions are not part of this script.

About 3 minutes at the default N = 20 on the (shared) 2-core test machine.  Run as root:
``/opt/continuum-hub/venv/bin/python bench/workshop_burst.py [--users 60] [--cold] [--lean]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crowd import Priorities, on_hubs, report, sign_in
from crowd_setup import HUBS, federation, generated_people

from continuum_federation.idp import VO_HEP, entitlement

INSTRUCTOR = "ws00"


def main() -> None:
    parser = argparse.ArgumentParser(description="workshop burst: N participants at once")
    parser.add_argument("--users", type=int, default=20, help="participants (issue goal: 60)")
    parser.add_argument(
        "--cold", action="store_true", help="no sign-in before the burst (a just started hub)"
    )
    parser.add_argument("--lean", action="store_true", help="lean servers, not JupyterLab")
    parser.add_argument("--logs", type=Path, help="copy each hub's log into this folder")
    Priorities.add_arguments(parser)
    args = parser.parse_args()
    people = generated_people("ws", args.users, [entitlement(VO_HEP)], first=0)
    names = [person["username"] for person in people if person["username"] != INSTRUCTOR]
    with federation(["alpha"], people, args.users) as fed:

        def instructor(hub: Any) -> None:  # signs in before the participants
            if not args.cold:
                sign_in(hub, fed.idp, INSTRUCTOR)

        nice = Priorities.from_args(args)
        outcome = on_hubs(fed, HUBS, names, {}, args.lean, 0, args.logs, instructor, nice)
    before = "nobody signed in before (cold hub)" if args.cold else "the instructor signed in first"
    server = "lean jupyterhub-singleuser" if args.lean else "JupyterLab"
    print(f"workshop_burst, {args.users} participants at once ({before}), login → {server} ready")
    report(args.users, outcome)
    print("  (goal at N = 60: 0 failures, all joined within 60 s)")


if __name__ == "__main__":
    main()
