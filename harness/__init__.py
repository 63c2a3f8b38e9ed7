"""lifeiqa-bench: the benchmark harness around the lifeiqa model library.

Data flows one way, one sub-package per stage: ``data`` (dataset records, synthetic sets) ->
``plan`` (protocols, recipes, models, split plans, jobs, run options) -> ``engine`` (features,
training, the runner and executors) -> ``results`` (the typed store, metrics, aggregation) ->
``reporting`` (leaderboards, figures, published scores, checks). ``api`` is the Python entry
point and ``cli`` the command line over it; CONTRIBUTING.md has the map and the import rules.

    import harness
    results = harness.evaluate("splits", datasets=["synth-kadid10k"], splits=3)
    results.summary()
"""

from __future__ import annotations

from typing import Any

# The API's names, imported on first use: ``import harness.data...`` stays light (no torch
# training code, no plotting) for the modules that need only one layer.
_API = ("evaluate", "evaluate_options", "evaluate_all", "dry_run", "plan_options", "run_options",
        "load_results", "leaderboard", "Results", "FailedUnit")
_OPTIONS = ("RunOptions", "ExecutorOptions", "RunPlan")
_RELEASE = ("train_release", "plan_release", "TrainOptions", "ReleaseModel")
# the plug-in seam: what a package registers its models with (harness/plan/registry.py)
_REGISTRY = ("register_scorer", "register_image_model", "register_feature_head",
             "register_bench_model", "get_bench_model", "list_bench_models", "BenchModelSpec",
             "FeatureShapes")
_ERRORS = ("HarnessError", "InvalidOptionError", "UnknownNameError", "DatasetError",
           "DataNotFoundError", "PluginError", "ResultsError", "NoResultsError", "ResultSchemaError",
           "ExecutionError")

__all__ = [*_API, *_OPTIONS, *_RELEASE, *_REGISTRY, "include", *_ERRORS]


def __getattr__(name: str) -> Any:
    import importlib

    for module, names in (("harness.api", _API), ("harness.plan.options", _OPTIONS),
                          ("harness.release", _RELEASE), ("harness.plan.registry", _REGISTRY),
                          ("harness.plugins", ("include",)), ("harness.errors", _ERRORS)):
        if name in names:
            return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
