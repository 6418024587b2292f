"""Slurm adapter: ``sbatch`` / ``squeue`` / ``scancel`` argument lists and output parsers.

Status is one ``squeue`` call for any number of jobs, with a fixed ``|``-separated format, so
the hub asks each site once per interval however many servers run there.  Job arrays (batch
runs' sweeps) are reported task by task (``--array``: one line ``123_4`` per task, pending ones
included); the array's own id ``123`` gets the state of its liveliest task, so a caller that
watches only the array's id learns that it waits, runs, or is gone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

from .base import (
    AccountingRecord,
    Estimate,
    JobSpec,
    JobState,
    JobStatus,
    ReservationInfo,
    ReservationSpec,
    SchedulerAdapter,
    SubmitError,
    checked_accounts,
    checked_job_ids,
    checked_job_name,
    checked_reservation_name,
)
from .sacct import PENDING_STATES, RUNNING_STATES, parse_sacct, sacct_argv

# squeue fields: job id, state (long form), reason, first node, expected/actual start time
STATUS_FORMAT = "%i|%T|%r|%N|%S"

# sbatch --test-only: "sbatch: Job 7 to start at 2026-11-21T06:36:29 using 2 processors on …"
TEST_ONLY = re.compile(r"to start at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")
# an array task "123_4", or a range squeue did not expand: "123_[5-9%2]", "123_[1,3-4]"
ARRAY_TASK = re.compile(r"^(\d+)_(\d+)$")
ARRAY_RANGE = re.compile(r"^(\d+)_\[([\d,-]+)(?:%\d+)?\]$")
# which task's state an array's own id shows: the liveliest
_RANK = {JobState.RUNNING: 3, JobState.PENDING: 2, JobState.UNKNOWN: 1, JobState.GONE: 0}


def _task_ids(job_id: str) -> Iterator[str]:
    """The ids a ``squeue`` id stands for: itself, or each task of an unexpanded range."""
    match = ARRAY_RANGE.match(job_id)
    if match is None:
        yield job_id
        return
    base, ranges = match.groups()
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            # bounded: a range squeue prints never exceeds the site's MaxArraySize
            for index in range(int(first), int(last or first) + 1)[:100_000]:
                yield f"{base}_{index}"


class SlurmAdapter(SchedulerAdapter):
    """Commands of Slurm ≥ 21.08."""

    kind = "slurm"

    def submit_argv(self, spec: JobSpec) -> list[str]:
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={spec.name}",
            f"--partition={spec.partition}",
            f"--time={spec.walltime_minutes}",
            "--nodes=1",
            "--ntasks=1",
            f"--cpus-per-task={spec.cores}",
            f"--mem={spec.memory_gb}G",
            f"--chdir={spec.workdir}",
            f"--output={spec.output}",
            # only the named variables reach the job, not the submitting environment
            "--export=" + (",".join(spec.env_names) or "NONE"),
        ]
        if spec.error:
            argv.append(f"--error={spec.error}")
        if spec.array:
            argv.append(f"--array={spec.array}")
        if spec.dependency:
            argv.append("--dependency=afterok:" + ":".join(spec.dependency))
            # a failed dependency cancels the job instead of leaving it pending for ever
            argv.append("--kill-on-invalid-dep=yes")
        if spec.gpus:
            gres = f"gpu:{spec.gpu_type}:{spec.gpus}" if spec.gpu_type else f"gpu:{spec.gpus}"
            argv.append(f"--gres={gres}")
        if spec.account:
            argv.append(f"--account={spec.account}")
        if spec.reservation:
            argv.append(f"--reservation={spec.reservation}")
        return argv

    def parse_submit(self, stdout: str) -> str:
        # --parsable prints "jobid" or "jobid;cluster"
        job_id = stdout.strip().splitlines()[-1].split(";")[0] if stdout.strip() else ""
        try:
            return checked_job_ids([job_id])[0]
        except ValueError:
            raise SubmitError(f"sbatch printed no job id: {stdout.strip()[:200]!r}") from None

    def status_argv(self, job_ids: Iterable[str]) -> list[str]:
        ids = checked_job_ids(job_ids)
        return [
            "squeue",
            "--noheader",
            "--states=all",
            f"--jobs={','.join(ids)}",
            f"--format={STATUS_FORMAT}",
            # one line per array task, pending ones too (no "123_[5-9]" ranges)
            "--array",
        ]

    def parse_status(
        self, returncode: int, stdout: str, stderr: str, job_ids: Iterable[str]
    ) -> Mapping[str, JobStatus]:
        ids = list(job_ids)
        if returncode != 0:
            # squeue fails for ids slurmctld has already purged; those jobs are gone
            if "Invalid job id" in stderr:
                return {i: JobStatus(i, JobState.GONE, reason="purged") for i in ids}
            return {i: JobStatus(i, JobState.UNKNOWN, reason=stderr.strip()[:200]) for i in ids}
        seen: dict[str, JobStatus] = {}
        for line in stdout.splitlines():
            fields = line.strip().split("|")
            if len(fields) != 5:
                continue
            job_id, raw, reason, node, start = (f.strip() for f in fields)
            if raw in PENDING_STATES:
                state = JobState.PENDING
            elif raw in RUNNING_STATES:
                state = JobState.RUNNING
            else:
                state = JobState.GONE
            for task_id in _task_ids(job_id):
                seen[task_id] = JobStatus(
                    task_id,
                    state,
                    raw_state=raw,
                    reason="" if reason == "None" else reason,
                    node="" if node in ("", "(null)") else node.split(",")[0],
                    start_time="" if start in ("N/A", "Unknown") else start,
                )
        statuses = {**seen}
        for task_id, status in seen.items():
            match = ARRAY_TASK.match(task_id)
            if match is None or match.group(1) not in ids:
                continue
            # the array's own id shows its liveliest task (running > pending > gone)
            array_id = match.group(1)
            current = statuses.get(array_id)
            if current is None or _RANK[status.state] > _RANK[current.state]:
                statuses[array_id] = JobStatus(
                    array_id,
                    status.state,
                    raw_state=status.raw_state,
                    reason=status.reason,
                    node=status.node,
                    start_time=status.start_time,
                )
        for job_id in ids:
            statuses.setdefault(job_id, JobStatus(job_id, JobState.GONE, reason="not in queue"))
        return statuses

    def cancel_argv(self, job_ids: Iterable[str]) -> list[str]:
        return ["scancel", *checked_job_ids(job_ids)]

    def cancel_name_argv(self, name: str) -> list[str]:
        # scancel run as a user cancels only that user's jobs of the name
        return ["scancel", f"--name={checked_job_name(name)}"]

    def find_name_argv(self, name: str) -> list[str]:
        # %F: an array's own id (a plain job's id), so an array is listed once per task
        return [
            "squeue",
            "--noheader",
            "--me",
            "--states=all",
            f"--name={checked_job_name(name)}",
            "--format=%F",
        ]

    def accounting_argv(self, job_ids: Sequence[str], since: datetime) -> list[str]:
        return sacct_argv(checked_job_ids(job_ids), since)

    def parse_accounting(self, stdout: str) -> list[AccountingRecord]:
        return parse_sacct(stdout)

    def probe_argv(self) -> list[str]:
        # one ping RPC, no job or node data; exits 1 at once when no controller answers
        # (sinfo waits MessageTimeout first)
        return ["scontrol", "ping"]

    def parse_probe(self, returncode: int, stdout: str, stderr: str) -> bool:
        # "Slurmctld(primary) at HOST is UP": a backup controller that answers counts too
        return returncode == 0 and any(line.endswith(" is UP") for line in stdout.splitlines())

    def estimate_argv(self, spec: JobSpec) -> list[str]:
        argv = self.submit_argv(spec)
        return [argv[0], "--test-only", *argv[2:]]  # drop --parsable

    def parse_estimate(self, returncode: int, stdout: str, stderr: str) -> Estimate:
        text = f"{stdout}\n{stderr}"
        match = TEST_ONLY.search(text)
        if returncode != 0 or match is None:
            reason = " ".join(line for line in stderr.strip().splitlines() if line)[:200]
            return Estimate(None, reason or "the scheduler gave no estimate")
        # without a zone, sbatch prints the site's local time
        return Estimate(datetime.fromisoformat(match.group(1)).astimezone(UTC))

    # -- reservations (workshop events) ---------------------------------------------------------

    def create_reservation_argv(
        self, spec: ReservationSpec, now: datetime | None = None
    ) -> list[str]:
        # times relative to now: the site's clock zone never matters (StartTime without a
        # zone is the slurmctld's local time); IGNORE_JOBS: cores busy now still count
        now = now or datetime.now(UTC)
        delay = max(0, int((spec.start - now).total_seconds()))
        minutes = -(-int((spec.end - max(spec.start, now)).total_seconds()) // 60)
        return [
            "scontrol",
            "create",
            "reservation",
            f"ReservationName={spec.name}",
            f"StartTime=now+{delay}" if delay else "StartTime=now",
            f"Duration={max(1, minutes)}",
            f"PartitionName={checked_job_name(spec.partition)}",
            f"CoreCnt={int(spec.cores)}",
            "Users=" + ",".join(spec.users),
            "Flags=IGNORE_JOBS",
        ]

    def update_reservation_argv(self, name: str, users: Sequence[str]) -> list[str]:
        return [
            "scontrol",
            "update",
            f"ReservationName={checked_reservation_name(name)}",
            "Users=" + ",".join(checked_accounts(users)),
        ]

    def delete_reservation_argv(self, name: str) -> list[str]:
        return ["scontrol", "delete", f"ReservationName={checked_reservation_name(name)}"]

    def show_reservation_argv(self, name: str) -> list[str]:
        return ["scontrol", "--oneliner", "show", "reservation", checked_reservation_name(name)]

    def parse_reservation(
        self, returncode: int, stdout: str, stderr: str
    ) -> ReservationInfo | None:
        if returncode != 0:
            if "not found" in stderr or "not found" in stdout:
                return None
            raise RuntimeError(stderr.strip()[:300] or "scontrol show reservation failed")
        fields = dict(item.split("=", 1) for item in stdout.split() if "=" in item[1:])
        if "ReservationName" not in fields:
            return None
        users = fields.get("Users", "(null)")
        return ReservationInfo(
            name=fields["ReservationName"],
            state=fields.get("State", ""),
            start=fields.get("StartTime", ""),
            end=fields.get("EndTime", ""),
            users=() if users == "(null)" else tuple(users.split(",")),
            cores=int(fields["CoreCnt"]) if fields.get("CoreCnt", "").isdigit() else 0,
            partition=fields.get("PartitionName", "").replace("(null)", ""),
        )
