"""Named baselines: what each is, what it needs, and how the harness trains or evaluates it.

A baseline joins a protocol through the protocol's ``baselines:`` list and runs on exactly the
splits (or pairs) Life-IQA runs on. Families:

* ``lifeiqa_config``: a Life-IQA configuration change on the same backbone (the DEIQT-style
  head); trained like Life-IQA (frozen features or fine-tuning, as the recipe says).
* ``probe``: global average pooling of one backbone stage + a ridge-regression head, on the same
  crops as the frozen Life-IQA runs (the paper's shallow-vs-deep feature analysis).
* ``pyiqa_arch``: a pyiqa network built with no downloaded weights and trained by the harness's
  loop (same optimiser, schedule, loss, selection), with crop settings its design needs.
* ``training_free``: a metric used zero-shot on each test part; ``trained_on`` names the data
  its shipped weights saw, so a "zero-shot" cell on that data is flagged as not zero-shot.

``pyiqa:<metric>`` names any pyiqa NR metric as a training-free baseline (its weights must be in
the local cache; nothing is downloaded unless the user fetched them).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

FAMILIES = ("lifeiqa_config", "probe", "pyiqa_arch", "training_free")
PYIQA_PREFIX = "pyiqa:"


@dataclass(frozen=True)
class Baseline:
    name: str
    family: str
    description: str
    needs: str  # what must be installed or cached locally
    settings: dict[str, Any] = field(default_factory=dict)  # family-specific
    recipe: dict[str, Any] = field(default_factory=dict)  # recipe fields this baseline fixes
    # Data the shipped weights were fitted on (training-free only); () = opinion-unaware.
    trained_on: tuple[str, ...] | None = None
    reference: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"baseline {self.name}: family {self.family!r}, expected one of "
                             f"{FAMILIES}")


BASELINES: dict[str, Baseline] = {}


def _register(baseline: Baseline) -> None:
    if baseline.name in BASELINES:
        raise ValueError(f"baseline {baseline.name!r} is already registered")
    BASELINES[baseline.name] = baseline


_register(Baseline(
    "deiqt_head", "lifeiqa_config",
    "DEIQT-style head on the Life-IQA backbone: one query token, a vanilla transformer decoder "
    "(self-attention, cross-attention to the deepest stage's tokens, FFN) and an MLP head; no "
    "GCN, no stage-3 memory, no MoE. Not DEIQT itself (no ViT encoder, no attention-panel "
    "consistency loss).",
    "nothing beyond the Life-IQA preset",
    settings={"config": {"decoder_layer": "vanilla", "head": "ffn", "kv_source": "stage4",
                         "num_queries": 1}},
    reference="Qin et al., Data-Efficient Image Quality Assessment with Attention-Panel "
              "Decoder (DEIQT), AAAI 2023, arXiv 2304.04952",
))

_register(Baseline(
    "no_balance_loss", "lifeiqa_config",
    "Life-IQA trained without the MoE's load-balancing and router z-losses (their weights 0): "
    "the routing analysis's test of what L_aux does to expert load and specialisation",
    "nothing beyond the Life-IQA preset",
    settings={"config": {}}, recipe={"aux_weight": 0.0, "z_weight": 0.0},
))

# Stage k is the backbone feature map at stride 2^(k+1) (Swin's stages 1-4; EfficientNet's
# levels at strides 4..32), so the probe names mean the same depth on every backbone.
for _stage in (1, 2, 3, 4):
    _register(Baseline(
        f"probe_stage{_stage}", "probe",
        f"global average pooling of backbone stage {_stage} (stride {2 ** (_stage + 1)}) of the "
        f"frozen preset backbone + a ridge-regression head (regularisation chosen by generalised "
        f"cross-validation on the training part)",
        "the preset's backbone weights",
        settings={"stride": 2 ** (_stage + 1)},
        recipe={"mode": "frozen"},
    ))

_register(Baseline(
    "cnniqa", "pyiqa_arch",
    "CNNIQA (pyiqa's CNNIQA class, random init): 7x7 conv, max-min pooling, two FC layers; "
    "trained and tested on 32x32 patches as in the original (16 random patches per image per "
    "epoch, the mean over a uniform grid of 16 at test time)",
    "pyiqa (no weights)",
    settings={"module": "pyiqa.archs.cnniqa_arch", "cls": "CNNIQA",
              "kwargs": {"pretrained": None}},
    recipe={"mode": "finetune", "crop_size": 32, "train_crops": 16, "test_crops": 16,
            "label_scale": "unit"},
    reference="Kang et al., Convolutional Neural Networks for No-Reference Image Quality "
              "Assessment, CVPR 2014",
))
_register(Baseline(
    "wadiqam_nr", "pyiqa_arch",
    "WaDIQaM-NR (pyiqa's WaDIQaM class, metric_type NR, random init): a VGG-style patch network "
    "with learned patch weights; each 96x96 crop is 4 random 32x32 patches in training and its "
    "4 non-overlapping patches at test time, weighted by the network",
    "pyiqa (no weights)",
    settings={"module": "pyiqa.archs.wadiqam_arch", "cls": "WaDIQaM",
              "kwargs": {"metric_type": "NR", "pretrained": False, "train_patch_num": 4}},
    recipe={"mode": "finetune", "crop_size": 96, "label_scale": "unit"},
    reference="Bosse et al., Deep Neural Networks for No-Reference and Full-Reference Image "
              "Quality Assessment, IEEE TIP 2018",
))
_register(Baseline(
    "musiq", "pyiqa_arch",
    "MUSIQ (pyiqa's MUSIQ class, random init, multi-scale patch transformer); a GPU baseline",
    "pyiqa (no weights)",
    settings={"module": "pyiqa.archs.musiq_arch", "cls": "MUSIQ", "kwargs": {"pretrained": False}},
    recipe={"mode": "finetune", "label_scale": "unit"},
    reference="Ke et al., MUSIQ: Multi-scale Image Quality Transformer, ICCV 2021",
))
_register(Baseline(
    "topiq_nr", "pyiqa_arch",
    "TOPIQ-NR (pyiqa's CFANet, no reference, ResNet-50 without ImageNet weights since those "
    "would be downloaded); a GPU baseline, weaker than the published model by construction",
    "pyiqa (no weights)",
    settings={"module": "pyiqa.archs.topiq_arch", "cls": "CFANet",
              "kwargs": {"semantic_model_name": "resnet50", "backbone_pretrain": False,
                         "pretrained": False, "use_ref": False}},
    recipe={"mode": "finetune", "label_scale": "unit"},
    reference="Chen et al., TOPIQ: A Top-down Approach from Semantics to Distortions for Image "
              "Quality Assessment, IEEE TIP 2024",
))
_register(Baseline(
    "piqe", "training_free",
    "PIQE (pyiqa): block-wise distortion estimate, no training and no weights",
    "pyiqa (no weights)",
    settings={"metric": "piqe"}, recipe={"mode": "zero_shot"}, trained_on=(),
    reference="Venkatanath et al., Blind Image Quality Evaluation Using Perception Based "
              "Features, NCC 2015",
))
_register(Baseline(
    "niqe", "training_free",
    "NIQE (pyiqa): distance to a multivariate Gaussian model of pristine natural images",
    "pyiqa's NIQE parameter file in the local cache",
    settings={"metric": "niqe"}, recipe={"mode": "zero_shot"}, trained_on=(),
    reference="Mittal et al., Making a 'Completely Blind' Image Quality Analyzer, IEEE SPL 2013",
))
_register(Baseline(
    "brisque", "training_free",
    "BRISQUE (pyiqa): natural-scene statistics + an SVR fitted on LIVE's opinion scores",
    "pyiqa's BRISQUE SVR file in the local cache",
    settings={"metric": "brisque"}, recipe={"mode": "zero_shot"}, trained_on=("live",),
    reference="Mittal et al., No-Reference Image Quality Assessment in the Spatial Domain, "
              "IEEE TIP 2012",
))

# Dataset names as they appear in pyiqa's option values for pretrained weights.
_PYIQA_DATA_TOKENS = {"koniq": "koniq10k", "spaq": "spaq", "kadid": "kadid10k", "livec": "livec",
                      "livechallenge": "livec", "tid": "tid2013", "csiq": "csiq", "pipal": "pipal",
                      "ava": "ava", "paq2piq": "flive", "flive": "flive", "live": "live"}


def pyiqa_trained_on(metric: str) -> tuple[str, ...] | None:
    """The data a pyiqa metric's default weights were fitted on, read from its name and its
    pyiqa option values (``pretrained``, ``train_dataset``, ``regressor_dataset``, ...); None
    when none says (the leaderboard then marks its cells as of unknown provenance)."""
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    if metric not in DEFAULT_CONFIGS:
        close = difflib.get_close_matches(metric, list(DEFAULT_CONFIGS), n=3)
        raise KeyError(f"pyiqa has no metric {metric!r}" + (f"; did you mean {close}?" if close
                                                             else ""))
    options = DEFAULT_CONFIGS[metric].get("metric_opts", {})
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


def _pyiqa_baseline(name: str) -> Baseline:
    metric = name[len(PYIQA_PREFIX):]
    trained_on = pyiqa_trained_on(metric)
    return Baseline(
        name, "training_free",
        f"pyiqa metric {metric!r} with its shipped weights, zero-shot",
        f"pyiqa's weights for {metric!r} in the local cache (lifeiqa never downloads them)",
        settings={"metric": metric}, recipe={"mode": "zero_shot"},
        trained_on=trained_on if trained_on is not None else ("unknown",),
    )


def is_baseline(name: str) -> bool:
    return name in BASELINES or name.startswith(PYIQA_PREFIX)


def get_baseline(name: str) -> Baseline:
    if name.startswith(PYIQA_PREFIX):
        return _pyiqa_baseline(name)
    if name not in BASELINES:
        close = difflib.get_close_matches(name, list(BASELINES), n=3, cutoff=0.5)
        raise KeyError(f"unknown baseline {name!r}" + (f"; did you mean {close}?" if close else "")
                       + f" Known: {sorted(BASELINES)} or pyiqa:<metric>")
    return BASELINES[name]


def list_baselines() -> list[str]:
    return sorted(BASELINES)
