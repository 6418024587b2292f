"""The safe port report that replaces batchspawner's attribute-setting handler."""

from types import SimpleNamespace

import pytest
from tornado import web

from continuum_spawners import api

TOKEN = "a" * 32


def spawner(token=TOKEN, pending="spawn"):
    return SimpleNamespace(
        api_token=token, pending=pending, port=0, cmd=["jupyterhub-singleuser"], exec_prefix=""
    )


def test_accepts_the_port_only():
    s = spawner()
    assert api.accept_port_report({"port": 8888}, TOKEN, [spawner("b" * 32), s]) == (s, 8888)


@pytest.mark.parametrize(
    "body",
    [
        {"port": 8888, "exec_prefix": "bash -c 'id'"},
        {"cmd": ["/bin/sh"]},
        {"exec_prefix": "x"},
        {},
        [8888],
        "8888",
        None,
        {"port": "8888"},
        {"port": True},
        {"port": 0},
        {"port": 65536},
        {"port": 80.5},
    ],
    ids=[
        "port+exec_prefix",
        "cmd",
        "exec_prefix",
        "empty",
        "list",
        "string",
        "null",
        "port-string",
        "port-bool",
        "port-zero",
        "port-high",
        "port-float",
    ],
)
def test_refuses_everything_else_and_changes_nothing(body):
    s = spawner()
    before = dict(vars(s))
    with pytest.raises(web.HTTPError) as info:
        api.accept_port_report(body, TOKEN, [s])
    assert info.value.status_code == 400
    assert vars(s) == before


def test_refuses_another_token():
    with pytest.raises(web.HTTPError) as info:
        api.accept_port_report({"port": 8888}, "c" * 32, [spawner()])
    assert info.value.status_code == 403


def test_refuses_a_running_server():
    with pytest.raises(web.HTTPError) as info:
        api.accept_port_report({"port": 8888}, TOKEN, [spawner(pending=None)])
    assert info.value.status_code == 409


def test_install_replaces_batchspawners_handler():
    from batchspawner.api import BatchSpawnerAPIHandler
    from jupyterhub import apihandlers

    api.install_api_handlers()
    api.install_api_handlers()  # idempotent
    routes = [h for h in apihandlers.default_handlers if h[0] in api.ROUTES]
    assert routes == [
        (api.PORT_ROUTE, api.PortReportHandler),
        (api.JOB_ROUTE, api.JobInfoHandler),
        (api.ESTIMATE_ROUTE, api.EstimateHandler),
    ]
    assert all(h[1] is not BatchSpawnerAPIHandler for h in apihandlers.default_handlers)
    assert api.is_installed()


def test_a_requeued_server_may_report_its_new_port():
    s = spawner(pending=None)
    s.requeued = True
    assert api.accept_port_report({"port": 9999}, TOKEN, [s]) == (s, 9999)
