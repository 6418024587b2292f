"""``continuum-token-agent``: keep a bearer-token file fresh in a batch job or a Dask worker.

The same loop as the server extension's, for processes that run for the user outside their
Jupyter server::

    continuum-token-agent --output "$BEARER_TOKEN_FILE" --token-file ~/.continuum/hub-token &

It asks the hub (``--hub-api-url`` or ``JUPYTERHUB_API_URL``) for the user's access token with
an API token read from ``--token-file`` (a file only its owner may read) or from the
environment (``CONTINUUM_HUB_TOKEN``, else ``JUPYTERHUB_API_TOKEN``) — never from the command
line, which ``ps`` shows to everyone.  The API token needs the scope
``custom:continuum-token:read`` (a server's own token has it; a user can create a token with
only ``custom:continuum-token:read!user`` on the hub's token page).  It writes the access
token to ``--output`` (or ``$BEARER_TOKEN_FILE``), mode 0600, atomically, and pulls again at
half its remaining lifetime until it is stopped (SIGTERM, SIGINT) or, with ``--once``, after
the first token.  In a batch run's job (``CONTINUUM_RUN_ID`` set) a refused API token is
reported as the run's credential revoked by its owner, not as a sign-in to renew.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import stat
import sys
from pathlib import Path

from .tokens import (
    ENV_FILE,
    HubTokenError,
    TokenKeeper,
    fetch_access_token,
    signed_out,
    write_token_file,
)

TOKEN_ENV = ("CONTINUUM_HUB_TOKEN", "JUPYTERHUB_API_TOKEN")
#: set in a batch run's job (the workflow service's executor): the agent serves that run
RUN_ENV = "CONTINUUM_RUN_ID"
#: a batch run's hub token refused: its owner revoked the run's credential
RUN_REVOKED = "credential revoked — the run's owner revoked it"


def read_private_token(path: Path) -> str:
    """The API token in ``path``, which must belong to this user and be private to them.

    Raises
    ------
    SystemExit
        With a message when the file is missing, readable by others, or empty.
    """
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"continuum-token-agent: cannot read {path}: {exc}") from None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SystemExit(
            f"continuum-token-agent: {path} must be yours and private (chmod 600 {path})"
        )
    if not text:
        raise SystemExit(f"continuum-token-agent: {path} is empty")
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="continuum-token-agent",
        description="Keep a bearer-token file (WLCG BEARER_TOKEN_FILE) holding a valid access "
        "token from Continuum Hub.",
    )
    parser.add_argument("--output", type=Path, help=f"token file (default: ${ENV_FILE})")
    parser.add_argument(
        "--hub-api-url", help="the hub's API URL, …/hub/api (default: $JUPYTERHUB_API_URL)"
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help="file (mode 0600) with the API token (default: $CONTINUUM_HUB_TOKEN or "
        "$JUPYTERHUB_API_TOKEN)",
    )
    parser.add_argument("--once", action="store_true", help="write one token and exit")
    parser.add_argument(
        "--fraction",
        type=float,
        default=0.5,
        help="pull again after this fraction of the remaining lifetime (default 0.5)",
    )
    parser.add_argument(
        "--min-interval",
        type=float,
        default=5.0,
        help="seconds between pulls at least, and first retry delay (default 5)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the hub")
    args = parser.parse_args(argv)
    if not 0 < args.fraction < 1:
        parser.error("--fraction must be between 0 and 1")
    if args.min_interval < 1 or args.timeout <= 0:
        parser.error("--min-interval must be at least 1 and --timeout positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    output = args.output or (Path(os.environ[ENV_FILE]) if os.environ.get(ENV_FILE) else None)
    api_url = args.hub_api_url or os.environ.get("JUPYTERHUB_API_URL", "")
    if output is None or not api_url:
        sys.exit(f"continuum-token-agent: give --output (or ${ENV_FILE}) and --hub-api-url")
    if args.token_file is not None:
        api_token = read_private_token(args.token_file)
    else:
        api_token = next((os.environ[k] for k in TOKEN_ENV if os.environ.get(k)), "")
    if not api_token:
        sys.exit("continuum-token-agent: no API token (--token-file or $CONTINUUM_HUB_TOKEN)")
    if not output.parent.is_dir():
        sys.exit(f"continuum-token-agent: the folder of {output} does not exist")
    # a run's token refused is its credential revoked, not a sign-in to renew
    refused = RUN_REVOKED if os.environ.get(RUN_ENV) else ""
    if args.once:
        try:
            token = fetch_access_token(api_url, api_token, args.timeout)
        except HubTokenError as exc:
            if refused and exc.status == 401 and not signed_out(exc):
                sys.exit(f"continuum-token-agent: {refused} ({exc})")
            sys.exit(f"continuum-token-agent: {exc}")
        write_token_file(output, token.value)
        return
    keeper = TokenKeeper(
        output,
        api_url,
        api_token,
        fraction=args.fraction,
        min_delay=args.min_interval,
        timeout=args.timeout,
        log=logging.getLogger("continuum-token-agent"),
        refused_message=refused,
    )
    # SIGTERM (the job ends) leaves the loop like Ctrl-C does
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        keeper.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
