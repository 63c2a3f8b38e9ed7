"""The model registry: every row a protocol can run besides Life-IQA's own variants.

One registry for the harness's own models (:mod:`harness.plan.builtin_models`) and plug-ins
alike. A plug-in registers with a decorator on the factory that builds its model from the row's
model arguments (the contracts are in :mod:`harness.plan.model_specs`)::

    import harness

    @harness.register_scorer("sharpness", lower_better=False)
    class Sharpness:                         # any object scoring (B, 3, H, W) images in [0, 1]
        def __init__(self, sigma: float = 1.0): ...
        def __call__(self, images): ...      # -> (B,) scores

    @harness.register_image_model("tiny_cnn", recipe={"crop_size": 96})
    class TinyCNN(torch.nn.Module): ...      # crops in [0, 1] -> (B,) scores, fine-tuned

    @harness.register_feature_head("mlp_head")
    class MLPHead(torch.nn.Module):          # frozen backbone features -> (B,) scores
        def __init__(self, features: FeatureShapes, hidden: int = 256): ...

Installed packages register through the entry-point group ``lifeiqa_bench.models``; modules
that are not installed through ``--include`` (:mod:`harness.plugins`). Each entry records the
plug-in that made it, and each unit of its model the plug-in's name and version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from harness.errors import InvalidOptionError, PluginError, UnknownNameError, unknown_name
from harness.plan.builtin_models import BUILTINS, PREFIXES, resolve_prefixed
from harness.plan.model_specs import FAMILY_MODES, PLUGIN_FAMILIES, BenchModelSpec, FeatureShapes
from harness.plan.recipes import Recipe
from harness.plugins import MODEL_GROUP, describe_module, load_group, loading
from lifeiqa.naming import Registry

__all__ = ["BenchModelSpec", "FeatureShapes", "get_bench_model", "list_bench_models",
           "register_bench_model", "register_feature_head", "register_image_model",
           "register_scorer"]

Factory = TypeVar("Factory", bound=Callable[..., Any])


def _unknown(kind: str, name: str, known: list[str]) -> UnknownNameError:
    return unknown_name(kind, name, known, "(or pyiqa:<metric>, pyiqa-arch:<Class>; plug-ins: an "
                        f"installed entry point in group {MODEL_GROUP} or --include MODULE)")


def _taken(name: str, new: BenchModelSpec, known: BenchModelSpec) -> PluginError:
    who = f"plug-in {new.plugin.label}" if new.plugin else "built-in"
    if known.plugin is None:
        return PluginError(f"{who}: model name {name!r} shadows the harness's own model of that "
                           f"name; choose another")
    return PluginError(f"{who}: model name {name!r} is already registered by plug-in "
                       f"{known.plugin.label}")


def _same_plugin(new: BenchModelSpec, known: BenchModelSpec) -> bool:
    # the same plug-in imported again (a worker, an include of an installed module) replaces
    # its own entry; another plug-in may not take the name
    return new.plugin is not None and known.plugin is not None \
        and new.plugin.name == known.plugin.name


_MODELS: Registry[BenchModelSpec] = Registry("model", _unknown, _taken, replaces=_same_plugin)
for _spec in BUILTINS:
    _MODELS.register(_spec.name, _spec)


def register_bench_model(spec: BenchModelSpec) -> BenchModelSpec:
    """Add a plug-in's model (one of the families in ``PLUGIN_FAMILIES``); returns the entry as
    registered, with the plug-in that made it. A name the harness has, or another plug-in's
    name, raises :class:`PluginError` naming both."""
    origin = spec.plugin or loading() or describe_module(
        getattr(spec.factory, "__module__", "__main__"))
    if spec.family not in PLUGIN_FAMILIES:
        raise PluginError(f"plug-in {origin.label}: model {spec.name!r} has family "
                          f"{spec.family!r}; plug-ins register {', '.join(PLUGIN_FAMILIES)}")
    if spec.factory is None:
        raise PluginError(f"plug-in {origin.label}: model {spec.name!r} has no factory")
    if spec.name.startswith(PREFIXES):  # names the registry resolves by prefix, not by entry
        raise PluginError(f"plug-in {origin.label}: model name {spec.name!r} shadows the "
                          f"harness's own model of that name; choose another")
    mode = spec.recipe.get("mode", FAMILY_MODES[spec.family])
    if mode != FAMILY_MODES[spec.family]:
        raise PluginError(f"plug-in {origin.label}: model {spec.name!r}: a {spec.family} model "
                          f"trains in recipe mode {FAMILY_MODES[spec.family]!r}, not {mode!r}")
    try:  # the fields it fixes must exist and be of their types
        Recipe("check", mode=mode).override(**spec.recipe)
    except InvalidOptionError as err:
        raise PluginError(f"plug-in {origin.label}: model {spec.name!r}: recipe {dict(spec.recipe)}"
                          f": {err}") from err
    return _MODELS.register(spec.name, replace(spec, plugin=origin,
                                               recipe={**spec.recipe, "mode": mode}))


def _decorator(family: str, name: str, description: str, needs: str, reference: str,
               recipe: Mapping[str, Any] | None, **extra: Any) -> Callable[[Factory], Factory]:
    def decorate(factory: Factory) -> Factory:
        summary = description or ((factory.__doc__ or "").strip().splitlines() or [name])[0]
        register_bench_model(BenchModelSpec(name, family, summary, needs,
                                            recipe=dict(recipe or {}), reference=reference,
                                            factory=factory, **extra))
        return factory

    return decorate


def register_scorer(name: str, *, lower_better: bool, description: str = "", needs: str = "",
                    trained_on: tuple[str, ...] = (), reference: str = "",
                    recipe: Mapping[str, Any] | None = None) -> Callable[[Factory], Factory]:
    """Register a zero-shot scorer: ``factory(**model_args)`` returns an object called on a
    batch of whole images, (B, 3, H, W) RGB in [0, 1], giving (B,) or (B, 1) scores;
    ``lower_better`` says their direction; ``trained_on`` names the datasets whose opinion
    scores fitted it, if any (a cell on such data is flagged as not zero-shot). A factory
    with a ``device`` parameter is given the unit's device; an ``nn.Module`` is moved to it."""
    return _decorator("zero_shot", name, description, needs, reference, recipe,
                      lower_better=lower_better, trained_on=tuple(trained_on))


def register_image_model(name: str, *, description: str = "", needs: str = "",
                         reference: str = "", recipe: Mapping[str, Any] | None = None
                         ) -> Callable[[Factory], Factory]:
    """Register a trainable image model: ``factory(**model_args)`` returns an ``nn.Module``
    mapping (B, 3, crop, crop) RGB crops in [0, 1] to (B,) or (B, 1) scores, fine-tuned by the
    engine under the run's recipe; ``recipe`` fixes the fields its design needs (e.g.
    ``{"crop_size": 32, "label_scale": "unit"}``)."""
    return _decorator("image_model", name, description, needs, reference, recipe)


def register_feature_head(name: str, *, description: str = "", needs: str = "",
                          reference: str = "", recipe: Mapping[str, Any] | None = None
                          ) -> Callable[[Factory], Factory]:
    """Register a head on frozen backbone features: ``factory(features, **model_args)``
    (``features``: the :class:`FeatureShapes` of the preset's backbone) returns an ``nn.Module``
    mapping ``lifeiqa.BackboneFeatures`` to (B,) or (B, 1) scores, trained on the feature cache
    (recipe mode ``frozen``) as Life-IQA's decoder is."""
    return _decorator("feature_head", name, description, needs, reference, recipe)


def get_bench_model(name: str) -> BenchModelSpec:
    """The registry's entry ``name``: a built-in, ``pyiqa:<metric>``, ``pyiqa-arch:<Class>`` or
    a plug-in's (installed entry points are loaded on the first name the built-ins lack). An
    unknown name raises :class:`~harness.errors.UnknownNameError` naming the close ones."""
    if name in _MODELS:
        return _MODELS.get(name)
    prefixed = resolve_prefixed(name)
    if prefixed is not None:
        return prefixed
    load_group(MODEL_GROUP)
    return _MODELS.get(name)


def list_bench_models() -> list[str]:
    """Every registered name, built-ins first, in registration order (the leaderboard's row
    order); installed plug-ins are loaded first."""
    load_group(MODEL_GROUP)
    return _MODELS.names()
