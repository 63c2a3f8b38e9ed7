"""The harness's own models: declarations of the registry's built-in entries.

Each runs on exactly the splits (or pairs) Life-IQA runs on when a protocol lists it. The pyiqa
networks and metrics are built by the same factories a plug-in's models are
(:class:`PyiqaNetwork`, :class:`PyiqaMetric`), and any pyiqa name resolves to one by prefix:

* ``pyiqa:<metric>``: any pyiqa NR metric, zero-shot with its shipped weights (which must be in
  the local cache: nothing is downloaded unless the user fetched them);
* ``pyiqa-arch:<Class>``: any network of pyiqa's architecture registry (``CNNIQA``, ``DBCNN``,
  ``HyperNet``, ...), built with its weight downloads switched off and trained by the engine's
  fine-tuning loop; its constructor's keywords are the row's model arguments.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from harness.errors import UnknownNameError
from harness.plan.model_specs import BenchModelSpec

PYIQA_PREFIX = "pyiqa:"
PYIQA_ARCH_PREFIX = "pyiqa-arch:"
PREFIXES = (PYIQA_PREFIX, PYIQA_ARCH_PREFIX)
# a pyiqa constructor's switches that would download weights, and the values that keep it off
_OFFLINE = {"pretrained": False, "backbone_pretrain": False, "pretrained_model_path": None}


def _pyiqa_arch_class(name: str) -> type[Any]:
    """pyiqa's network class ``name`` from its architecture registry (imported on demand)."""
    import pyiqa.archs
    from pyiqa.utils.registry import ARCH_REGISTRY

    if name not in ARCH_REGISTRY:
        # pyiqa imports its arch modules lazily; build_network's own lookup, without building
        lazy = getattr(pyiqa.archs, "_lazy_import_arch", None)
        if lazy is not None:
            lazy(name)
    if name not in ARCH_REGISTRY:
        known = sorted(ARCH_REGISTRY._obj_map) if hasattr(ARCH_REGISTRY, "_obj_map") else []
        close = difflib.get_close_matches(name, known, n=3)
        raise UnknownNameError(f"pyiqa has no network class {name!r}"
                               + (f"; did you mean {', '.join(close)}?" if close else ""))
    return cast("type[Any]", ARCH_REGISTRY.get(name))


@dataclass(frozen=True)
class PyiqaNetwork:
    """Builds pyiqa's network ``cls`` with its weight downloads off (every ``pretrained``-style
    switch its constructor has), then ``kwargs``, then the row's model arguments."""

    cls: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, **args: Any) -> Any:
        network = _pyiqa_arch_class(self.cls)
        accepted = inspect.signature(network.__init__).parameters
        offline = {k: v for k, v in _OFFLINE.items() if k in accepted}
        return network(**{**offline, **self.kwargs, **args})

    @property
    def __signature__(self) -> inspect.Signature:
        """The keywords a row may pass: the pyiqa class's constructor's."""
        signature = inspect.signature(_pyiqa_arch_class(self.cls).__init__)
        return signature.replace(parameters=list(signature.parameters.values())[1:])


@dataclass(frozen=True)
class PyiqaMetric:
    """Builds pyiqa's metric ``metric`` (``pyiqa.create_metric``) on ``device``; the row's model
    arguments go to its network."""

    metric: str

    def __call__(self, device: Any = None, **args: Any) -> Any:
        import pyiqa

        return pyiqa.create_metric(self.metric, device=device, **args)


def _pyiqa_arch_spec(name: str, description: str, kwargs: Mapping[str, Any],
                     recipe: Mapping[str, Any], reference: str) -> BenchModelSpec:
    cls = kwargs["cls"]
    return BenchModelSpec(name, "image_model", description, "pyiqa (no weights)",
                     settings={"pyiqa_class": cls, "kwargs": dict(kwargs["init"])},
                     recipe={"mode": "finetune", "label_scale": "unit", **recipe},
                     reference=reference, factory=PyiqaNetwork(cls, kwargs["init"]))


# Stage k is the backbone feature map at stride 2^(k+1) (Swin's stages 1-4; EfficientNet's
# levels at strides 4..32), so the probe names mean the same depth on every backbone.
_PROBES = tuple(
    BenchModelSpec(
        f"probe_stage{stage}", "probe",
        f"global average pooling of backbone stage {stage} (stride {2 ** (stage + 1)}) of the "
        f"frozen preset backbone + a ridge-regression head (regularisation chosen by generalised "
        f"cross-validation on the training part)",
        "the preset's backbone weights",
        settings={"stride": 2 ** (stage + 1)},
        recipe={"mode": "frozen"},
    )
    for stage in (1, 2, 3, 4))

# Registration order is the leaderboard's row order among these: Life-IQA configurations,
# probes, trained networks, zero-shot metrics.
BUILTINS: tuple[BenchModelSpec, ...] = (
    BenchModelSpec(
        "deiqt_head", "lifeiqa_config",
        "DEIQT-style head on the Life-IQA backbone: one query token, a vanilla transformer "
        "decoder (self-attention, cross-attention to the deepest stage's tokens, FFN) and an MLP "
        "head; no GCN, no stage-3 memory, no MoE. Not DEIQT itself (no ViT encoder, no "
        "attention-panel consistency loss).",
        "nothing beyond the Life-IQA preset",
        settings={"config": {"decoder_layer": "vanilla", "head": "ffn", "kv_source": "stage4",
                             "num_queries": 1}},
        reference="Qin et al., Data-Efficient Image Quality Assessment with Attention-Panel "
                  "Decoder (DEIQT), AAAI 2023, arXiv 2304.04952",
    ),
    BenchModelSpec(
        "no_balance_loss", "lifeiqa_config",
        "Life-IQA trained without the MoE's load-balancing and router z-losses (their weights "
        "0): the routing analysis's test of what L_aux does to expert load and specialisation",
        "nothing beyond the Life-IQA preset",
        settings={"config": {}}, recipe={"aux_weight": 0.0, "z_weight": 0.0},
    ),
    *_PROBES,
    _pyiqa_arch_spec(
        "cnniqa",
        "CNNIQA (pyiqa's CNNIQA class, random init): 7x7 conv, max-min pooling, two FC layers; "
        "trained and tested on 32x32 patches as in the original (16 random patches per image per "
        "epoch, the mean over a uniform grid of 16 at test time)",
        {"cls": "CNNIQA", "init": {"pretrained": None}},
        {"crop_size": 32, "train_crops": 16, "test_crops": 16},
        "Kang et al., Convolutional Neural Networks for No-Reference Image Quality Assessment, "
        "CVPR 2014"),
    _pyiqa_arch_spec(
        "wadiqam_nr",
        "WaDIQaM-NR (pyiqa's WaDIQaM class, metric_type NR, random init): a VGG-style patch "
        "network with learned patch weights; each 96x96 crop is 4 random 32x32 patches in "
        "training and its 4 non-overlapping patches at test time, weighted by the network",
        {"cls": "WaDIQaM", "init": {"metric_type": "NR", "pretrained": False,
                                    "train_patch_num": 4}},
        {"crop_size": 96},
        "Bosse et al., Deep Neural Networks for No-Reference and Full-Reference Image Quality "
        "Assessment, IEEE TIP 2018"),
    _pyiqa_arch_spec(
        "musiq",
        "MUSIQ (pyiqa's MUSIQ class, random init, multi-scale patch transformer); a GPU baseline",
        {"cls": "MUSIQ", "init": {"pretrained": False}}, {},
        "Ke et al., MUSIQ: Multi-scale Image Quality Transformer, ICCV 2021"),
    _pyiqa_arch_spec(
        "topiq_nr",
        "TOPIQ-NR (pyiqa's CFANet, no reference, ResNet-50 without ImageNet weights since those "
        "would be downloaded); a GPU baseline, weaker than the published model by construction",
        {"cls": "CFANet", "init": {"semantic_model_name": "resnet50", "backbone_pretrain": False,
                                   "pretrained": False, "use_ref": False}}, {},
        "Chen et al., TOPIQ: A Top-down Approach from Semantics to Distortions for Image Quality "
        "Assessment, IEEE TIP 2024"),
    BenchModelSpec(
        "piqe", "zero_shot",
        "PIQE (pyiqa): block-wise distortion estimate, no training and no weights",
        "pyiqa (no weights)",
        settings={"metric": "piqe"}, recipe={"mode": "zero_shot"}, trained_on=(),
        reference="Venkatanath et al., Blind Image Quality Evaluation Using Perception Based "
                  "Features, NCC 2015",
        factory=PyiqaMetric("piqe"), lower_better=True,
    ),
    BenchModelSpec(
        "niqe", "zero_shot",
        "NIQE (pyiqa): distance to a multivariate Gaussian model of pristine natural images",
        "pyiqa's NIQE parameter file in the local cache",
        settings={"metric": "niqe"}, recipe={"mode": "zero_shot"}, trained_on=(),
        reference="Mittal et al., Making a 'Completely Blind' Image Quality Analyzer, IEEE SPL "
                  "2013",
        factory=PyiqaMetric("niqe"), lower_better=True,
    ),
    BenchModelSpec(
        "brisque", "zero_shot",
        "BRISQUE (pyiqa): natural-scene statistics + an SVR fitted on LIVE's opinion scores",
        "pyiqa's BRISQUE SVR file in the local cache",
        settings={"metric": "brisque"}, recipe={"mode": "zero_shot"}, trained_on=("live",),
        reference="Mittal et al., No-Reference Image Quality Assessment in the Spatial Domain, "
                  "IEEE TIP 2012",
        factory=PyiqaMetric("brisque"), lower_better=True,
    ),
)

# Dataset names as they appear in pyiqa's option values for pretrained weights.
_PYIQA_DATA_TOKENS = {"koniq": "koniq10k", "spaq": "spaq", "kadid": "kadid10k", "livec": "livec",
                      "livechallenge": "livec", "tid": "tid2013", "csiq": "csiq", "pipal": "pipal",
                      "ava": "ava", "paq2piq": "flive", "flive": "flive", "live": "live"}


def _pyiqa_configs() -> dict:
    """pyiqa's table of metrics (``pyiqa.default_model_configs.DEFAULT_CONFIGS``), with
    lifeiqa's entries where pyiqa would have them. Read from its file while pyiqa is not loaded:
    the table is plain data, but importing it runs pyiqa's package, which loads torch and
    torchvision (3.5 of the 4.4 s ``list protocols`` took, for its ``pyiqa:`` rows)."""
    import sys

    import lifeiqa_pyiqa_hook

    loaded = sys.modules.get(lifeiqa_pyiqa_hook.TARGET)
    if loaded is not None:
        return cast(dict, loaded.DEFAULT_CONFIGS)
    module = _pyiqa_configs_file()
    if lifeiqa_pyiqa_hook.installed():  # idempotent; the hook may be installed since the read
        lifeiqa_pyiqa_hook.add_configs(module)
    return cast(dict, module.DEFAULT_CONFIGS)


@functools.cache
def _pyiqa_configs_file() -> ModuleType:
    """pyiqa's ``default_model_configs.py`` run on its own, once a process (a protocol's rows
    ask for it once each)."""
    import importlib.util

    package = importlib.util.find_spec("pyiqa")
    if package is None or not package.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'pyiqa'", name="pyiqa")
    path = Path(next(iter(package.submodule_search_locations))) / "default_model_configs.py"
    spec = importlib.util.spec_from_file_location("_pyiqa_default_model_configs", path)
    assert spec is not None and spec.loader is not None  # a .py file's location
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pyiqa_config(metric: str) -> dict:
    configs = _pyiqa_configs()
    if metric not in configs:
        close = difflib.get_close_matches(metric, list(configs), n=3)
        raise UnknownNameError(f"pyiqa has no metric {metric!r}"
                               + (f"; did you mean {', '.join(close)}?" if close else ""))
    return cast(dict, configs[metric])


def pyiqa_trained_on(metric: str) -> tuple[str, ...] | None:
    """The data a pyiqa metric's default weights were fitted on, read from its name and its
    pyiqa option values (``pretrained``, ``train_dataset``, ``regressor_dataset``, ...); None
    when none says (the leaderboard then marks its cells as of unknown provenance)."""
    options = _pyiqa_config(metric).get("metric_opts", {})
    found = set()
    # every text option (pretrained, train_dataset, model_type, regressor_dataset...) and the name
    for value in [metric, *(v for v in options.values() if isinstance(v, str))]:
        value = value.lower()
        # longest tokens first, each consumed, so "livec" is not also read as "live"
        for token in sorted(_PYIQA_DATA_TOKENS, key=len, reverse=True):
            if token in value:
                found.add(_PYIQA_DATA_TOKENS[token])
                value = value.replace(token, " ")
    return tuple(sorted(found)) or None


def resolve_prefixed(name: str) -> BenchModelSpec | None:
    """The spec of a ``pyiqa:<metric>`` or ``pyiqa-arch:<Class>`` name; None for other names.
    An unknown metric or class raises UnknownNameError naming the close ones."""
    if name.startswith(PYIQA_PREFIX):
        metric = name[len(PYIQA_PREFIX):]
        config = _pyiqa_config(metric)
        trained_on = pyiqa_trained_on(metric)
        return BenchModelSpec(
            name, "zero_shot", f"pyiqa metric {metric!r} with its shipped weights, zero-shot",
            f"pyiqa's weights for {metric!r} in the local cache (lifeiqa never downloads them)",
            settings={"metric": metric}, recipe={"mode": "zero_shot"},
            trained_on=trained_on if trained_on is not None else ("unknown",),
            factory=PyiqaMetric(metric), lower_better=bool(config.get("lower_better", False)))
    if name.startswith(PYIQA_ARCH_PREFIX):
        cls = name[len(PYIQA_ARCH_PREFIX):]
        _pyiqa_arch_class(cls)  # raises for an unknown class
        return _pyiqa_arch_spec(
            name, f"pyiqa's {cls} network, random init (weight downloads off), fine-tuned by the "
                  f"harness's loop", {"cls": cls, "init": {}}, {}, "")
    return None
