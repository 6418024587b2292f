"""``ContinuumLab``: the settings of the server extension that the lab extensions also see."""

from __future__ import annotations

from typing import Any

from traitlets import Float, Int, List, TraitError, validate
from traitlets.config import Configurable


class ContinuumLab(Configurable):
    """Options of Continuum Hub's extensions in the user's JupyterLab.

    Set them like any Jupyter server option, e.g. in ``jupyter_server_config.py``:
    ``c.ContinuumLab.warning_minutes = [30, 10]``.
    """

    warning_minutes = List(
        Int(),
        default_value=[15, 5],
        config=True,
        help="""Minutes before the end of the job's walltime at which the session extension warns
        the user to save their work; one warning per entry. Positive whole minutes, default
        ``[15, 5]``. An empty list turns the warnings off.""",
    )

    hub_timeout = Float(
        5.0,
        config=True,
        help="""Seconds to wait for the hub's answer about this server's job before the server
        extension falls back to what the job's environment says (default 5).""",
    )

    refresh_seconds = Int(
        60,
        config=True,
        help="""Seconds between two refreshes of the job information by the lab extensions
        (default 60); the remaining walltime itself counts down every second in the browser.""",
    )

    @validate("warning_minutes")
    def _validate_warning_minutes(self, proposal: dict[str, Any]) -> list[int]:
        minutes = list(proposal["value"])
        if any(m <= 0 for m in minutes):
            raise TraitError(f"ContinuumLab.warning_minutes must be positive, not {minutes}")
        # the latest warning first; duplicates would warn twice at the same moment
        return sorted(set(minutes), reverse=True)

    @validate("hub_timeout")
    def _validate_hub_timeout(self, proposal: dict[str, Any]) -> float:
        if proposal["value"] <= 0:
            raise TraitError("ContinuumLab.hub_timeout must be positive")
        return float(proposal["value"])

    @validate("refresh_seconds")
    def _validate_refresh_seconds(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 5:
            raise TraitError("ContinuumLab.refresh_seconds must be at least 5")
        return int(proposal["value"])

    def frontend_settings(self) -> dict[str, Any]:
        """What the lab extensions need of these settings, as JSON."""
        return {
            "warning_minutes": list(self.warning_minutes),
            "refresh_seconds": self.refresh_seconds,
        }
