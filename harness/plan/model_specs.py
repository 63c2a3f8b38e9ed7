"""What the harness knows about a model it can run besides Life-IQA's own variants.

A :class:`BenchModelSpec` is one registry entry (:mod:`harness.plan.registry`): its family (how the
engine runs it), what it needs, the recipe fields its design fixes, the data its weights saw,
and, for code of its own, the ``factory`` that builds it from the row's model arguments. The
built-ins (:mod:`harness.plan.builtin_models`) and plug-ins are entries of the same kind.

Families and the contract of each factory (images are RGB in [0, 1], shape (B, 3, H, W)):

* ``zero_shot``: ``factory(**args)`` returns an object called on a batch of whole images
  (``scorer(images) -> (B,)`` or ``(B, 1)`` scores), with ``lower_better`` saying their
  direction; applied to each test image, nothing trained. pyiqa metrics are one instance.
* ``image_model``: ``factory(**args)`` returns an ``nn.Module`` mapping a batch of crops to
  ``(B,)`` or ``(B, 1)`` scores, trained by the engine's fine-tuning loop under the recipe
  (crops, schedule, precision, selection, data parallelism) like Life-IQA.
* ``feature_head``: ``factory(features, **args)`` returns an ``nn.Module`` mapping the preset's
  frozen backbone features (``lifeiqa.BackboneFeatures``; ``features`` is their
  :class:`FeatureShapes`) to scores, trained on the feature cache like Life-IQA's decoder.
* ``lifeiqa_config`` and ``probe``: built-in only (a Life-IQA configuration change; a ridge
  probe of one backbone stage).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InvalidOptionError
from harness.plugins import PluginInfo

FAMILIES = ("lifeiqa_config", "probe", "feature_head", "image_model", "zero_shot")
PLUGIN_FAMILIES = ("zero_shot", "image_model", "feature_head")  # what plug-ins may register
# the recipe mode each plug-in family trains in (fixed: the engine has one loop per mode)
FAMILY_MODES = {"zero_shot": "zero_shot", "image_model": "finetune", "feature_head": "frozen"}


@dataclass(frozen=True)
class FeatureShapes:
    """What a feature head receives per crop, as ``lifeiqa.BackboneFeatures``: ``pooled``, the
    penultimate stage partition-averaged to (tokens, pooled_channels); ``deepest``, the deepest
    stage as (deepest_channels, height, width) at the preset's crop size."""

    pooled_tokens: int
    pooled_channels: int
    deepest_channels: int
    deepest_height: int
    deepest_width: int


@dataclass(frozen=True)
class BenchModelSpec:
    """A model the harness can run: see the module docstring for the families' contracts."""

    name: str
    family: str
    description: str
    needs: str = ""  # what must be installed or cached locally
    settings: Mapping[str, Any] = field(default_factory=dict)  # family-specific, JSON values
    recipe: Mapping[str, Any] = field(default_factory=dict)  # recipe fields this model fixes
    # Data the shipped weights were fitted on (zero-shot only); () = opinion-unaware.
    trained_on: tuple[str, ...] | None = None
    reference: str = ""
    factory: Callable[..., Any] | None = None  # builds it from the row's model arguments
    lower_better: bool | None = None  # zero_shot: the scores' direction
    plugin: PluginInfo | None = None  # None for the harness's own models

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise InvalidOptionError(f"model {self.name!r}: family {self.family!r}, expected one "
                                     f"of {', '.join(FAMILIES)}")
        if not self.name or any(c in self.name for c in "/\\()=,\0") or self.name != self.name.strip():
            raise InvalidOptionError(f"model name {self.name!r}: expected a non-empty name "
                                     f"without '/', '\\', '(', ')', '=', ',' or surrounding spaces "
                                     f"(it names the units' folders)")
        if self.family == "zero_shot" and self.lower_better is None:
            raise InvalidOptionError(f"zero-shot model {self.name!r}: say whether its scores are "
                                     f"lower_better (True) or higher-is-better (False)")
        object.__setattr__(self, "settings", dict(self.settings))
        object.__setattr__(self, "recipe", dict(self.recipe))

    def check_args(self, args: Mapping[str, Any]) -> None:
        """Raise InvalidOptionError unless the factory accepts ``args`` as keywords."""
        if not args:
            return
        if self.factory is None:
            raise InvalidOptionError(f"model {self.name!r} takes no model arguments (got "
                                     f"{', '.join(sorted(args))})")
        try:
            parameters = inspect.signature(self.factory).parameters
        except (TypeError, ValueError):  # a builtin or extension callable: cannot tell
            return
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return
        names = [n for n, p in parameters.items()
                 if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
        if self.family == "feature_head" and names:
            names = names[1:]  # the first parameter receives the FeatureShapes
        unknown = sorted(set(args) - set(names))
        if unknown:
            raise InvalidOptionError(f"model {self.name!r}: unknown model argument(s) "
                                     f"{', '.join(unknown)}; its factory takes "
                                     f"{', '.join(names) or 'none'}")
