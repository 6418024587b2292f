"""The spawn form: plain HTML that works without JavaScript.

Site and partition are one ``<select name="target">`` grouped by site, so a choice is always a
consistent pair; the number fields carry the largest limits of the sites shown, and the server
(:func:`~continuum_spawners.options.validate_options`) enforces the limits of the chosen
partition with a clear message.  Every value written into the page is HTML-escaped.

Opened with the data a user is about to read (the catalogue's *Start near the data*:
``/hub/spawn/<user>/<server>?site=soonest&data_sites=beta&datasets=…``), the form lists those
datasets and where they are held, carries them as hidden fields, preselects *Start where it
runs soonest*, offers to accept a site without a replica (``transfer``), and its estimate line
says why a site is chosen (``beta: data present, starts now``, see
:mod:`~continuum_spawners.locality`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .options import DEFAULT_MEMORY_GB, SOONEST, JobRequest
from .sites import Partition, Site, format_walltime


def _partition_summary(site: Site, part: Partition) -> str:
    gpus = f", {part.max_gpus} × {part.gpu_type or 'GPU'}" if part.max_gpus else ""
    return (
        f"{site.label} · {part.label} — up to {part.max_cores} cores, "
        f"{part.max_memory_gb} GB{gpus}, {format_walltime(part.max_walltime_minutes)} h"
    )


def environment_select(sites: Sequence[Site], last: JobRequest | None) -> str:
    """The software environment choice; each option names its site (``data-site``)."""
    chosen = last.environment if last else ""
    options, selected_one = [], False
    for site in sites:
        for env in site.environments:
            wanted = env.name == chosen or (not chosen and env is site.default_environment)
            selected = wanted and not selected_one
            selected_one = selected_one or selected
            options.append(
                f'<option value="{escape(env.name)}" data-site="{escape(site.name)}"'
                f"{' selected' if selected else ''}>"
                f"{escape(site.label)} · {escape(env.label)}</option>"
            )
    return (
        '<div class="form-group mb-3"><label class="form-label" for="ch-environment">'
        "Software environment</label>"
        '<select class="form-select form-control" id="ch-environment" name="environment">'
        f"{''.join(options)}</select>"
        '<small class="form-text text-muted">images or modules the site offers</small></div>'
    )


def unavailable_notice(sites: Sequence[Site], unavailable: Mapping[str, str]) -> str:
    """The sites the user's groups allow but where they have no account, and why."""
    items = "".join(
        f"<li>{escape(unavailable[site.name])}</li>" for site in sites if site.name in unavailable
    )
    return (
        '<div class="alert alert-info" role="status" id="ch-unavailable">'
        f'<ul class="mb-0">{items}</ul></div>'
    )


def data_section(data: Mapping[str, Any]) -> str:
    """The data to be read (``data_sites``, ``datasets``, ``transfer``: validated values),
    carried as hidden fields; empty when no data is named."""
    data_sites, datasets = data.get("data_sites", ()), data.get("datasets", ())
    if not data_sites:
        return ""
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{escape(value)}">'
        for name, values in (("data_sites", data_sites), ("datasets", datasets))
        for value in values
    )
    items = "".join(f"<li><code>{escape(entry)}</code></li>" for entry in datasets)
    listed = f'<ul class="mb-1">{items}</ul>' if items else ""
    checked = " checked" if data.get("transfer") else ""
    return (
        '<div class="form-group mb-3" id="ch-data"><p class="mb-1">Data to read, held at '
        f"<strong>{escape(', '.join(data_sites))}</strong>:</p>{listed}{hidden}"
        '<div class="form-check"><input class="form-check-input" type="checkbox" '
        f'id="ch-transfer" name="transfer" value="on"{checked}>'
        '<label class="form-check-label" for="ch-transfer">Also consider sites without a '
        "replica (the data would have to be transferred)</label></div>"
        '<small class="form-text text-muted">Start where it runs soonest picks a site holding '
        "the data unless you tick this.</small></div>"
    )


def render_form(
    sites: Sequence[Site],
    last: JobRequest | None = None,
    unavailable: Mapping[str, str] | None = None,
    data: Mapping[str, Any] | None = None,
) -> str:
    """HTML of the spawn form for the ``sites`` a user may use.

    Parameters
    ----------
    sites
        Sites the user may use, in registry order.
    last
        The user's previous choice, preselected when it is still offered.
    unavailable
        Those of ``sites`` where the user has no account: name → message.  They are shown,
        disabled, with the message, and are not part of *Start where it runs soonest*.
    data
        The data the user is about to read (validated ``data_sites``, ``datasets``,
        ``transfer``): shown, carried, and *Start where it runs soonest* is preselected.
    """
    if not sites:
        return (
            '<div class="alert alert-warning" role="alert">Your groups give you access to no '
            "site of this hub. Ask your VO manager for membership, then sign in again.</div>"
        )
    unavailable = {k: v for k, v in (unavailable or {}).items() if any(s.name == k for s in sites)}
    notice = unavailable_notice(sites, unavailable) if unavailable else ""
    shown, sites = sites, [s for s in sites if s.name not in unavailable]
    if not sites:
        return notice
    data = data or {}
    chosen = (last.site, last.partition) if last else None
    if data.get("data_sites"):
        chosen = (SOONEST, "")
    if chosen != (SOONEST, "") and (
        chosen is None or not any(s.name == chosen[0] and s.partition(chosen[1]) for s in sites)
    ):
        chosen = (sites[0].name, sites[0].default_partition.name)
    soonest = " selected" if chosen == (SOONEST, "") else ""
    groups = [
        f'<option value="{SOONEST}/"{soonest}>Start where it runs soonest '
        "(any of my sites with a partition that fits)</option>"
    ]
    for site in sites:
        options = []
        for part in site.partitions:
            value = f"{site.name}/{part.name}"
            selected = " selected" if (site.name, part.name) == chosen else ""
            options.append(
                f'<option value="{escape(value)}"{selected} '
                f'data-max-cores="{part.max_cores}" data-max-memory="{part.max_memory_gb}" '
                f'data-max-gpus="{part.max_gpus}">{escape(_partition_summary(site, part))}</option>'
            )
        groups.append(f'<optgroup label="{escape(site.label)}">{"".join(options)}</optgroup>')
    for site in shown:
        if site.name in unavailable:
            label = f"{site.label} — {unavailable[site.name]}"
            groups.append(
                f'<optgroup label="{escape(label)}" disabled>'
                + "".join(
                    f'<option disabled data-unavailable="{escape(site.name)}">'
                    f"{escape(_partition_summary(site, part))}</option>"
                    for part in site.partitions
                )
                + "</optgroup>"
            )
    parts = [p for s in sites for p in s.partitions]
    max_cores = max(p.max_cores for p in parts)
    max_mem = max(p.max_memory_gb for p in parts)
    max_gpus = max(p.max_gpus for p in parts)
    cores = last.cores if last else 1
    memory = last.memory_gb if last else DEFAULT_MEMORY_GB
    gpus = last.gpus if last else 0
    walltime = format_walltime(last.walltime_minutes) if last else "1:00"

    def number(name: str, label: str, value: int, low: int, high: int, hint: str) -> str:
        return (
            f'<div class="form-group mb-3"><label class="form-label" for="ch-{name}">{label}'
            f'</label><input class="form-control" type="number" id="ch-{name}" name="{name}" '
            f'min="{low}" max="{high}" step="1" value="{value}" required>'
            f'<small class="form-text text-muted">{hint}</small></div>'
        )

    return "".join(
        [
            notice,
            '<div class="form-group mb-3"><label class="form-label" for="ch-target">'
            "Site and partition</label>"
            f'<select class="form-select form-control" id="ch-target" name="target">'
            f"{''.join(groups)}</select></div>",
            data_section(data),
            environment_select(sites, last),
            number("cores", "Cores", cores, 1, max_cores, "CPU cores for your server"),
            number("memory_gb", "Memory (GB)", memory, 1, max_mem, "memory for your server"),
            number("gpus", "GPUs", gpus, 0, max_gpus, "only on partitions that have GPUs"),
            '<div class="form-group mb-3"><label class="form-label" for="ch-walltime">'
            "Walltime (h:mm)</label>"
            '<input class="form-control" type="text" id="ch-walltime" name="walltime" '
            f'pattern="[0-9]{{1,4}}:[0-5][0-9]" value="{escape(walltime)}" required>'
            '<small class="form-text text-muted">your server stops when this time is up'
            "</small></div>",
            '<p id="ch-estimate" class="text-muted" aria-live="polite"></p>',
            '<p id="ch-budget" aria-live="polite"></p>',
            f"<script>{FORM_SCRIPT}</script>",
        ]
    )


# Progressive enhancement: limits follow the chosen partition, and the expected start is asked
# from the hub as the choice changes.  Results are written with textContent only.
FORM_SCRIPT = """
(function () {
  var form = document.getElementById("ch-target").form;
  var target = form.elements.target, out = document.getElementById("ch-estimate");
  var jh = window.jhdata || {}, base = jh.base_url || "/hub/", timer = null, seq = 0;
  function limits() {
    var o = target.options[target.selectedIndex];
    [["cores", "maxCores"], ["memory_gb", "maxMemory"], ["gpus", "maxGpus"]].forEach(function (f) {
      var el = form.elements[f[0]], max = o.dataset[f[1]];
      if (max === undefined) { return; }
      el.max = max;
      // a value kept from the last spawn (GPUs on a GPU partition) may exceed the new limit
      if (Number(el.value) > Number(max)) { el.value = max; }
    });
  }
  var envs = form.elements.environment;
  function environments() {
    var site = target.value.split("/")[0], first = null, keep = false;
    Array.prototype.forEach.call(envs.options, function (o) {
      var offered = site === "soonest" || o.dataset.site === site;
      o.hidden = !offered;
      if (offered && first === null) { first = o; }
      if (offered && o.selected) { keep = true; }
    });
    if (!keep && first) { first.selected = true; }
  }
  var budget = document.getElementById("ch-budget");
  function budgets(model) {
    // a refusal waiting at submit, else the budgets at 80 % or more of their limit
    var warned = (model.budgets || []).filter(function (b) { return b.warning; });
    budget.className = model.budget_refusal ? "text-danger" : "text-warning";
    budget.textContent = model.budget_refusal || warned.map(function (b) {
      return "Budget warning: " + (b.scope === "user" ? "your" : b.name) + " budget has " +
        b.left + " of " + b.limit + " " + b.unit + " left this month (resets " +
        b.resets.slice(0, 10) + "; " + b.contact + ")";
    }).join(" · ");
  }
  function show(model) {
    budgets(model);
    var where = model.site + " / " + model.partition;
    var impact = model.gco2e_max === null ? "" : " · at most " + model.energy_kwh_max +
      " kWh, " + model.gco2e_max + " g CO2e if used in full";
    if (model.data_present === true || model.data_present === false) {
      // data named: say why this site (e.g. "beta: data present, starts now")
      out.textContent = model.reason + " (partition " + model.partition + ")" + impact;
    } else if (model.wait_seconds === null) {
      out.textContent = "No estimate for " + where + (model.message ? ": " + model.message : "");
    } else if (model.wait_seconds < 60) {
      out.textContent = "Expected start on " + where + ": now" + impact;
    } else {
      out.textContent = "Expected start on " + where + ": in about " +
        Math.round(model.wait_seconds / 60) + " min" + impact;
    }
  }
  function ask() {
    var parts = target.value.split("/"), q = new URLSearchParams({site: parts[0]});
    if (parts[1]) { q.set("partition", parts[1]); }
    ["cores", "memory_gb", "gpus", "walltime", "environment"].forEach(function (n) {
      if (form.elements[n].value) { q.set(n, form.elements[n].value); }
    });
    form.querySelectorAll("input[type=hidden][name=data_sites]").forEach(function (el) {
      q.append("data_sites", el.value);
    });
    if (form.elements.transfer && form.elements.transfer.checked) { q.set("transfer", "on"); }
    var mine = ++seq;
    out.textContent = "Asking the scheduler when this would start…";
    fetch(base + "api/continuum/estimate?" + q, {
      headers: {"X-XSRFToken": jh.xsrf_token || ""}, credentials: "same-origin"
    }).then(function (r) {
      return r.json().then(function (body) { return {ok: r.ok, body: body}; });
    }).then(function (r) {
      if (mine !== seq) { return; }
      if (r.ok) { show(r.body); } else { out.textContent = r.body.message || "No estimate"; }
    }).catch(function () { if (mine === seq) { out.textContent = ""; } });
  }
  function changed() {
    limits(); environments(); clearTimeout(timer); timer = setTimeout(ask, 400);
  }
  form.addEventListener("change", changed);
  form.addEventListener("input", changed);
  limits();
  environments();
  ask();
})();
"""
