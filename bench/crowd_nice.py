"""crowd_nice: run a crowd's single-user server at a lower CPU priority, its session's included.

``python bench/crowd_nice.py NICE STEP COMMAND...`` sets the nice value of this process's
*autogroup* to ``NICE``, adds ``STEP`` to its own nice value and replaces itself with
``COMMAND``.

Why both: with the kernel's autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``,
on in this machine's kernel) the CPU is first shared between sessions, equally at autogroup nice
0, and a process's own nice value only counts inside its session.  Every Slurm job and every
``LocalProcessSpawner`` server is a session of its own: in the 200-user storm each starting
server weighed as much as the whole hub, whose nice -10 counted for nothing, and the hub's
event loop lagged tens of seconds.  A positive autogroup nice needs no privilege, so the server
lowers its own (:class:`crowd.Priorities` sets the hub's, the proxy's and the provider's).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

AUTOGROUP = Path("/proc/self/autogroup")


def main(argv: list[str]) -> None:
    """Set the autogroup nice and the process nice, then run the command."""
    if len(argv) < 3:
        sys.exit("usage: crowd_nice.py NICE STEP COMMAND...")
    nice, step, command = int(argv[0]), int(argv[1]), argv[2:]
    try:
        AUTOGROUP.write_text(str(nice))
    except OSError:  # a kernel without autogroup scheduling: the process nice is all there is
        pass
    os.nice(step)
    os.execvp(command[0], command)  # noqa: S606 - an argv, replacing this process


if __name__ == "__main__":
    main(sys.argv[1:])
