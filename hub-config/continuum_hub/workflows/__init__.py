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
* :mod:`.cwl` — a workflow exported as CWL v1.2 (papermill tools, scatter, dependencies);
* :mod:`.crate` — a finished run's provenance as an RO-Crate (Workflow Run Crate 0.5).
"""
