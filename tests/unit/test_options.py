"""Declarative validation of user options against the registry and the user's groups."""

from pathlib import Path

import pytest

from continuum_spawners.options import JobRequest, OptionsError, options_from_form, validate_options
from continuum_spawners.sites import SiteRegistry

DEMO = Path(__file__).resolve().parents[2] / "hub-config" / "sites.demo.yaml"
HEP, RADIO = ["vo.hep.example"], ["vo.radio.example"]
GROUPS_BOTH = [*HEP, *RADIO]


@pytest.fixture(scope="module")
def registry():
    return SiteRegistry.from_file(
        DEMO, {"CONTINUUM_SLURM_CONF_ALPHA": "/a", "CONTINUUM_SLURM_CONF_BETA": "/b"}
    )


def test_defaults(registry):
    assert validate_options({}, registry, HEP) == JobRequest(
        "alpha", "interactive", 1, 2, 0, 60, "python"
    )


def test_full_request(registry):
    request = validate_options(
        {
            "site": "beta",
            "partition": "gpu",
            "cores": 4,
            "memory_gb": 16,
            "gpus": 2,
            "walltime": "12:00",
        },
        registry,
        RADIO,
    )
    assert request == JobRequest("beta", "gpu", 4, 16, 2, 720, "python")
    assert request.as_user_options()["walltime"] == "12:00"
    assert validate_options(request.as_user_options(), registry, RADIO) == request


@pytest.mark.parametrize(
    "options,status,message",
    [
        ({"site": "beta"}, 403, "not allowed to use site 'beta'"),
        ({"site": "gamma"}, 400, "unknown site"),
        ({"site": "../etc"}, 400, "site must be a site name"),
        ({"partition": "gpu"}, 400, "has no partition 'gpu'"),
        ({"cores": 5}, 400, "cores must be between 1 and 4"),
        ({"cores": 0}, 400, "cores must be between 1 and 4"),
        ({"cores": "2; rm -rf ~"}, 400, "cores must be a whole number"),
        ({"cores": True}, 400, "cores must be a whole number"),
        ({"cores": 1.5}, 400, "cores must be a whole number"),
        ({"cores": "0\x1f"}, 400, "cores must be a whole number"),
        ({"cores": "\u0663"}, 400, "cores must be a whole number"),
        ({"environment": "conda"}, 400, "offers no environment 'conda'"),
        ({"memory_gb": 9}, 400, "memory_gb must be between 1 and 8"),
        ({"gpus": 1}, 400, "gpus must be between 0 and 0"),
        ({"walltime": "9:00"}, 400, "walltime must be between 0:01 and 8:00"),
        ({"walltime": "1:00$(id)"}, 400, "walltime must look like H:MM"),
        ({"walltime": ["1:00"]}, 400, "walltime must be H:MM"),
        ({"exec_prefix": "sh -c"}, 400, "unknown option"),
        ({"cmd": ["bash"]}, 400, "unknown option"),
    ],
    ids=[
        "forbidden-site",
        "unknown-site",
        "path-site",
        "wrong-partition",
        "cores-high",
        "cores-zero",
        "cores-injection",
        "cores-bool",
        "cores-float",
        "cores-control-char",
        "cores-arabic-digit",
        "unknown-environment",
        "memory-high",
        "gpus-none",
        "walltime-long",
        "walltime-injection",
        "walltime-list",
        "exec-prefix",
        "cmd",
    ],
)
def test_refusals(registry, options, status, message):
    with pytest.raises(OptionsError, match=message) as info:
        validate_options(options, registry, HEP)
    assert info.value.status == status


def test_no_site_for_user_without_groups(registry):
    with pytest.raises(OptionsError, match="access to no site") as info:
        validate_options({}, registry, [])
    assert info.value.status == 403


def test_not_a_mapping(registry):
    with pytest.raises(OptionsError, match="must be an object"):
        validate_options(["site"], registry, HEP)  # type: ignore[arg-type]


def test_form_coercion():
    form = {
        "target": ["beta/gpu"],
        "cores": [" 2 "],
        "memory_gb": ["4"],
        "gpus": ["1"],
        "walltime": ["0:30"],
    }
    assert options_from_form(form) == {
        "site": "beta",
        "partition": "gpu",
        "cores": "2",
        "memory_gb": "4",
        "gpus": "1",
        "walltime": "0:30",
    }
    with pytest.raises(OptionsError, match="choose a site and partition"):
        options_from_form({"target": ["beta"]})
    # unknown form fields pass through so that validation names them
    assert options_from_form({"evil": ["x"]}) == {"evil": "x"}


def test_soonest_validates_against_all_allowed_partitions(registry):
    from continuum_spawners.options import SOONEST, candidates

    request = validate_options({"site": SOONEST, "cores": 2}, registry, GROUPS_BOTH)
    assert (request.site, request.partition, request.cores) == (SOONEST, "", 2)
    assert [(c.site, c.partition) for c in candidates(request, registry, GROUPS_BOTH)] == [
        ("alpha", "interactive"),
        ("alpha", "batch"),
        ("beta", "gpu"),
    ]
    gpu = validate_options({"site": SOONEST, "gpus": 1}, registry, GROUPS_BOTH)
    assert [(c.site, c.partition) for c in candidates(gpu, registry, GROUPS_BOTH)] == [
        ("beta", "gpu")
    ]
    big = validate_options({"site": SOONEST, "memory_gb": 12}, registry, GROUPS_BOTH)
    assert [(c.site, c.partition) for c in candidates(big, registry, GROUPS_BOTH)] == [
        ("beta", "gpu")
    ]
    with pytest.raises(OptionsError, match="none of your sites has a partition"):
        validate_options({"site": SOONEST, "gpus": 1, "walltime": "20:00"}, registry, GROUPS_BOTH)
    with pytest.raises(OptionsError, match="partition is chosen for you"):
        validate_options({"site": SOONEST, "partition": "gpu"}, registry, GROUPS_BOTH)
    with pytest.raises(OptionsError, match="gpus must be between 0 and 0"):
        validate_options({"site": SOONEST, "gpus": 1}, registry, HEP)
    assert options_from_form({"target": ["soonest/"]}) == {"site": SOONEST, "partition": ""}


def test_partition_access_by_group():
    doc = {
        "sites": [
            {
                "name": "gamma",
                "scheduler": "slurm",
                "partitions": [
                    {"name": "open", "max_cores": 2, "max_memory_gb": 4, "max_walltime": "1:00"},
                    {
                        "name": "gpu",
                        "max_cores": 2,
                        "max_memory_gb": 4,
                        "max_gpus": 1,
                        "max_walltime": "1:00",
                        "access": {"groups": ["vo.gpu"]},
                    },
                ],
            }
        ]
    }
    registry = SiteRegistry.from_dict(doc, environ={})
    with pytest.raises(OptionsError, match="not allowed to use partition 'gpu'") as info:
        validate_options({"site": "gamma", "partition": "gpu"}, registry, ["vo.cpu"])
    assert info.value.status == 403
    granted = validate_options({"site": "gamma", "partition": "gpu"}, registry, ["vo.gpu"])
    assert granted.partition == "gpu"
