"""``ContinuumLab``: the settings of the server extension that the lab extensions also see."""

from __future__ import annotations

from typing import Any

from traitlets import Float, Int, List, TraitError, Unicode, validate
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

    gateway_address = Unicode(
        "",
        config=True,
        help="""HTTP address of the Dask Gateway that the Clusters panel talks to. Default ``""``:
        the ``DASK_GATEWAY__ADDRESS`` of the server's environment, the same that
        ``dask_gateway.Gateway()`` uses in the user's kernels.""",
    )

    gateway_timeout = Float(
        10.0,
        config=True,
        help="""Seconds to wait for the Dask Gateway (and a scheduler's dashboard) before the
        Clusters panel reports it unreachable (default 10).""",
    )

    clusters_refresh_seconds = Int(
        10,
        config=True,
        help="""Seconds between two refreshes of the Clusters panel's list (default 10).""",
    )

    workflows_url = Unicode(
        "",
        config=True,
        help="""URL of the hub's ``workflows`` service that the *Batch runs* panel and the *Run as
        batch job…* dialog talk to: its prefix (``…/services/workflows/``) or its API
        (``…/services/workflows/api/v1/``). Default ``""``: the server's
        ``CONTINUUM_WORKFLOWS_URL``, else the hub's base taken from ``JUPYTERHUB_API_URL``
        followed by ``services/workflows/``.""",
    )

    workflows_timeout = Float(
        60.0,
        config=True,
        help="""Seconds to wait for the workflows service (a submission prepares the run's folder
        on the site and submits its job) before reporting it unreachable (default 60).""",
    )

    workflows_refresh_seconds = Int(
        10,
        config=True,
        help="""Seconds between two refreshes of the *Batch runs* panel's list (default 10).""",
    )

    catalogue_url = Unicode(
        "",
        config=True,
        help="""URL of the hub's ``catalogue`` service that the *Catalogue* panel talks to: its
        prefix (``…/services/catalogue/``) or its API (``…/api/v1/``). Default ``""``: the
        server's ``CONTINUUM_CATALOGUE_URL``, else the hub's base taken from
        ``JUPYTERHUB_API_URL`` followed by ``services/catalogue/``.""",
    )

    catalogue_timeout = Float(
        30.0,
        config=True,
        help="""Seconds to wait for the catalogue service (it waits for each source at most its
        own timeout) before reporting it unreachable (default 30).""",
    )

    @validate("catalogue_timeout")
    def _validate_catalogue_timeout(self, proposal: dict[str, Any]) -> float:
        if proposal["value"] <= 0:
            raise TraitError("ContinuumLab.catalogue_timeout must be positive")
        return float(proposal["value"])

    @validate("workflows_timeout")
    def _validate_workflows_timeout(self, proposal: dict[str, Any]) -> float:
        if proposal["value"] <= 0:
            raise TraitError("ContinuumLab.workflows_timeout must be positive")
        return float(proposal["value"])

    @validate("workflows_refresh_seconds")
    def _validate_workflows_refresh_seconds(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 2:
            raise TraitError("ContinuumLab.workflows_refresh_seconds must be at least 2")
        return int(proposal["value"])

    @validate("gateway_timeout")
    def _validate_gateway_timeout(self, proposal: dict[str, Any]) -> float:
        if proposal["value"] <= 0:
            raise TraitError("ContinuumLab.gateway_timeout must be positive")
        return float(proposal["value"])

    @validate("clusters_refresh_seconds")
    def _validate_clusters_refresh_seconds(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 2:
            raise TraitError("ContinuumLab.clusters_refresh_seconds must be at least 2")
        return int(proposal["value"])

    token_refresh_fraction = Float(
        0.5,
        config=True,
        help="""Fraction of the remaining lifetime of the access token in ``BEARER_TOKEN_FILE``
        after which the server asks the hub for a fresh one (default 0.5: at half-life).""",
    )

    token_min_interval = Float(
        5.0,
        config=True,
        help="""Seconds between two requests for an access token at least, also the first
        retry delay after a failure (doubling up to 300 s; default 5).""",
    )

    @validate("token_refresh_fraction")
    def _validate_token_refresh_fraction(self, proposal: dict[str, Any]) -> float:
        if not 0 < proposal["value"] < 1:
            raise TraitError("ContinuumLab.token_refresh_fraction must be between 0 and 1")
        return float(proposal["value"])

    @validate("token_min_interval")
    def _validate_token_min_interval(self, proposal: dict[str, Any]) -> float:
        if proposal["value"] < 1:
            raise TraitError("ContinuumLab.token_min_interval must be at least 1 second")
        return float(proposal["value"])

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
