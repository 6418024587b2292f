"""Shared by the explore tests: a fresh device choice per test and a stand-in for cupy."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from continuum_widgets import analysis


@pytest.fixture(autouse=True)
def fresh_device_choice() -> Iterator[None]:
    """The device choice is cached per process: forget it around each test (autouse where a
    module binds it: ``fresh_device_choice = explore_support.fresh_device_choice``)."""
    analysis.device_report.cache_clear()
    yield
    analysis.device_report.cache_clear()


def fake_cupy() -> types.ModuleType:
    """A stand-in for cupy: numpy's functions, results wrapped as arrays with ``.get()``."""

    class DeviceArray(np.ndarray):
        def get(self) -> np.ndarray:
            return np.asarray(self).view(np.ndarray)

    def wrap(function: Any) -> Any:
        def on_device(*args: Any, **kwargs: Any) -> Any:
            result = function(*args, **kwargs)
            return result.view(DeviceArray) if isinstance(result, np.ndarray) else result

        return on_device

    module = types.ModuleType("cupy")
    module.__getattr__ = lambda name: (  # type: ignore[method-assign]
        attribute
        if isinstance(attribute := getattr(np, name), type) or not callable(attribute)
        else wrap(attribute)
    )
    module.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    return module
