"""The ``demo`` command: start the local federation, print where to log in, run until Ctrl-C.

``make demo`` runs it as ``python -m continuum_federation demo``; ``continuum-hub demo`` (the
runtime's command line) imports :func:`main` lazily and hands it its arguments, so that the
runtime package never imports the federation.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from .process import ProcessError

# images/federation/continuum_federation/cli.py: the checkout this package ships with
CHECKOUT = Path(__file__).resolve().parents[3]


def _is_checkout(folder: Path) -> bool:
    return (folder / "hub-config" / "jupyterhub_config.py").is_file()


def find_repo(start: Path) -> Path:
    """The Continuum Hub checkout at or above ``start``, else the one this package ships with.

    Raises
    ------
    SystemExit
        When neither is a checkout (``--repo`` then says where it is).
    """
    for folder in (start, *start.parents):
        if _is_checkout(folder):
            return folder
    if _is_checkout(CHECKOUT):
        return CHECKOUT
    raise SystemExit(
        f"the demo runs from a Continuum Hub checkout (no hub-config/ found above {start}); "
        "pass --repo"
    )


def demo(args: argparse.Namespace) -> int:
    """Start the local federation, print where to log in, and run until interrupted."""
    from .stack import Federation, default_state_dir

    if os.geteuid() != 0:
        print(f"{args.command_name} needs root (it starts Slurm and creates demo accounts)")
        return 2
    repo = args.repo or find_repo(Path.cwd())
    state = args.state_dir or default_state_dir()
    started = time.monotonic()
    federation = Federation(
        repo, state, hub_port=args.port, idp_port=args.idp_port, partner_port=args.partner_port
    )
    print(f"Starting the local federation (state in {state}) …", flush=True)
    try:
        federation.start()
    except ProcessError as exc:
        print(f"Could not start the federation:\n{exc}", file=sys.stderr)
        return 1
    assert federation.hub is not None and federation.idp is not None
    assert federation.partner is not None
    print(
        f"\nContinuum Hub is running ({time.monotonic() - started:.1f} s to start).\n\n"
        f"  Open  {federation.hub.url}/hub/  and choose a provider on its sign-in page.\n\n"
        "  Continuum demo IdP (primary):\n"
    )
    for name, password in federation.passwords.items():
        print(f"    {name:<8} password {password}")
    print("\n  Partner University proxy (second provider, another issuer):\n")
    for name, password in federation.partner_passwords.items():
        print(f"    {name:<8} password {password}")
    print(
        "\n  alice: VOs vo.hep.example + vo.radio.example (sites alpha and beta)\n"
        "  bob:   vo.hep.example (site alpha)\n"
        "  carol: no VO (sign-in is refused: no allowed group)\n"
        "  dave:  admin + vo.radio.example (sites alpha and beta)\n"
        "  partner alice:   another person (hub user alice-partner, vo.hep.example,\n"
        "                   no account on the sites)\n"
        "  partner bbrown:  Bob, linked by voperson_id to hub user bob once Bob has signed in\n"
        "                   at home\n"
        "  partner erin:    vo.radio.example; mallory: vo.hep.example (forged admin ignored)\n\n"
        f"  Identity providers: {federation.idp.issuer} (primary), "
        f"{federation.partner.issuer} (partner)\n"
        f"  Sites: {', '.join(federation.sites)} (Slurm; SLURM_CONF files under {state}/slurm)\n"
        "  Accounting: one slurmdbd records every job of both sites (sacct answers;\n"
        f"              {state}/slurmdbd, MariaDB in {state}/mariadb)\n"
        f"  Dask Gateway: {federation.hub.url}/services/dask-gateway/ (hub service; in a "
        "server, Gateway() needs no arguments)\n"
        f"  Catalogue: {federation.hub.url}/services/catalogue/ (the lab's Catalogue panel): "
        f"the demo archive in {state}/catalogue-archive,\n"
        f"             Rucio {federation.rucio.url if federation.rucio else '-'}, "
        f"TAP {federation.tap.tap_url if federation.tap else '-'}, the sites' software (Lmod)\n"
        f"  Prometheus: {federation.prometheus.url if federation.prometheus else '-'} "
        "(scrapes the hub and its services; alert rules loaded)\n"
        "  Hub: behind its own proxy, under a supervisor that restarts it when it dies (the\n"
        "       servers' connections and jobs live on; what the dead hub left is killed)\n"
        f"  Logs: {state}/*/  — press Ctrl-C to stop everything.\n",
        flush=True,
    )
    stop = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    hub_log = SupervisorLines(federation.hub.state_dir / "jupyterhub.log")
    try:
        while not stop:
            for line in hub_log.new_lines():  # the hub died and comes back: say so here too
                print(line, flush=True)
            if federation.hub.process is not None and not federation.hub.process.running:
                print(
                    "The hub's supervisor ended (the hub stopped cleanly, or failed again and "
                    "again); the hub's log:\n" + federation.hub.log(),
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.5)
    finally:
        print("Stopping the federation …", flush=True)
        federation.stop()
        print("Stopped.")
    return 0


class SupervisorLines:
    """The supervisor's lines (``… supervisor] …``) added to the hub's log since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new_lines(self) -> list[str]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return []
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
        self.offset += len(complete)
        lines = complete.decode(errors="replace").splitlines()
        return [line for line in lines if " supervisor] " in line]


def build_parser(prog: str) -> argparse.ArgumentParser:
    """The command line: one subcommand, ``demo``, with the demo's ports and folders."""
    parser = argparse.ArgumentParser(prog=prog, description="The local Continuum Hub federation.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the local federation (hub, IdP, two Slurm sites)")
    p_demo.add_argument("--port", type=int, default=8000, help="hub port on 127.0.0.1 (8000)")
    p_demo.add_argument("--idp-port", type=int, default=5556, help="IdP port on 127.0.0.1 (5556)")
    p_demo.add_argument(
        "--partner-port", type=int, default=5557, help="partner IdP port on 127.0.0.1 (5557)"
    )
    p_demo.add_argument("--state-dir", type=Path, help="state folder (/var/lib/continuum-hub/demo)")
    p_demo.add_argument(
        "--repo", type=Path, help="the Continuum Hub checkout (found from cwd, else this package's)"
    )
    p_demo.set_defaults(func=demo, command_name=p_demo.prog)
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m continuum_federation") -> int:
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv
        The arguments (``sys.argv[1:]`` when ``None``).
    prog
        The command's name in help and messages (``continuum-hub`` when called from there).
    """
    args = build_parser(prog).parse_args(argv)
    return args.func(args)
