"""Named training recipes: the authors' per-dataset settings and the CPU frozen-backbone default.

The authors train on 4 GPUs with the batch below per GPU, so their effective batch is four
times larger; ``batch_size`` here is the effective batch of one process (recorded with every
run, as is every override).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from harness.errors import InvalidOptionError, unknown_name


@dataclass(frozen=True)
class Recipe:
    name: str
    # "finetune" (the paper's), "frozen" (backbone features cached) or "zero_shot" (no training)
    mode: str = "finetune"
    epochs: int = 30
    warmup_epochs: int = 2
    batch_size: int = 512
    lr: float = 2e-4
    weight_decay: float = 0.01
    schedule: str = "step"  # "step": x0.1 every step_every epochs; "cosine"
    step_every: int = 10
    grad_clip: float = 5.0
    train_crops: int = 35  # each training image is listed this many times per epoch
    test_crops: int = 35  # crops averaged per test image (a uniform grid here)
    crop_size: int = 224
    hflip: bool = True
    aux_weight: float = 0.01
    z_weight: float = 0.001
    regression: str = "smooth_l1"
    label_scale: str = "native"  # "native" (as the authors) or "unit" ([0, 1], higher better)
    resize_policy: str = "native"
    precision: str = "bf16"  # on CUDA: "bf16", "fp16" (with a grad scaler) or "fp32"
    model: str = "lifeiqa_swin_b"
    channels_last: bool = True  # fine-tuning: model and batches in channels-last layout
    compile: bool = False  # fine-tuning: torch.compile the model (minutes of compilation first)

    def __post_init__(self) -> None:
        _check_field_types(self)
        if self.mode not in ("finetune", "frozen", "zero_shot"):
            raise InvalidOptionError(f"recipe {self.name}: mode={self.mode!r}, expected "
                                     f"finetune|frozen|zero_shot")
        if self.schedule not in ("step", "cosine"):
            raise InvalidOptionError(f"recipe {self.name}: schedule={self.schedule!r}, expected "
                                     f"step|cosine")
        if self.label_scale not in ("native", "unit"):
            raise InvalidOptionError(f"recipe {self.name}: label_scale={self.label_scale!r}, "
                                     f"expected native|unit")
        if self.precision not in ("bf16", "fp16", "fp32"):
            raise InvalidOptionError(f"recipe {self.name}: precision={self.precision!r}, "
                                     f"expected bf16|fp16|fp32")
        for name in ("epochs", "batch_size", "train_crops", "test_crops", "crop_size"):
            if getattr(self, name) < 1:
                raise InvalidOptionError(f"recipe {self.name}: {name}={getattr(self, name)!r}, "
                                         f"expected at least 1")

    def override(self, **changes: Any) -> Recipe:
        known = [f.name for f in dataclasses.fields(self)]
        for name in changes:
            if name not in known:
                raise unknown_name("recipe field", name, known)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Field types as written in the annotations above (the module uses postponed annotations).
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _check_field_types(recipe: Recipe) -> None:
    """Each field holds its annotated type: overrides come from text (``--set lr=abc``), and a
    wrong type would otherwise fail every unit later instead of the command now. An int given
    for a float is stored as a float (one recorded config per value); a bool is not an int
    here, nor a float an int (``epochs=2.5``)."""
    for spec in dataclasses.fields(recipe):
        expected = _TYPES[spec.type]
        value = getattr(recipe, spec.name)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(recipe, spec.name, float(value))
            continue
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise InvalidOptionError(f"recipe {recipe.name}: {spec.name}={value!r} is "
                                     f"{type(value).__name__}, expected {spec.type}")


def lr_factor(recipe: Recipe, epoch: float) -> float:
    """Learning-rate multiplier at a (fractional) epoch: linear warmup, then step or cosine."""
    import math

    if recipe.warmup_epochs and epoch < recipe.warmup_epochs:
        return (epoch + 1e-3) / recipe.warmup_epochs
    if recipe.schedule == "cosine":
        span = max(recipe.epochs - recipe.warmup_epochs, 1e-9)
        progress = min(1.0, (epoch - recipe.warmup_epochs) / span)
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 0.1 ** int(epoch // recipe.step_every)


# The authors' configs (DESIGN.md section 3): batch is 4 GPUs x per-GPU batch.
_AUTHORS = {
    "live": dict(batch_size=4 * 16, train_crops=35, test_crops=35, lr=2e-5, model="lifeiqa_swin_b_live"),
    "csiq": dict(batch_size=4 * 128, train_crops=35, test_crops=35, lr=2e-4, model="lifeiqa_swin_b_csiq"),
    "tid2013": dict(batch_size=4 * 128, train_crops=25, test_crops=25, lr=2e-4,
                    model="lifeiqa_swin_b_tid2013"),
    "kadid10k": dict(batch_size=4 * 128, train_crops=35, test_crops=35, lr=2e-5,
                     model="lifeiqa_swin_b_kadid10k"),
    "livec": dict(batch_size=4 * 64, train_crops=50, test_crops=50, lr=3e-5, schedule="cosine",
                  model="lifeiqa_swin_b_livec"),
    "koniq10k": dict(batch_size=4 * 128, train_crops=40, test_crops=40, lr=2e-5,
                     resize_policy="fit:512x384", model="lifeiqa_swin_b_koniq10k"),
    "spaq": dict(batch_size=4 * 128, train_crops=40, test_crops=40, lr=2e-5,
                 resize_policy="fit:512x384", model="lifeiqa_swin_b_spaq"),
}

RECIPES: dict[str, Recipe] = {f"authors_{k}": Recipe(name=f"authors_{k}", **v) for k, v in _AUTHORS.items()}
# The full-width decoder and head trained on cached frozen EfficientNet-Lite0 features (CPU:
# about 2.5 min per KADID-like split after the features are cached).
RECIPES["cpu_frozen"] = Recipe(
    name="cpu_frozen", mode="frozen", epochs=6, warmup_epochs=1, batch_size=64, lr=5e-4,
    schedule="cosine", train_crops=2, test_crops=2, precision="fp32", model="lifeiqa_effnet_lite0",
)


# The CPU default and the README demo: one crop per image, a few epochs, the half-width preset
# (about 10 s per KADID-like split once features are cached).
RECIPES["cpu_demo"] = RECIPES["cpu_frozen"].override(
    name="cpu_demo", epochs=3, warmup_epochs=0, lr=1e-3, train_crops=1, test_crops=1,
    model="lifeiqa_effnet_lite0_small",
)


# A short full fine-tuning (GPU smoke test: scripts/gpu_check.sh): the offline EfficientNet-Lite0
# backbone trains with its decoder on random crops cut from the decoded-image cache.
RECIPES["finetune_short"] = Recipe(
    name="finetune_short", epochs=3, warmup_epochs=1, batch_size=64, lr=1e-4, train_crops=8,
    test_crops=9, model="lifeiqa_effnet_lite0",
)


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise unknown_name("recipe", name, RECIPES)
    return RECIPES[name]
