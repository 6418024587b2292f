"""Shared fixtures of the Continuum Hub test suite.

Fixture index (the local federation's pieces live in ``tests/fixtures/``, built on the package
``continuum_federation`` in ``images/federation/``, which pytest's ``pythonpath`` lists):

``federation_root`` (session)
    A world-traversable scratch folder under /tmp for the local federation's state (munge socket,
    Slurm spool, provider keys, hub database); removed at the end of the session.
``fixtures.slurm``
    ``munge`` and ``slurm_sites``: a private munge daemon and the two real Slurm clusters
    ``alpha`` and ``beta``; ``accounted_sites``: the same with Slurm accounting on (one slurmdbd
    on a private MariaDB, ``slurm_accounting``), started only when a selected test is marked
    ``accounting`` or uses ``accounted_sites``.
``fixtures.idp``
    ``idp``: the real OpenID provider (npm ``oidc-provider``) with test users; ``idp2``: a
    second one with another issuer (the partner proxy: another alice, bbrown linked to bob);
    ``deploy_hub_port``: the deploy test's hub, for which ``idp`` has a client too.
``fixtures.browser``
    ``chromium`` and ``page`` - Debian's Chromium through Playwright, screenshots on failure.
``fixtures.hub``
    ``hub``: JupyterHub with ``continuum-oidc`` and ``continuum-site`` wired to the above.
``fixtures.tokens``
    ``short_idp``: a provider issuing 60-second access tokens; ``token_hub``: a hub on it and on
    its own Slurm site ``gamma`` (``token_site``) (the living-tokens tests and the batch runs'
    unattended-token test share them).

Ordering: tests marked ``run_first`` run before all others and ``run_last`` after them (see
:func:`pytest_collection_modifyitems`): the unattended-token test's kick-off starts its
eleven-minute run at the beginning of the session, its last test collects the outcome at the
end, and the minutes in between pass while the rest of the suite runs.
``fixtures.sshd``
    ``sshd``: a private OpenSSH server on 127.0.0.1 (the sites' login node for the SSH
    transport), with a hub key authorized for ``alice`` and ``bob`` and the login account
    ``sitelogin`` (``LOGIN_ACCOUNT``: may ``sudo -n -u`` the test users for Slurm's commands).
``fixtures.slurmrestd``
    ``slurmrestd``: Debian's slurmrestd (``rest_auth/jwt``) on 127.0.0.1 in front of the ``beta``
    site, with the hub's token in a 0600 file (the slurmrestd transport's far end).
``fixtures.gateway``
    ``gateway``: the session hub's Dask Gateway (hub service ``dask-gateway``), with helpers for
    user tokens, clients and the gateway clusters' Slurm jobs.
``fixtures.attacker``
    ``attacker_factory``: a man in the middle of the hub's back channel (a rewriting proxy in
    front of a provider's token and userinfo endpoints, and the attacker's web site);
    ``attacker_key``.  Used by ``tests/security/``.
``fixtures.crates``
    ``validator_cache``: an offline cache for ``roc-validator``; ``validate(folder, cache)`` checks
    a provenance crate against the Workflow Run Crate 0.5 profile (level *required*).
``fixtures.workflows``
    ``workflow_service``: the workflow service's real application on 127.0.0.1 with fakes at its
    edges (HubAuth, the hub's API, the site executor), for the unit tests of its REST API,
    manager and tracking loop; ``run_body()`` a valid run request.
``fixtures.rucio``
    ``rucio_server``: a real Rucio 41 server (SQLite, its own environment) with the demo
    accounts, scopes, RSEs and datasets; ``rucio_bulk``: a dataset of 5,000 files over three
    RSEs; ``rucio_registry``; ``rucio_source(**settings)``: started catalogue sources on it.
``fixtures.tap``
    ``tap_server``: a real IVOA TAP server (GAVO DaCHS on a private PostgreSQL) with the demo
    table ``radio.observations``; ``tap_source(**settings)``: started TAP sources on it.
``fixtures.databases``
    ``postgres_cluster``: a private PostgreSQL (Debian's 15), started only when a selected test
    needs it; ``database``: parametrised ``sqlite`` / ``postgresql`` (marked ``postgres``),
    ``database(name)`` makes a new empty database of our stores and returns its URL.
``fixtures.prometheus``
    ``prometheus``: a real Prometheus (Debian's package) scraping the session hub and its services
    every second with the hub's scrape token (``read:metrics``); ``poll()`` waits for a condition.
``fixtures.workflow_runs`` (not a plugin: imported)
    a small parameterised notebook, the demo registry and batch-run plans for the site executor.
``fixtures.unit_exec`` (not a plugin: imported)
    ``start_unit(path)``: a systemd unit's ``ExecStart`` started as the unit says (user,
    environment files, working directory, log file) where no systemd runs; ``stop()`` ends it
    and every process it started, like ``KillMode=mixed``.  Used by the deploy test.
``fixtures.deployed_hub`` (not a plugin: imported)
    the deploy test's playbook runs (``run_playbook``), its units started and waited for
    (``DeployedHub``, ``start_units``: sign-in through TLS, the REST API as the user), the
    playbook's sudo rule in ``/etc/sudoers.d`` for a while (``installed_sudoers``).
``fixtures.ledger_jobs`` (not a plugin: imported)
    ``usage_job()``: a job of the usage ledger with the tests' defaults (alice on alpha).
``fixtures.fake_idp`` (not a plugin: imported)
    ``fake_idp()``: a small fake OpenID provider on 127.0.0.1 (discovery, keys, refresh grants,
    userinfo, revocation; chosen answers per endpoint) and ``hub_authenticator``: the unit
    tests' HTTP boundary of the provider client and the token refresher.
``fixtures.local_gateway`` (not a plugin: imported)
    ``local_gateway(state)``: a throwaway ``dask-gateway-server`` with its ``LocalBackend`` and
    simple authentication on free 127.0.0.1 ports (the Clusters routes' and notebook widgets'
    fast tests, and a baseline of ``bench/gateway_scale.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.markers import mark_by_fixtures

pytest_plugins = [
    "fixtures.slurm",
    "fixtures.idp",
    "fixtures.hub",
    "fixtures.tokens",
    "fixtures.browser",
    "fixtures.sshd",
    "fixtures.slurmrestd",
    "fixtures.gateway",
    "fixtures.attacker",
    "fixtures.crates",
    "fixtures.workflows",
    "fixtures.rucio",
    "fixtures.tap",
    "fixtures.prometheus",
    "fixtures.databases",
]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root folder."""
    return REPO


@pytest.fixture(scope="session")
def federation_root() -> Iterator[Path]:
    """Scratch folder for the federation's state, traversable by the demo users' jobs."""
    path = Path(tempfile.mkdtemp(prefix="continuum-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _process_umask_kept() -> Iterator[None]:
    """Every test leaves the process's umask as it found it: the in-job commands' mains
    (``continuum-workflow-run``) set 077 when unit tests call them in-process, and folders
    made afterwards by session fixtures (PostgreSQL's, DaCHS's) must stay traversable."""
    mask = os.umask(0o022)
    os.umask(mask)
    yield
    os.umask(mask)


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects: it reads the markers added here
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Add the markers implied by each test's fixtures (``slow``, ``browser``, ``spawner``:
    ``fixtures.markers``), then move ``run_first`` tests to the front and ``run_last`` tests
    to the end (stable)."""
    mark_by_fixtures(items)

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("run_first"):
            return 0
        return 2 if item.get_closest_marker("run_last") else 1

    items.sort(key=rank)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keep each phase's report on the test item (browser tests screenshot on failure)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    if report.failed and call.excinfo is not None and "Timeout" in str(call.excinfo.value):
        _TIMED_OUT.append(_where_it_hung(item, report, call))
    return report


#: one entry per test that pytest-timeout stopped (printed at the end of the run)
_TIMED_OUT: list[str] = []
_PYTEST = re.compile(r"/(_pytest|pluggy|pytest_timeout)\b")
_OURS = ("/tests/", "/hub-config/", "/spawners/", "/extensions/", "/images/", "/widgets/")


def _where_it_hung(item: pytest.Item, report: pytest.TestReport, call: Any) -> str:
    """The phase a timed-out test was in, the phases' durations before it and the main
    thread's innermost frames (ours, and the library call they were in).

    pytest-timeout dumps every thread's stack, and a CI log's tail often shows only the last
    threads of that dump (a pool's idle worker), not the test's own thread.
    """
    earlier = [
        f"{when} {rep.duration:.0f} s"
        for when in ("setup", "call")
        if (rep := getattr(item, f"rep_{when}", None)) is not None and rep is not report
    ]
    frames = [
        f"    {entry.path}:{entry.lineno + 1} in {entry.name}"
        for entry in call.excinfo.traceback
        if any(part in str(entry.path) for part in _OURS)
    ][-6:]
    library = [e for e in call.excinfo.traceback if not _PYTEST.search(str(e.path))]
    if library and not any(part in str(library[-1].path) for part in _OURS):
        last = library[-1]
        frames.append(f"    (innermost) {last.path}:{last.lineno + 1} in {last.name}")
    before = f" after {', '.join(earlier)}" if earlier else ""
    return f"{item.nodeid}: timed out in {report.when}{before}\n" + "\n".join(frames)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Where each timed-out test was (see :func:`_where_it_hung`), near the log's tail."""
    if _TIMED_OUT:
        terminalreporter.section("timed out: where the test's thread was")
        for entry in _TIMED_OUT:
            terminalreporter.write_line(entry)


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """Write the running test's id where ``CONTINUUM_TEST_CURRENT`` says (``make test`` sets it).

    A test that kills the interpreter (a signal in native code) leaves no pytest report, and
    faulthandler's dump of every thread can push the culprit out of a CI log's tail; the
    Makefile prints this file's content when pytest dies of a signal.
    """
    current = os.environ.get("CONTINUUM_TEST_CURRENT")
    if current:
        Path(current).write_text(nodeid + "\n")
