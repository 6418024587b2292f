"""The in-job launcher's pure parts: the server URL and the job's start and end time."""

from continuum_spawners.launcher import job_times, service_url


def test_job_times_from_slurm_start_and_walltime():
    env = {"SLURM_JOB_START_TIME": "1795240800", "CONTINUUM_WALLTIME_MINUTES": "90"}
    assert job_times(env, now=0) == {
        "CONTINUUM_JOB_START": "2026-11-21T06:00:00Z",
        "CONTINUUM_JOB_END": "2026-11-21T07:30:00Z",
    }


def test_job_times_fall_back_to_now_and_tolerate_garbage():
    assert job_times({"CONTINUUM_WALLTIME_MINUTES": "1"}, now=60) == {
        "CONTINUUM_JOB_START": "1970-01-01T00:01:00Z",
        "CONTINUUM_JOB_END": "1970-01-01T00:02:00Z",
    }
    assert job_times({"SLURM_JOB_START_TIME": "soon", "CONTINUUM_WALLTIME_MINUTES": "x"}, 0) == {
        "CONTINUUM_JOB_START": "1970-01-01T00:00:00Z"
    }


def test_service_url_keeps_path():
    url = "http://127.0.0.1:0/user/alice/"
    assert service_url(url, "10.1.2.3", 8888) == "http://10.1.2.3:8888/user/alice/"
    assert service_url(url, "::1", 8888) == "http://[::1]:8888/user/alice/"
