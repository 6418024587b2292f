"""Prometheus of the local federation: its configuration, alert rules and process.

Debian's ``prometheus`` package (2.42) runs here from its binary, without its system service.
:func:`scrape_config` writes ``prometheus.yml``: the hub's ``/hub/metrics`` and each service's
``/services/<name>/metrics``, all through the hub's proxy, with the scraper's token
(``MetricsScrape.token_file``, 0600) as ``authorization.credentials_file``.  :func:`alert_rules`
are the operators' alerts; their windows and ``for:`` are parameters so the tests can make them
fire in seconds (``promtool check rules`` checks them in a test).  :class:`LocalPrometheus`
starts the server on a free 127.0.0.1 port and answers instant queries (:meth:`query`).
"""

from __future__ import annotations

import json
import secrets
import shutil
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .process import ManagedProcess, Service, free_port

#: the services whose ``/services/<name>/metrics`` Prometheus scrapes besides the hub
SERVICES = ("workflows", "catalogue", "dask-gateway")
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


@dataclass(frozen=True)
class Target:
    """One scrape job: ``base_url`` + ``path`` (the hub's proxy and a metrics path)."""

    job: str
    base_url: str
    path: str
    token_file: Path | None = None


def hub_targets(hub_url: str, token_file: Path, services: Sequence[str] = SERVICES) -> list[Target]:
    """The hub's and its services' metrics endpoints, all behind the hub's proxy."""
    base = hub_url.rstrip("/")
    found = [Target("hub", base, "/hub/metrics", token_file)]
    found += [Target(name, base, f"/services/{name}/metrics", token_file) for name in services]
    return found


def write_token_file(path: Path, token: str | None = None) -> str:
    """The scrape token in ``path`` (0600): kept when there, else a new random one."""
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = token or secrets.token_hex(32)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(token)
    return token


def scrape_config(
    targets: Sequence[Target], rule_files: Sequence[Path], interval: str, evaluation: str
) -> dict[str, Any]:
    """``prometheus.yml`` as a dict."""
    jobs = []
    for target in targets:
        url = urllib.parse.urlsplit(target.base_url)
        job: dict[str, Any] = {
            "job_name": target.job,
            "scheme": url.scheme or "http",
            "metrics_path": url.path.rstrip("/") + target.path,
            "static_configs": [{"targets": [url.netloc]}],
        }
        if target.token_file is not None:
            # ``Authorization: Bearer …``, which the hub and HubAuth accept like ``token …``
            job["authorization"] = {"credentials_file": str(target.token_file)}
        jobs.append(job)
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": evaluation},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": jobs,
    }


def alert_rules(window: str = "5m", hold: str = "5m") -> dict[str, Any]:
    """The alert rules (Prometheus' rule-file format): ``window`` is the rates' range, ``hold``
    each alert's ``for:``."""
    status = "continuum_scheduler_status_calls_total"

    def rule(name: str, expr: str, summary: str, severity: str = "warning") -> dict[str, Any]:
        return {
            "alert": name,
            "expr": expr,
            "for": hold,
            "labels": {"severity": severity},
            "annotations": {"summary": summary},
        }

    return {
        "groups": [
            {
                "name": "continuum",
                "rules": [
                    rule(
                        "ContinuumSiteUnreachable",
                        # the hub's probe (every site, jobs or not), or the status calls for
                        # the jobs there all failing (a hub whose probe is off)
                        "max by (site) (continuum_site_up) == 0 "
                        f'or (sum by (site) (rate({status}{{outcome="ok"}}[{window}])) == 0 '
                        f'and sum by (site) (rate({status}{{outcome="error"}}[{window}])) > 0)',
                        "Site {{ $labels.site }}: its scheduler answers no status call",
                        "critical",
                    ),
                    rule(
                        "ContinuumSiteStatusCallsFailing",
                        f'sum by (site) (rate({status}{{outcome="error"}}[{window}])) '
                        f"/ sum by (site) (rate({status}[{window}])) > 0.1",
                        "Site {{ $labels.site }}: more than 10% of status calls fail",
                    ),
                    rule(
                        "ContinuumSpawnFailures",
                        "sum by (site) (rate(continuum_spawn_duration_seconds_count"
                        f'{{outcome="failure"}}[{window}])) > 0.01',
                        "Site {{ $labels.site }}: servers fail to start",
                    ),
                    rule(
                        "ContinuumTokenRefreshFailures",
                        "sum by (provider) (rate(continuum_token_refreshes_total"
                        f'{{outcome!="success"}}[{window}])) > 0',
                        "Provider {{ $labels.provider }}: token refreshes fail",
                    ),
                    rule(
                        "ContinuumTargetDown",
                        "up == 0",
                        "{{ $labels.job }} cannot be scraped",
                        "critical",
                    ),
                ],
            }
        ]
    }


class LocalPrometheus(Service):
    """A Prometheus server on 127.0.0.1 scraping ``targets``.

    Parameters
    ----------
    state_dir
        Folder of its configuration, rules, data and log.
    targets
        What to scrape (:func:`hub_targets`; tests add their own exporters).
    interval
        Scrape and rule-evaluation interval (``"1s"`` in tests).
    window, hold
        The alert rules' rate range and ``for:`` (:func:`alert_rules`).
    """

    def __init__(
        self,
        state_dir: Path,
        targets: Sequence[Target],
        *,
        interval: str = "15s",
        window: str = "5m",
        hold: str = "5m",
        port: int | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.targets = list(targets)
        self.interval = interval
        self.window = window
        self.hold = hold
        self.port = port or free_port()
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def rules_path(self) -> Path:
        return self.state_dir / "continuum-alerts.yml"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "prometheus.yml"

    def write_files(self) -> None:
        """``prometheus.yml`` and the alert rules in the state folder."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        rules = alert_rules(self.window, self.hold)
        self.rules_path.write_text(yaml.safe_dump(rules, sort_keys=False))
        config = scrape_config(self.targets, [self.rules_path], self.interval, self.interval)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def start(self, timeout: float = 60.0) -> LocalPrometheus:
        """Write the files, start Prometheus and wait until it is ready."""
        if shutil.which(PROMETHEUS) is None:
            raise RuntimeError("Debian's prometheus is not installed (images/setup.sh)")
        self.write_files()
        argv = [
            PROMETHEUS,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.state_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
        ]
        self.process = ManagedProcess("prometheus", argv, self.state_dir).start_ready(
            self._ready, timeout
        )
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>`` → its ``data`` (``RuntimeError`` with Prometheus' message when
        the query fails)."""
        query = urllib.parse.urlencode(params)
        request = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                answer = json.load(response)
        except urllib.error.HTTPError as exc:
            answer = json.load(exc)
        if answer.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {answer.get('error', answer)}")
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of ``expr`` now."""
        return list(self.api("query", query=expr)["result"])

    def alerts(self) -> list[Mapping[str, Any]]:
        """The alerts now pending or firing."""
        return list(self.api("alerts")["alerts"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
