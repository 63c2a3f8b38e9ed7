"""Makes ``pyiqa.create_metric("lifeiqa...")`` work in any interpreter where lifeiqa is installed.

pyiqa checks a metric's name against ``pyiqa.default_model_configs.DEFAULT_CONFIGS`` before it
loads any plugin, so an entry point alone arrives too late. This module, run at interpreter
start-up by ``lifeiqa-pyiqa.pth``, watches for that module's import and adds lifeiqa's entries
to it; the network class itself is registered through pyiqa's ``pyiqa.archs`` entry point when
pyiqa first builds a network. It imports only the standard library, does nothing until pyiqa is
imported, and never raises: a missing, older or changed pyiqa leaves start-up untouched.
Set ``LIFEIQA_PYIQA_PLUGIN=0`` to switch it off.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

TARGET = "pyiqa.default_model_configs"
DISABLE_ENV = "LIFEIQA_PYIQA_PLUGIN"

_SCORE_RANGE = "~0, ~1"  # scores are mapped to [0, 1] via the checkpoint's label scale

# pyiqa metric name -> the Life-IQA preset whose architecture (backbone) its weights must have
PRESETS: dict[str, str] = {
    "lifeiqa": "lifeiqa_swin_b",
    "lifeiqa_effnet_lite0": "lifeiqa_effnet_lite0",
    "lifeiqa_swin_t": "lifeiqa_swin_t",
}

METRICS: dict[str, dict] = {
    name: {
        "metric_opts": {"type": "LifeIQAMetric", "metric_name": name, "model_name": preset},
        "metric_mode": "NR",
        "lower_better": False,
        "score_range": _SCORE_RANGE,
    }
    for name, preset in PRESETS.items()
}


def add_configs(module: ModuleType) -> None:
    """Add lifeiqa's metric entries to a loaded ``pyiqa.default_model_configs``."""
    configs = getattr(module, "DEFAULT_CONFIGS", None)
    if not isinstance(configs, dict):
        warnings.warn("lifeiqa: pyiqa.default_model_configs has no DEFAULT_CONFIGS dict; "
                      "pyiqa.create_metric('lifeiqa') is unavailable", RuntimeWarning, stacklevel=2)
        return
    for name, entry in METRICS.items():
        configs.setdefault(name, {**entry, "metric_opts": dict(entry["metric_opts"])})


class _Loader(importlib.abc.Loader):
    def __init__(self, wrapped: importlib.abc.Loader) -> None:
        self.wrapped = wrapped

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.wrapped.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.wrapped.exec_module(module)
        try:
            add_configs(module)
        except Exception as err:  # never break pyiqa's import
            warnings.warn(f"lifeiqa: could not add pyiqa metric configs: {err}", RuntimeWarning,
                          stacklevel=2)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def installed() -> bool:
    """Whether pyiqa's table, once imported, gets lifeiqa's entries in this process."""
    return any(isinstance(finder, _Finder) for finder in sys.meta_path)


def install() -> None:
    """Add the configs now if pyiqa is loaded, else when it is (idempotent)."""
    try:
        if TARGET in sys.modules:
            add_configs(sys.modules[TARGET])
        elif not installed():
            sys.meta_path.insert(0, _Finder())
    except Exception as err:
        warnings.warn(f"lifeiqa: pyiqa hook not installed: {err}", RuntimeWarning, stacklevel=2)


def install_at_startup() -> None:
    """What ``lifeiqa-pyiqa.pth`` runs: :func:`install` unless switched off."""
    if os.environ.get(DISABLE_ENV, "1").strip().lower() not in ("0", "false", "no", "off"):
        install()
