"""Continuum Hub's JupyterHub configuration: loads the layers, nothing else.

Layers are ``jupyterhub_config.d/*.py`` in name order, then the deployment's own JSON file named by
``CONTINUUM_HUB_CONFIG`` (traitlets config in JSON; the local federation writes one); then a SQLite
hub database is put in WAL mode (``continuum_hub.config``), the site registry is checked, the
managed services (idle culler, Dask Gateway, workflows, catalogue) are added, usage accounting is
wired in (the ledger's URL for the hub and the submitting services, the usage API, the collector,
the admins' usage page), the living-tokens scope is granted, the metrics scraper's service added
and the Continuum metrics (with the per-site probe) switched on or off.
Workshop events (REST, their reservations, the spawner's reservation hook, the instructor's
view) are added too, and server sharing (the users' scopes and the page
``/hub/continuum/sharing``).
"""

from pathlib import Path

from continuum_hub.catalogue.service import add_catalogue_service
from continuum_hub.config import (
    add_hub_sqlite_wal,
    check_site_registry,
    layer_files,
    load_json_layer,
)
from continuum_hub.gateway.service import add_gateway_service
from continuum_hub.hub_metrics import add_continuum_metrics
from continuum_hub.identity.token_api import add_token_scopes
from continuum_hub.metrics import add_metrics_scrape
from continuum_hub.services import add_managed_services
from continuum_hub.sharing import add_sharing
from continuum_hub.usage import add_usage
from continuum_hub.usage.page import add_usage_page
from continuum_hub.workflows.service import add_workflows_service
from continuum_hub.workshops import add_workshops

for path in layer_files(Path(__file__).parent / "jupyterhub_config.d"):
    load_subconfig(str(path))
load_json_layer(c)
add_hub_sqlite_wal(c)
check_site_registry(c)
add_workshops(c)  # before the services: guests' pool accounts reach their account mapping
add_managed_services(c)
add_gateway_service(c)
add_workflows_service(c)
add_catalogue_service(c)
add_usage(c)
add_usage_page(c)
add_token_scopes(c)
add_sharing(c)
add_metrics_scrape(c)
add_continuum_metrics(c)
