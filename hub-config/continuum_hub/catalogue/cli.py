"""``continuum-hub catalogue``: the catalogue's command line.

``continuum-hub catalogue harvest PATH --site S`` harvests a folder tree of data files (or,
with ``--kind``, a static STAC catalogue or a YAML/CSV list) into a built-in catalogue's store
(``--db-url``, the source's ``db_url``: PostgreSQL or SQLite; or ``--db``, a SQLite file),
incrementally (:func:`continuum_hub.catalogue.harvest.harvest`), and prints the
report.  Exit status: 0 when everything found was harvested, 1 when some files could not be
read (the rest was harvested; the report lists them), 2 when nothing could be harvested (a bad
argument, a missing path, a store that cannot be opened).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

DEFAULT_DB = "catalogue.sqlite"


def harvest_command(args: argparse.Namespace) -> int:
    """Run one harvest as the arguments say; the exit status (see the module docstring)."""
    from .harvest import HarvestError, HarvestSpec, harvest
    from .index.store import CatalogueStore

    try:
        spec = HarvestSpec.from_mapping(
            {
                "path": args.path,
                "site": args.site,
                "kind": args.kind,
                "source": args.source,
                "vo": args.vo,
                "visibility": args.visibility,
                "label": args.label,
            }
        )
    except HarvestError as exc:
        print(f"{args.prog}: {exc}", file=sys.stderr)
        return 2
    target = args.db_url or args.db
    try:
        # the URL as shown: never its password
        shown = make_url(target).render_as_string() if args.db_url else str(target)
    except SQLAlchemyError:
        print(f"{args.prog}: --db-url is not a database URL", file=sys.stderr)
        return 2
    try:
        store = CatalogueStore(target, args.source)
        report = harvest(store, spec)
    except (HarvestError, OSError, sqlite3.Error, SQLAlchemyError) as exc:
        print(f"{args.prog}: cannot harvest {args.path} into {shown}: {exc}", file=sys.stderr)
        return 2
    store.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.summary())
        for problem in report.problem_list:
            print(f"  problem: {problem}")
        if report.problems > len(report.problem_list):
            print(f"  … and {report.problems - len(report.problem_list)} more (see the log)")
    return 1 if report.problems else 0


def build_parser(prog: str = "continuum-hub catalogue") -> argparse.ArgumentParser:
    """The ``catalogue`` command line (one subcommand so far: ``harvest``)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "harvest",
        help="harvest data files, a STAC catalogue or a list into a built-in catalogue",
        description=(
            "Harvest PATH into a built-in catalogue's store, incrementally (unchanged "
            "files are not read again; vanished ones are removed), and print the report. Exit "
            "status: 0 all harvested, 1 some files could not be read (the rest was harvested), "
            "2 nothing harvested (bad argument, missing path, unusable store)."
        ),
    )
    p.add_argument(
        "path", type=Path, help="folder tree (files), catalog.json (stac), YAML/CSV (list)"
    )
    p.add_argument("--site", required=True, help="the site holding the data (registry name)")
    p.add_argument("--kind", choices=("files", "stac", "list"), default="files", help="(files)")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--db",
        type=Path,
        default=Path(DEFAULT_DB),
        help=f"the built-in catalogue's SQLite file (./{DEFAULT_DB}; created when missing)",
    )
    where.add_argument(
        "--db-url",
        default="",
        help="the built-in source's db_url (SQLAlchemy URL, e.g. postgresql+psycopg://…)",
    )
    p.add_argument(
        "--source",
        default="builtin",
        help="source name, the entries' id prefix and (not SQLite) the tables' (builtin)",
    )
    p.add_argument("--vo", default="", help="VO of entries that do not name one")
    p.add_argument(
        "--visibility",
        choices=("public", "vo"),
        default="public",
        help="visibility of entries that do not say (public; vo needs --vo)",
    )
    p.add_argument("--label", default="", help="root label in identifiers (the folder's name)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=harvest_command, prog=p.prog)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``continuum-hub catalogue``; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.func(args)
