"""Property test: whatever users type, only validated values reach the scheduler.

Hypothesis throws arbitrary strings into every form field and arbitrary JSON into the REST
``user_options``.  Either the options are refused with a clear ``OptionsError``, or every
argument of the ``sbatch`` command is one of a small set of well-formed options, and the job
script is the same fixed text whatever the input.
"""

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuum_spawners.jobs import JOB_SCRIPT, build_job_spec, render_job_script
from continuum_spawners.options import (
    FIELDS,
    SOONEST,
    OptionsError,
    candidates,
    options_from_form,
    validate_options,
)
from continuum_spawners.schedulers.slurm import SlurmAdapter
from continuum_spawners.sites import SiteRegistry

DEMO = Path(__file__).resolve().parents[2] / "hub-config" / "sites.demo.yaml"
REGISTRY = SiteRegistry.from_file(
    DEMO, {"CONTINUUM_SLURM_CONF_ALPHA": "/a", "CONTINUUM_SLURM_CONF_BETA": "/b"}
)
GROUPS = ["vo.hep.example", "vo.radio.example"]
HOME = "/home/alice"
ENV_NAMES = ["JUPYTERHUB_API_TOKEN", "PATH"]
# every argument sbatch may get: fixed flags, or --name=value with a plain value
# (matched with fullmatch: ``$`` alone would let a value end in a newline)
SAFE_ARG = re.compile(
    r"(sbatch|--parsable|--nodes=1|--ntasks=1"
    r"|--(job-name|partition)=[A-Za-z0-9_-]+"
    r"|--(time|cpus-per-task)=[0-9]+|--mem=[0-9]+G|--gres=gpu(:[A-Za-z0-9_-]+)?:[0-9]+"
    r"|--chdir=/home/alice|--output=/home/alice/\.continuum-jupyterlab-%j\.log"
    r"|--export=JUPYTERHUB_API_TOKEN,PATH)"
)

text = st.text(max_size=40) | st.sampled_from(["soonest", "alpha", "beta", "gpu", "2", "1:00"])
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=6,
)
field_names = st.sampled_from([*FIELDS, "target", "cmd", "exec_prefix", "environment"]) | text


def submission(options):
    request = validate_options(options, REGISTRY, GROUPS)
    if request.site == SOONEST:  # the spawner picks one of the candidates at start
        request = candidates(request, REGISTRY, GROUPS)[0]
    site = REGISTRY.get(request.site)
    spec = build_job_spec(site, request, HOME, "jupyterlab", ENV_NAMES)
    return request, SlurmAdapter().submit_argv(spec)


def check(options):
    try:
        request, argv = submission(options)
    except OptionsError as exc:
        assert str(exc) and exc.status in (400, 403)
        return
    partition = REGISTRY.get(request.site).partition(request.partition)
    assert 1 <= request.cores <= partition.max_cores
    assert 1 <= request.memory_gb <= partition.max_memory_gb
    assert 0 <= request.gpus <= partition.max_gpus
    assert 1 <= request.walltime_minutes <= partition.max_walltime_minutes
    for arg in argv:
        assert SAFE_ARG.fullmatch(arg), arg


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(field_names, st.lists(text, min_size=1, max_size=2), max_size=7))
def test_form_fields(form):
    try:
        options = options_from_form(form)
    except OptionsError:
        return
    check(options)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(field_names, json_value, max_size=7))
def test_rest_user_options(options):
    check(options)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["alpha/interactive", "alpha/batch", "beta/gpu", "soonest/"]),
    st.integers(-5, 20).map(str) | text,
    st.integers(-5, 20).map(str) | text,
    text,
)
def test_near_valid_forms(target, cores, memory, walltime):
    form = {"target": [target], "cores": [cores], "memory_gb": [memory], "walltime": [walltime]}
    check(options_from_form(form))


def test_job_script_takes_no_user_input():
    # the placeholders are the registry's modules and the launcher from the hub's configuration
    assert re.findall(r"{(\w+)}", JOB_SCRIPT) == ["setup", "command"]
    script = render_job_script(["/opt/env/bin/continuum-singleuser", "jupyterhub-singleuser"])
    assert "module" not in script and script.endswith(
        "exec /opt/env/bin/continuum-singleuser jupyterhub-singleuser\n"
    )
    with_modules = render_job_script(["/x"], ("python/3.11", "cuda/12.4-gcc"))
    assert "module load python/3.11 cuda/12.4-gcc\n" in with_modules


def test_valid_options_do_reach_sbatch():
    # guards the properties above against passing vacuously (everything refused)
    _, argv = submission({"site": "beta", "cores": "3", "gpus": 2, "walltime": "2:30"})
    assert "--gres=gpu:demo:2" in argv and "--time=150" in argv and "--cpus-per-task=3" in argv
    assert all(SAFE_ARG.fullmatch(arg) for arg in argv)
