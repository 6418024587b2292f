"""Sites without an account for the user: registry entries, option checks, the spawn form, the
spawner's checks, and the transport's refusal of names that are not POSIX accounts.

This machine's user database is the boundary: :func:`passwd` replaces it with a fixed set of
accounts (``bob``'s account at alpha is ``carol`` through a map file; ``bob`` has none at beta).
"""

from __future__ import annotations

import pwd
import re
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from tornado import web
from traitlets.config import Config

from continuum_spawners import accounts
from continuum_spawners.accounts import AccountPolicy
from continuum_spawners.form import render_form
from continuum_spawners.options import (
    SOONEST,
    JobRequest,
    OptionsError,
    candidates,
    validate_options,
)
from continuum_spawners.schedulers.transport import LocalTransport, TransportError
from continuum_spawners.sites import RegistryError, SiteRegistry
from continuum_spawners.spawner import SiteSpawner

DEMO = Path(__file__).resolve().parents[2] / "hub-config" / "sites.demo.yaml"
ENV = {"CONTINUUM_SLURM_CONF_ALPHA": "/a", "CONTINUUM_SLURM_CONF_BETA": "/b"}
BOTH = ["vo.hep.example", "vo.radio.example"]
NO_ALPHA = "You have no account at Alpha HPC centre (CPU) (alpha)"
NO_BETA = "You have no account at Beta GPU centre (beta)"
KNOWN = {"alice", "carol", "dave"}


@pytest.fixture(autouse=True)
def passwd(monkeypatch):
    def entry(name: str) -> pwd.struct_passwd | None:
        if name not in KNOWN:
            return None
        return pwd.struct_passwd((name, "x", 2000, 2000, "", f"/home/{name}", "/bin/sh"))

    monkeypatch.setattr(accounts, "passwd_entry", entry)


@pytest.fixture(scope="module")
def registry():
    return SiteRegistry.from_file(DEMO, ENV)


def demo_with(**policies) -> dict:
    data = yaml.safe_load(DEMO.read_text())
    for entry in data["sites"]:
        if entry["name"] in policies:
            entry["user_accounts"] = policies[entry["name"]]
    return data


# -- the registry's user_accounts --------------------------------------------------------------


@pytest.mark.parametrize(
    "entry,policy",
    [
        (
            {"policy": "pattern", "pattern": "hub_{username}"},
            AccountPolicy("pattern", "hub_{username}"),
        ),
        ({"policy": "map", "file": "/etc/ch/a.yaml"}, AccountPolicy("map", file="/etc/ch/a.yaml")),
        (
            {"policy": "pool", "prefix": "workshop", "first": 1, "last": 12},
            AccountPolicy("pool", accounts=tuple(f"workshop{n:02d}" for n in range(1, 13))),
        ),
        (
            {"policy": "pool", "accounts": ["g1", "g2"]},
            AccountPolicy("pool", accounts=("g1", "g2")),
        ),
    ],
    ids=["pattern", "map", "pool-range", "pool-list"],
)
def test_registry_user_accounts(entry, policy):
    registry = SiteRegistry.from_dict(demo_with(alpha=entry), ENV)
    assert registry.get("alpha").user_accounts == policy
    assert registry.get("beta").user_accounts is None


@pytest.mark.parametrize(
    "entry,message",
    [
        ({"policy": "map"}, "at sites/alpha/user_accounts: policy map needs file"),
        (
            {"policy": "map", "file": "accounts.yaml"},
            "at sites/0/user_accounts/file: 'accounts.yaml' does not match",
        ),
        ({"policy": "pattern", "pattern": "{username!r}"}, "{username} is not one of"),
        ({"policy": "pattern", "pattern": "Hub_{username}"}, "only lowercase letters"),
        ({"policy": "pattern", "pattern": "guest"}, "must contain {username}"),
        ({"policy": "pool", "prefix": "w", "first": 9, "last": 2}, "first (9) is after last (2)"),
        ({"policy": "pool", "accounts": ["ok", "Not-OK"]}, "at sites/0/user_accounts/accounts/1"),
        (
            {"policy": "pool", "accounts": ["a"], "prefix": "w", "last": 3},
            "either accounts or prefix",
        ),
        ({"policy": "pool"}, "policy pool needs accounts, or prefix and last"),
        ({"policy": "pattern", "pattern": "{username}", "file": "/x"}, "file does not apply"),
    ],
    ids=[
        "map-no-file",
        "relative-file",
        "conversion",
        "uppercase",
        "shared-account",
        "empty-range",
        "bad-pool-name",
        "both-pool-forms",
        "empty-pool",
        "stray-key",
    ],
)
def test_registry_user_accounts_errors(entry, message):
    with pytest.raises(RegistryError, match=re.escape(message)):
        SiteRegistry.from_dict(demo_with(alpha=entry), ENV)


def test_registry_user_accounts_error_names_line_and_column(tmp_path):
    path = tmp_path / "sites.yaml"
    text = DEMO.read_text().replace(
        "    scheduler: slurm\n", "    scheduler: slurm\n    user_accounts: {policy: map}\n", 1
    )
    path.write_text(text)
    line = text.splitlines().index("    user_accounts: {policy: map}") + 1
    with pytest.raises(RegistryError, match=rf"^{path}:{line}:20: at sites/alpha/user_accounts"):
        SiteRegistry.from_file(path, ENV)


# -- option checks and the form ---------------------------------------------------------------


@pytest.mark.parametrize(
    "options,unavailable,message",
    [
        ({"site": "beta"}, {"beta": NO_BETA}, NO_BETA),
        ({"site": "beta", "partition": "gpu", "gpus": 1}, {"beta": NO_BETA}, NO_BETA),
        ({}, {"alpha": NO_ALPHA, "beta": NO_BETA}, f"{NO_ALPHA}; {NO_BETA}"),
        ({"site": SOONEST}, {"alpha": NO_ALPHA, "beta": NO_BETA}, f"{NO_ALPHA}; {NO_BETA}"),
    ],
    ids=["named-site", "named-partition", "default-site", "soonest"],
)
def test_site_without_account_is_refused_with_403(registry, options, unavailable, message):
    with pytest.raises(OptionsError) as info:
        validate_options(options, registry, BOTH, unavailable)
    assert (info.value.status, str(info.value)) == (403, message)


def test_default_site_is_the_first_with_an_account(registry):
    assert validate_options({}, registry, BOTH, {"alpha": NO_ALPHA}).site == "beta"


def test_soonest_leaves_out_sites_without_account(registry):
    request = validate_options({"site": SOONEST}, registry, BOTH, {"beta": NO_BETA})
    assert {c.site for c in candidates(request, registry, BOTH)} == {"alpha", "beta"}
    assert {c.site for c in candidates(request, registry, BOTH, {"beta": NO_BETA})} == {"alpha"}
    # a GPU job fits only beta: without an account there, nothing fits
    with pytest.raises(OptionsError, match="gpus must be between 0 and 0"):
        validate_options({"site": SOONEST, "gpus": 1}, registry, BOTH, {"beta": NO_BETA})


def test_form_shows_site_without_account_as_unavailable(registry):
    html = render_form(registry.for_groups(BOTH), None, {"beta": NO_BETA})
    assert NO_BETA in html  # the notice
    assert 'value="beta/gpu"' not in html  # nothing of beta can be chosen
    group = re.search(
        r'<optgroup label="Beta GPU centre — ([^"]*)" disabled>(.*?)</optgroup>', html
    )
    assert group and group.group(1) == NO_BETA
    assert "<option disabled" in group.group(2) and "value=" not in group.group(2)
    assert '<option value="alpha/interactive" selected' in html
    assert ">Beta GPU centre · Python" not in html  # nor its environments


def test_form_when_no_site_has_an_account(registry):
    html = render_form(registry.for_groups(BOTH), None, {"alpha": NO_ALPHA, "beta": NO_BETA})
    assert NO_ALPHA in html and NO_BETA in html
    assert 'name="target"' not in html


def test_form_escapes_messages(registry):
    html = render_form(registry.for_groups(BOTH), None, {"beta": "<b>no</b>"})
    assert "<b>no</b>" not in html and "&lt;b&gt;no&lt;/b&gt;" in html


# -- the spawner ------------------------------------------------------------------------------


@pytest.fixture
def spawner(tmp_path):
    """bob (both VOs): carol at alpha through a map file, no account at beta."""
    accounts_file = tmp_path / "alpha.yaml"
    accounts_file.write_text("bob: carol\n")
    accounts_file.with_name("beta.yaml").write_text("alice: alice\n")
    registry = tmp_path / "sites.yaml"
    registry.write_text(
        yaml.safe_dump(
            demo_with(
                alpha={"policy": "map", "file": str(accounts_file)},
                beta={"policy": "map", "file": str(accounts_file.with_name("beta.yaml"))},
            )
        )
    )
    user = SimpleNamespace(
        name="bob", groups=[SimpleNamespace(name=g) for g in BOTH], url="/user/bob/"
    )
    config = Config(
        {
            "SiteSpawner": {
                "registry_path": str(registry),
                "account_resolver_class": "continuum_spawners.account_map.AccountMapper",
            },
            "AccountMapper": {"lease_db": str(tmp_path / "leases.sqlite")},
        }
    )
    with pytest.MonkeyPatch.context() as patch:
        for key, value in ENV.items():
            patch.setenv(key, value)
        yield SiteSpawner(user=user, config=config)


def test_spawner_runs_as_the_mapped_account(spawner):
    assert type(spawner.accounts).__name__ == "AccountMapper"
    spawner.request = spawner.check_options({"site": "alpha"})
    assert spawner.unix_account(spawner.site, allocate=True).pw_name == "carol"
    spawner.site_account = "carol"  # what start() records (the job's environment: integration)
    assert spawner.job_spec([]).workdir == "/home/carol"
    spawner.job_id = "17"
    assert spawner.get_state()["account"] == "carol"


def test_spawner_refuses_site_without_account(spawner):
    with pytest.raises(web.HTTPError) as info:
        spawner._apply_options({"site": "beta"})
    assert (info.value.status_code, info.value.log_message) == (403, NO_BETA)
    form = spawner._render_options_form()
    assert NO_BETA in form and 'value="beta/gpu"' not in form
    with pytest.raises(web.HTTPError) as info:
        spawner.unix_account(spawner.registry.get("beta"), allocate=True)
    assert info.value.status_code == 403


def test_saved_account_is_kept_for_status_and_cancel(spawner):
    request = asdict(JobRequest("alpha", "interactive", 1, 1, 0, 60))
    spawner.load_state({"job_id": "17", "request": request, "account": "dave"})
    assert spawner.site_account == "dave" and spawner.unix_account().pw_name == "dave"
    assert spawner.get_state()["account"] == "dave"
    spawner.load_state({"job_id": "18"})  # saved before accounts were mapped
    assert spawner.site_account == ""


# -- transports -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user",
    ["-u", "root;id", "Bob", "a b", "x" * 33],
    ids=["option", "shell", "upper", "blank", "long"],
)
def test_local_transport_refuses_non_posix_accounts(user):
    with pytest.raises(TransportError, match="not a POSIX account name"):
        LocalTransport().command(["squeue"], user, {})
