"""storm: N users sign in within a minute and start servers on both Slurm sites, vs a local hub.

Through :mod:`crowd_setup` and :mod:`crowd` (the set-up and the measurement it shares with
``bench/workshop_burst.py``): a private munge, the demo's two Slurm sites ``alpha`` and
``beta`` (each node declared with CPUs and memory for half of the users' jobs), the OpenID
provider with N generated users ``st001`` … (members of both demo VOs, so that both sites
take them; Unix accounts of the same name, created if missing and kept) and two hubs that
differ only in their spawner: ``continuum-site`` (odd users' servers are Slurm jobs on
``alpha``, even users' on ``beta``) and JupyterHub's ``LocalProcessSpawner``.

The storm, on one hub and then on the other: user ``i`` arrives ``i * spread / N`` seconds
after the start (``--spread``, default 60 s), signs in through the provider's login page,
starts their server, follows its progress as the spawn page does and stops the clock when the
server answers a page through the proxy.  Each server is a real but lean single-user server:
``jupyterhub-singleuser`` (JupyterHub's OAuth, activity reports, the hub's checks) on
``jupyter_server`` with no server extension loaded (about 70 MB instead of JupyterLab's 130 MB:
200 JupyterLabs do not fit in this machine's memory beside the rest), checked on a core page
behind the server's login; ``--jupyterlab``: JupyterLab, checked on ``/lab``.  Servers run at
nice 10 and the hub, its proxy and the provider at -10 (``--server-nice``, ``--hub-nice``; both
hubs alike): on this one shared machine the servers stand in for compute nodes, the provider and
the crowd for other machines (see :class:`crowd.Priorities`; the sessions' CPU groups are
set too, see :mod:`crowd_nice`).  Browsers wait up to 120 s for an
answer.  A sampler process sends ``GET /hub/api/users/<name>`` 0.2 s apart meanwhile, for the
hub's API latency.  Servers are stopped after each storm.

Prints per hub: failures by reason, when the last sign-in was done, p50/p95 login → server
ready, the hub's API p50/p95 during the storm, the hub process's CPU seconds (``/proc``), the
most spawns pending at once and the machine's memory used; and the ratios site / local.  The
issue's goal: N = 200 with 0 failures and hub API p95 < 1 s.

Run as root (about 10 minutes at N = 200 on the 2-core test machine; ``free -m`` before: each
lean server with its job takes ~80 MB):
``/opt/continuum-hub/venv/bin/python bench/storm.py [--users 200] [--spread 60] [--jupyterlab]``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from crowd import Priorities, on_hubs, report
from crowd_setup import HUBS, federation, generated_people

from continuum_federation.idp import VO_HEP, VO_RADIO, entitlement

SITES = ("alpha", "beta")


def main() -> None:
    parser = argparse.ArgumentParser(description="storm: N users within a minute, both sites")
    parser.add_argument("--users", type=int, default=20, help="users (issue goal: 200)")
    parser.add_argument("--spread", type=float, default=60.0, help="seconds users arrive over")
    parser.add_argument("--jupyterlab", action="store_true", help="JupyterLab, not lean servers")
    parser.add_argument("--hubs", nargs="+", choices=HUBS, default=list(HUBS), help="hubs run")
    parser.add_argument("--logs", type=Path, help="copy each hub's log into this folder")
    Priorities.add_arguments(parser)
    args = parser.parse_args()
    people = generated_people("st", args.users, [entitlement(VO_HEP), entitlement(VO_RADIO)])
    names = [person["username"] for person in people]
    # odd users on alpha, even ones on beta; the local hub takes no options
    options = {"site": {user: {"site": SITES[n % 2]} for n, user in enumerate(names)}}
    with federation(SITES, people, math.ceil(args.users / 2)) as fed:
        lean = not args.jupyterlab
        nice = Priorities.from_args(args)
        outcome = on_hubs(fed, args.hubs, names, options, lean, args.spread, args.logs, None, nice)
    server = "JupyterLab" if args.jupyterlab else "lean jupyterhub-singleuser"
    print(
        f"storm, {args.users} users arriving within {args.spread:.0f} s, both sites, "
        f"login → {server} ready"
    )
    report(args.users, outcome)
    print("  (goal at N = 200: 0 failures, hub API p95 < 1 s)")


if __name__ == "__main__":
    main()
