"""A run's progress as the job sees it: ``status.json``, updated at every cell.

The workflow service and the lab's *Batch runs* panel read ``status.json`` in the run's folder
to show the executing cell, and the failing one.  papermill reports each cell to its
``NotebookExecutionManager`` (``cell_start``, ``cell_exception``, ``cell_complete``), which an
engine drives; :class:`ProgressEngine` is papermill's own ``nbclient`` engine with that manager
wrapped so that each call also reaches a :class:`StatusFile`.  papermill selects engines by name
(``engine_name=``) from its registry: the runner registers this one there (:data:`ENGINE_NAME`)
before executing, and passes the status file as the engine argument ``progress``.

``status.json`` fields: ``state`` (``running``, ``done``, ``failed``), ``cell`` (index of the
cell executing, in the notebook as executed: papermill's injected-parameters cell counts),
``cells`` (their number), ``started``, ``ended``, ``updated`` (ISO 8601, UTC), and on failure
``failed_cell``, ``failed_execution_count`` (papermill's ``In [N]``) and ``error``
(``{"name", "message"}``), on success ``missing_outputs`` (declared outputs the notebook did
not write); ``member`` (a sweep's) and ``environment`` (the job's Python: interpreter, number
of packages and the SHA-256 of their list).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from papermill.engines import NBClientEngine

#: the engine's name in papermill's registry
ENGINE_NAME = "continuum-progress"


def now() -> str:
    """The current time, ISO 8601 in UTC with ``+00:00`` (what RO-Crate validators expect)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class StatusFile:
    """``status.json`` of one run (or sweep member), rewritten whole on every change.

    Each write is a new file renamed over the old one, so a reader never sees half a document;
    the mode is the process's (the runner sets umask 077: 0600).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.data: dict[str, Any] = {"state": "running", "cell": None, "cells": None}

    def update(self, **changes: Any) -> None:
        """Merge ``changes`` and write the file."""
        self.data.update(changes)
        self.data["updated"] = now()
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".status-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(self.data, file, indent=1)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def cell_started(self, index: int, total: int) -> None:
        self.update(cell=index, cells=total)

    def cell_failed(self, index: int, exception: BaseException | None) -> None:
        error = {
            "name": getattr(exception, "ename", None) or type(exception).__name__,
            "message": getattr(exception, "evalue", None) or str(exception or ""),
        }
        self.update(failed_cell=index, error=error)


class _Reporting:
    """papermill's execution manager, with each cell's start and failure also reported."""

    def __init__(self, manager: Any, status: StatusFile) -> None:
        self._manager = manager
        self._status = status

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)

    def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        if cell_index is not None:
            self._status.cell_started(cell_index, len(self._manager.nb.cells))
        self._manager.cell_start(cell, cell_index, **kwargs)

    def cell_exception(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        if cell_index is not None:
            self._status.cell_failed(cell_index, kwargs.get("exception"))
        self._manager.cell_exception(cell, cell_index, **kwargs)


class ProgressEngine(NBClientEngine):
    """papermill's ``nbclient`` engine reporting each cell to the ``progress`` argument."""

    @classmethod
    def execute_managed_notebook(
        cls, nb_man: Any, kernel_name: str, progress: StatusFile | None = None, **kwargs: Any
    ) -> Any:
        if progress is not None:
            nb_man = _Reporting(nb_man, progress)
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
