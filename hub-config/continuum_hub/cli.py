"""``continuum-hub``: the command line (``continuum-hub demo`` runs the local federation,
``continuum-hub run NOTEBOOK`` submits a batch run to the hub's workflow service,
``continuum-hub catalogue harvest PATH --site S`` feeds a built-in catalogue,
``continuum-hub backup FOLDER`` / ``restore FOLDER`` copy and put back every database and the
state folder).

The local federation (package ``continuum_federation``, ``images/federation/``) ships with the
source checkout, not in the wheel: ``demo`` imports it only when it runs and hands it its
arguments; a site's install, which lacks it, gets a message saying where the demo lives.
"""

from __future__ import annotations

import argparse
import sys

NO_FEDERATION = (
    "continuum-hub demo: the local federation ships with the source checkout, not with this "
    "installation: run `make demo` in a Continuum Hub checkout"
)


def demo(argv: list[str]) -> int:
    """Run ``continuum_federation``'s ``demo`` command with ``argv``; 2 when it is not here."""
    try:
        from continuum_federation.cli import main as federation_main
    except ModuleNotFoundError as exc:
        if exc.name != "continuum_federation":
            raise
        print(NO_FEDERATION, file=sys.stderr)
        return 2
    return federation_main(["demo", *argv], prog="continuum-hub")


def run(argv: list[str]) -> int:
    """``continuum-hub run``: see :mod:`continuum_hub.workflows.command`."""
    from continuum_hub.workflows.command import main as run_main

    return run_main(argv)


def catalogue(argv: list[str]) -> int:
    """``continuum-hub catalogue``: see :mod:`continuum_hub.catalogue.cli`."""
    from continuum_hub.catalogue.cli import main as catalogue_main

    return catalogue_main(argv)


def backup(command: str, argv: list[str]) -> int:
    """``continuum-hub backup|restore``: see :mod:`continuum_hub.backup`."""
    from continuum_hub.backup import main as backup_main

    return backup_main(command, argv)


def main(argv: list[str] | None = None) -> None:
    """Run the ``continuum-hub`` command line and exit with its status."""
    parser = argparse.ArgumentParser(prog="continuum-hub", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    # its options (ports, state folder, checkout) belong to the federation's parser
    sub.add_parser(
        "demo",
        help="run the local federation (hub, IdP, two Slurm sites); options: demo --help",
        add_help=False,
    )
    sub.add_parser(
        "run",
        help="run a notebook as a batch job on a site; options: run --help",
        add_help=False,
    )
    sub.add_parser(
        "catalogue",
        help="the catalogue: harvest data into a built-in catalogue; options: catalogue --help",
        add_help=False,
    )
    sub.add_parser(
        "backup",
        help="copy every database and the state folder while the hub runs; backup --help",
        add_help=False,
    )
    sub.add_parser(
        "restore",
        help="put a backup back (hub stopped); restore --help",
        add_help=False,
    )
    # parse_known_args: whatever follows the command is its own to parse
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        sys.exit(demo(rest))
    if args.command == "run":
        sys.exit(run(rest))
    if args.command == "catalogue":
        sys.exit(catalogue(rest))
    if args.command in ("backup", "restore"):
        sys.exit(backup(args.command, rest))
