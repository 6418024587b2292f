"""Batch workflows: notebooks promoted to parameterised runs, sweeps and chains on the sites.

The foundations, pure modules the ``workflows`` hub service, its REST API and the lab
extension build on:

* :mod:`.spec` — the workflow file (YAML, schema ``workflow.schema.json``): :class:`~.spec.Workflow`
  of :class:`~.spec.Step` s, loaded with errors at ``FILE:LINE:COL``, sweeps expanded, written back
  (:func:`~.spec.to_yaml`); bounds in :class:`~.spec.WorkflowLimits`;
* :mod:`.params` — parameter names and values (the rules), and a notebook's ``parameters`` cell
  read through papermill, with submitted values coerced to its types;
* :mod:`.dag` — steps' dependencies: unknown names, self-dependencies and cycles refused;
  running order;
* :mod:`.schedule` — cron schedules (UTC), refused when more frequent than a minimum;
* :mod:`.paths` — user paths checked in the text (no absolute path, no ``..``) and opened below
  a root without following symbolic links;
* :mod:`.snapshot` — content-addressed notebook snapshots (``snapshots/<sha256>.ipynb``);
* :mod:`.runner` — the in-job command ``continuum-workflow-run RUN_FOLDER``: papermill executes
  the snapshot with the run folder's parameters; :mod:`.progress` keeps ``status.json`` current
  cell by cell;
* :mod:`.runfolder` — the same command's ``prepare``/``report``/``cat``: a run folder made and
  read as the user; :mod:`.inputs` — inputs with ``copy: true`` copied in by ``prepare``;
  :mod:`.archive` — ``archive``: the folder as a tar.gz without credentials (the *Download*), and
  the service's end streaming it; :mod:`.finish` — the job facts in ``status.json`` and the
  run's crate, written by the member that ends last;
* :mod:`.executor` — runs on a site: :class:`~.executor.RunPlan`, :class:`~.executor.SiteExecutor`
  (folder, ``sbatch`` of one job or job array with ``afterok`` dependencies, batched status,
  results), members' states from the queue and ``status.json``;
* :mod:`.cwl` — a workflow exported as CWL v1.2 (papermill tools, scatter, dependencies);
* :mod:`.crate` — a finished run's provenance as an RO-Crate (Workflow Run Crate 0.5).

The ``workflows`` hub service (part of issue 10) built on them:

* :mod:`.service` — :class:`~.service.WorkflowService`, the hub side: the managed service entry,
  its role on the hub API, the scope that lets users and their servers call it;
* :mod:`.app` — the service's process (``python -m continuum_hub.workflows``);
* :mod:`.api` — the REST handlers under ``/services/workflows/api/v1/``; :mod:`.openapi` their
  OpenAPI document;
* :mod:`.store` — runs, members, attempts, workflows and credentials in a SQLAlchemy database;
* :mod:`.manager` — validation, submission, the tracking loop, chains, cancel and re-run;
* :mod:`.placement` — the soonest site by the sites' estimates (``soonest`` runs, moves);
* :mod:`.credentials` — the hub API as the service uses it: users' groups, run tokens;
* :mod:`.client` — a small Python client of the REST API (``continuum-hub run`` uses it).
"""

#: the service's name as a JupyterHub service (tokens need access:services!service=NAME)
SERVICE_NAME = "workflows"
#: the path below the hub's public URL where the hub's proxy sends the service's traffic
SERVICE_PREFIX = f"/services/{SERVICE_NAME}"
#: the REST API's prefix
API_PREFIX = f"{SERVICE_PREFIX}/api/v1"
#: the scope a token needs to use the service
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
