"""What the user's server knows about the batch job it runs in.

Two sources, merged by :class:`JobInfoManager`: the hub (``GET {JUPYTERHUB_API_URL}/continuum/job``
with the server's own token — it knows the scheduler's view) and, when the hub cannot be reached,
the job's environment (``CONTINUUM_*`` set by the spawner and the in-job launcher, ``SLURM_*``
by Slurm).  Both become one :class:`JobInfo`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Any as AnyTrait
from traitlets.config import LoggingConfigurable

Source = Literal["hub", "environment"]
STATES = ("pending", "running", "gone", "unknown")


def parse_time(value: object) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text (``Z`` or an offset); ``None`` if unusable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:  # a naive time from the launcher is UTC by contract
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime | None) -> str | None:
    """ISO 8601 UTC with ``Z``, as the hub writes it."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@dataclasses.dataclass(frozen=True)
class JobInfo:
    """The batch job behind a user's server, as shown by the session extension.

    Times are aware UTC datetimes; every field but ``source`` may be unknown (``None``).
    """

    source: Source
    site: str | None = None
    site_label: str | None = None
    partition: str | None = None
    job_id: str | None = None
    state: str = "unknown"
    node: str | None = None
    cores: int | None = None
    memory_gb: float | None = None
    gpus: int | None = None
    environment: str = "default"
    walltime_minutes: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None

    def remaining_seconds(self, now: datetime) -> int | None:
        """Whole seconds until the walltime ends (never negative); ``None`` when unknown."""
        if self.end_time is None:
            return None
        return max(0, int((self.end_time - now).total_seconds()))

    def merged(self, fallback: JobInfo) -> JobInfo:
        """This information, with each unknown field taken from ``fallback``."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            mine = getattr(self, field.name)
            unknown = mine is None or (field.name == "state" and mine == "unknown")
            unknown = unknown or (field.name == "environment" and mine == "default")
            values[field.name] = getattr(fallback, field.name) if unknown else mine
        values["source"] = self.source
        return JobInfo(**values)

    def to_json(self, now: datetime) -> dict[str, Any]:
        """The JSON the lab extensions read (times ISO 8601 UTC, plus the server's ``now``)."""
        data = dataclasses.asdict(self)
        data["start_time"] = format_time(self.start_time)
        data["end_time"] = format_time(self.end_time)
        data["remaining_seconds"] = self.remaining_seconds(now)
        data["now"] = format_time(now)
        return data


def job_from_environment(env: Mapping[str, str]) -> JobInfo:
    """What the job's environment says (the spawner's ``CONTINUUM_*`` and Slurm's variables)."""
    start = parse_time(env.get("CONTINUUM_JOB_START"))
    end = parse_time(env.get("CONTINUUM_JOB_END"))
    job_id = _text(env.get("SLURM_JOB_ID"))
    return JobInfo(
        source="environment",
        site=_text(env.get("CONTINUUM_SITE")),
        site_label=_text(env.get("CONTINUUM_SITE_LABEL")),
        partition=_text(env.get("CONTINUUM_PARTITION")),
        job_id=job_id,
        # the server runs inside the job: if there is a job, it is running
        state="running" if job_id else "unknown",
        node=_text(env.get("SLURMD_NODENAME")),
        cores=_int(env.get("CONTINUUM_CORES")),
        memory_gb=_float(env.get("CONTINUUM_MEMORY_GB")),
        gpus=_int(env.get("CONTINUUM_GPUS")),
        environment=_text(env.get("CONTINUUM_ENVIRONMENT")) or "default",
        walltime_minutes=_int(env.get("CONTINUUM_WALLTIME_MINUTES")),
        start_time=start,
        end_time=end,
    )


def job_from_hub(data: Mapping[str, Any]) -> JobInfo:
    """The hub's answer to ``GET /hub/api/continuum/job``, checked field by field."""
    state = data.get("state")
    return JobInfo(
        source="hub",
        site=_text(data.get("site")),
        site_label=_text(data.get("site_label")),
        partition=_text(data.get("partition")),
        job_id=_text(data.get("job_id")),
        state=state if state in STATES else "unknown",
        node=_text(data.get("node")),
        cores=_int(data.get("cores")),
        memory_gb=_float(data.get("memory_gb")),
        gpus=_int(data.get("gpus")),
        environment=_text(data.get("environment")) or "default",
        walltime_minutes=_int(data.get("walltime_minutes")),
        start_time=parse_time(data.get("start_time")),
        end_time=parse_time(data.get("end_time")),
    )


class JobInfoManager(LoggingConfigurable):
    """Answers "which job is this server, and how long has it left?".

    Its parent is the :class:`~continuum_lab.config.ContinuumLab` whose ``hub_timeout`` applies.
    The environment is read once (it does not change during a job); the hub is asked on every
    call, because the scheduler's view (state, node, end time) can change.
    """

    environ = AnyTrait(
        help="The job's environment (a mapping); the process environment unless a test sets it."
    )

    def _environ_default(self) -> Mapping[str, str]:
        return dict(os.environ)

    @property
    def from_environment(self) -> JobInfo:
        """What the environment says."""
        return job_from_environment(self.environ)

    async def fetch_hub(self) -> JobInfo | None:
        """The hub's view of this server's job; ``None`` (and a log line) when unavailable."""
        api_url = self.environ.get("JUPYTERHUB_API_URL", "")
        token = self.environ.get("JUPYTERHUB_API_TOKEN", "")
        if not api_url.startswith(("http://", "https://")) or not token:
            return None
        timeout = float(getattr(self.parent, "hub_timeout", 5.0))
        request = HTTPRequest(
            api_url.rstrip("/") + "/continuum/job",
            headers={"Authorization": f"token {token}", "Accept": "application/json"},
            connect_timeout=timeout,
            request_timeout=timeout,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
            data = json.loads(response.body)
        except HTTPClientError as exc:
            self.log.warning("continuum_lab: the hub answered %s to the job query", exc.code)
            return None
        except (OSError, ValueError) as exc:
            self.log.warning("continuum_lab: the hub's job query failed: %s", exc)
            return None
        if not isinstance(data, dict):
            self.log.warning("continuum_lab: the hub's job answer is not a JSON object")
            return None
        return job_from_hub(data)

    async def current(self) -> JobInfo:
        """The hub's view, completed from the environment; the environment's alone without hub."""
        environment = self.from_environment
        hub = await self.fetch_hub()
        return environment if hub is None else hub.merged(environment)

    @staticmethod
    def now() -> datetime:
        """The current time (a method so that tests can pin it)."""
        return datetime.now(UTC)
