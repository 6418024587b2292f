"""Recurring runs: five-field cron expressions, in UTC, no more often than a minimum interval.

Debian's Slurm 22.05 has no ``scrontab``, so the workflow service holds schedules itself and
submits each run when it falls due.  :func:`check_schedule` accepts standard cron
(``minute hour day-of-month month day-of-week``, names and ``@daily``-style aliases included,
parsed by ``croniter``) and refuses a schedule that would run more often than the configured
minimum: the shortest interval is found from the expression's minute and hour sets, which are
the same on every day it runs, so a burst of runs inside one day or across midnight is caught
without walking a calendar.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

MINUTES_PER_DAY = 24 * 60
#: a fixed origin, so that the same expression is always judged the same way
_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


class ScheduleError(ValueError):
    """A schedule is refused; the message says why."""


def _times_of_day(expression: str) -> list[int]:
    """The minutes after midnight at which ``expression`` runs on a day it runs at all."""
    minutes, hours = croniter(expression).expanded[:2]
    minutes = range(60) if minutes == ["*"] else minutes
    hours = range(24) if hours == ["*"] else hours
    return sorted(hour * 60 + minute for hour in hours for minute in minutes)


def shortest_interval(expression: str) -> int:
    """Minutes between the two closest runs of a valid ``expression``.

    Runs on consecutive days are assumed possible (true of every schedule that runs daily or
    weekly; a schedule that avoids it only through its days is judged strictly).
    """
    times = _times_of_day(expression)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    gaps.append(MINUTES_PER_DAY - times[-1] + times[0])
    return min(gaps)


def check_schedule(expression: object, minimum_minutes: int) -> str:
    """``expression`` with its blanks normalized, if it is a valid and rare enough schedule.

    Parameters
    ----------
    minimum_minutes
        Shortest interval allowed between two runs.

    Raises
    ------
    ScheduleError
        Not five fields (seconds are refused), not valid cron, never runs, or runs more often
        than every ``minimum_minutes`` minutes.
    """
    if not isinstance(expression, str):
        raise ScheduleError(f"schedule {expression!r} is not a cron expression")
    fields = expression.split()
    text = " ".join(fields)
    if len(fields) != 5 and not (len(fields) == 1 and text.startswith("@")):
        raise ScheduleError(
            f"schedule {text!r} has {len(fields)} fields: cron takes 5 "
            "(minute hour day-of-month month day-of-week, in UTC); seconds are not supported"
        )
    try:
        runs = croniter(text, _ORIGIN)
        runs.get_next(datetime)
    except CroniterBadDateError:
        raise ScheduleError(f"schedule {text!r} never runs") from None
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise ScheduleError(f"schedule {text!r} is not a valid cron expression: {exc}") from None
    interval = shortest_interval(text)
    if interval < minimum_minutes:
        every = "every minute" if interval == 1 else f"{interval} minutes apart"
        raise ScheduleError(
            f"schedule {text!r} runs {every}; runs must be at least {minimum_minutes} minutes apart"
        )
    return text


def next_run(expression: str, after: datetime) -> datetime:
    """The first time after ``after`` (aware) at which ``expression`` runs, in UTC."""
    return croniter(expression, after.astimezone(UTC)).get_next(datetime)
