"""The hub-host playbook (``deploy/``) against this machine, into a throwaway root.

The playbook runs twice with a local connection; every system path it writes lies under a
temporary folder (``continuum_root``), packages, the venv, the proxy's npm install and the
service manager are switched off by variables (this machine's test environment stays as it is;
no systemd runs here).  The second run must change nothing.  Then the proxy's and the hub's
units are started as the units say (user, environment file, working directory, log file) and the
hub answers ``/hub/health`` through the proxy's TLS, with the certificate the "site" provided.

The hub's account (``continuum-deploytest``) is a real system user the playbook creates; the
test removes it again.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import ssl
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from continuum_federation.process import free_port
from fixtures.unit_exec import parse_unit, start_unit, stop

# slow: two playbook runs take about 40 s on a quiet 2-core machine, over 2 min on a busy one
pytestmark = [pytest.mark.integration, pytest.mark.deploy, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
HUB_USER = "continuum-deploytest"
PRIMARY_SECRET = "primary-client-secret-7f3a"
PARTNER_SECRET = "partner-client-secret-91c2"
UNITS = ("continuum-proxy.service", "continuum-hub.service")
RECAP = re.compile(r"^localhost\s*:.*\bchanged=(\d+).*\bfailed=(\d+)", re.MULTILINE)


def run_playbook(vars_file: Path, home: Path) -> tuple[int, str]:
    """Run ``deploy/run`` with the test's variables; its exit status and output."""
    env = {
        **os.environ,
        "LC_ALL": "C.UTF-8",
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    result = subprocess.run(
        [str(REPO / "deploy" / "run"), "-e", f"@{vars_file}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def recap(output: str) -> tuple[int, int]:
    """``changed`` and ``failed`` of the play recap."""
    match = RECAP.search(output)
    assert match, output[-3000:]
    return int(match.group(1)), int(match.group(2))


def remove_hub_user() -> None:
    """Remove the test's hub account and group (the playbook made them)."""
    subprocess.run(["userdel", HUB_USER], capture_output=True, check=False)
    subprocess.run(["groupdel", HUB_USER], capture_output=True, check=False)


@pytest.fixture(scope="module")
def deployment(federation_root: Path) -> Iterator[dict[str, Any]]:
    """The playbook run twice into a throwaway root: the variables and both runs' outputs."""
    # under the session's world-traversable scratch folder: the hub's user walks into it
    base = federation_root / "deploy"
    base.mkdir(mode=0o755)
    site = base / "site"
    site.mkdir()
    # the certificate files a site provides (a self-signed one for 127.0.0.1)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(site / "hub.key"), "-out", str(site / "hub.crt")],
        capture_output=True, check=True,
    )  # fmt: skip
    confs = {}
    for name in ("alpha", "beta"):
        # the demo registry names two sites; their schedulers need not answer for /hub/health
        confs[name] = str(site / f"{name}.conf")
        Path(confs[name]).write_text("ClusterName=unreachable\n")
    proxy_port = free_port()
    variables = {
        "continuum_root": str(base / "root"),
        "continuum_install_packages": False,
        "continuum_install_venv": False,
        "continuum_install_proxy": False,
        "continuum_manage_services": False,
        "continuum_hub_user": HUB_USER,
        "continuum_venv": sys.prefix,
        "continuum_source_dir": str(REPO),
        "continuum_proxy_command": str(REPO / "node_modules" / ".bin" / "configurable-http-proxy"),
        "continuum_public_url": f"https://127.0.0.1:{proxy_port}",
        "continuum_proxy_ip": "127.0.0.1",
        "continuum_proxy_port": proxy_port,
        "continuum_proxy_api_port": free_port(),
        "continuum_hub_port": free_port(),
        "continuum_gateway_ports": {
            "port": free_port(),
            "tcp_port": free_port(),
            "api_port": free_port(),
        },
        "continuum_tls_cert": str(site / "hub.crt"),
        "continuum_tls_key": str(site / "hub.key"),
        "continuum_oidc_issuer": "https://idp.invalid",
        "continuum_oidc_client_id": "hub",
        "continuum_oidc_client_secret": PRIMARY_SECRET,
        "continuum_providers": {"partner": {"issuer": "https://partner.invalid", "client_id": "h"}},
        "continuum_provider_secrets": {"partner": PARTNER_SECRET},
        "continuum_allowed_groups": ["vo.hep.example"],
        "continuum_site_registry": (REPO / "hub-config" / "sites.demo.yaml").read_text(),
        "continuum_slurm_confs": confs,
    }
    vars_file = site / "vars.json"
    vars_file.write_text(json.dumps(variables))
    vars_file.chmod(0o600)
    remove_hub_user()
    try:
        first = run_playbook(vars_file, base / "ansible")
        second = run_playbook(vars_file, base / "ansible")
        yield {"vars": variables, "root": base / "root", "runs": (first, second)}
    finally:
        remove_hub_user()


def test_second_run_changes_nothing(deployment: dict[str, Any]) -> None:
    (rc1, out1), (rc2, out2) = deployment["runs"]
    assert rc1 == 0, out1[-4000:]
    changed, failed = recap(out1)
    assert changed > 0 and failed == 0
    assert rc2 == 0, out2[-4000:]
    assert recap(out2) == (0, 0), out2[-4000:]


def test_secrets_are_private_and_never_printed(deployment: dict[str, Any]) -> None:
    etc = deployment["root"] / "etc" / "continuum-hub"
    secret_files = [
        *(etc / "secrets").iterdir(),
        etc / "hub.env",
        etc / "proxy.env",
        etc / "tls" / "key.pem",
        etc / "continuum_hub_config.json",
    ]
    assert {p.name for p in (etc / "secrets").iterdir()} == {
        "cookie_secret", "crypt_key", "proxy_token", "oidc-partner",
    }  # fmt: skip
    values = {PRIMARY_SECRET, PARTNER_SECRET}
    hub_user = pwd.getpwnam(HUB_USER)
    for path in secret_files:
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600, path
        assert (info.st_uid, info.st_gid) == (hub_user.pw_uid, hub_user.pw_gid), path
        if path.parent.name == "secrets":
            values.add(path.read_text().strip())
    assert (etc / "secrets" / "oidc-partner").read_text().strip() == PARTNER_SECRET
    for _, output in deployment["runs"]:
        for value in values:
            assert value not in output
    layer = json.loads((etc / "continuum_hub_config.json").read_text())
    assert layer["ConfigurableHTTPProxy"]["should_start"] is False
    partner = layer["FederatedAuthenticator"]["providers"]["partner"]
    assert partner["client_secret_file"] == str(etc / "secrets" / "oidc-partner")
    assert PRIMARY_SECRET not in json.dumps(layer)


def test_units_verify(deployment: dict[str, Any]) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit_dir = deployment["root"] / "etc" / "systemd" / "system"
    result = subprocess.run(
        [analyze, "verify", *(str(unit_dir / unit) for unit in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    hub = parse_unit(unit_dir / "continuum-hub.service")
    assert hub.get("Service", "Restart") == "on-failure"
    # the spawner's `sudo -n -u ACCOUNT` needs set-uid: the hub unit must not forbid it
    assert hub.get("Service", "NoNewPrivileges") is None
    proxy = parse_unit(unit_dir / "continuum-proxy.service")
    assert proxy.get("Service", "NoNewPrivileges") == "yes"


def hub_health(url: str, cafile: str) -> int | None:
    """The status of ``/hub/health`` through the proxy's TLS, ``None`` while it cannot answer."""
    context = ssl.create_default_context(cafile=cafile)
    try:
        with urllib.request.urlopen(f"{url}/hub/health", context=context, timeout=3) as response:
            return response.status
    except OSError:
        return None


def living_processes(uid: int) -> list[str]:
    """Command lines of the processes of ``uid`` that are not zombies."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or entry.stat().st_uid != uid:
                continue
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
            if state != "Z":
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def test_units_start_and_hub_answers(deployment: dict[str, Any]) -> None:
    variables = deployment["vars"]
    root = deployment["root"]
    unit_dir = root / "etc" / "systemd" / "system"
    processes = []
    try:
        for unit in UNITS:
            processes.append(start_unit(unit_dir / unit))
        proxy, hub = processes
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and hub.poll() is None and proxy.poll() is None:
            status = hub_health(variables["continuum_public_url"], variables["continuum_tls_cert"])
            if status == 200:
                break
            time.sleep(0.3)
        log = root / "var" / "log" / "continuum-hub" / "jupyterhub.log"
        assert status == 200, log.read_text()[-4000:] if log.exists() else "no hub log"
        # the processes run as the unit's user, in its working directory
        uid = pwd.getpwnam(HUB_USER).pw_uid
        for process in processes:
            assert os.stat(f"/proc/{process.pid}").st_uid == uid
        assert os.readlink(f"/proc/{hub.pid}/cwd") == str(root / "var" / "lib" / "continuum-hub")
        assert (root / "var" / "lib" / "continuum-hub" / "jupyterhub.sqlite").exists()
    finally:
        for process in reversed(processes):
            stop(process)
    # stopped as systemd stops the unit, the hub leaves none of its services behind (killed
    # ones may show as zombies until init reaps them: not counted)
    deadline = time.monotonic() + 10
    while (left := living_processes(pwd.getpwnam(HUB_USER).pw_uid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, left
