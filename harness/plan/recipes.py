"""Named training recipes: the authors' per-dataset settings and the CPU frozen-backbone default.

The authors train on 4 GPUs with the batch below per GPU, so their effective batch is four
times larger; ``batch_size`` here is the effective batch of one process (recorded with every
run, as is every override).

The ``authors_<dataset>`` recipes are the values of the authors' ``configs/swin/swin_*.yaml``
(docs/design.md section 3) run as their code runs them: timm's schedulers built as their
``build_scheduler`` builds them (``scheduler="timm"``), fp16 autocast with a gradient scaler, the
last partial batch dropped. What stays honest by default (a uniform grid of test crops, an
aspect-preserving resize with EXIF orientation, last-epoch selection) has a reproduction switch
each: ``test_crop_layout="random"``, :func:`authors_image_policy`, selection ``authors``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, cast

from harness.data.cache import parse_policy
from harness.errors import InvalidOptionError, unknown_name

SCHEDULERS = ("harness", "timm")
TEST_CROP_LAYOUTS = ("grid", "random")


@dataclass(frozen=True)
class Recipe:
    name: str
    # "finetune" (the paper's), "frozen" (backbone features cached) or "zero_shot" (no training)
    mode: str = "finetune"
    epochs: int = 30
    # fractional epochs allowed: the schedule is stepped per optimiser step
    warmup_epochs: float = 2.0
    batch_size: int = 512
    lr: float = 2e-4
    weight_decay: float = 0.01
    schedule: str = "step"  # "step": x decay_rate every step_every epochs; "cosine"
    step_every: float = 10.0
    decay_rate: float = 0.1
    # "harness": :func:`lr_factor` (linear warmup from 0, the decay clock from epoch 0, cosine
    # to 0 after the warmup); "timm": timm's StepLRScheduler / CosineLRScheduler exactly as the
    # authors' build_scheduler makes them (harness/engine/schedules.py), from ``warmup_lr``
    warmup_lr: float = 0.0  # timm only: the learning rate the warmup starts from
    min_lr: float = 0.0  # timm cosine only: the floor
    scheduler: str = "harness"
    grad_clip: float = 5.0
    train_crops: int = 35  # each training image is listed this many times per epoch
    test_crops: int = 35  # crops averaged per test image
    # "grid": a uniform grid (deterministic); "random": uniform random positions drawn afresh at
    # every evaluation from the unit's seed, as the authors' test loader (fine-tuning only)
    test_crop_layout: str = "grid"
    drop_last: bool = False  # drop each epoch's last partial batch (the authors' loader does)
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
    # torch.compile the training forward pass (the loss stays eager): the whole model when
    # fine-tuning, the decoder and head (forward_head) when frozen; minutes of compilation first.
    # Off by default everywhere. On an H200 (scripts/gpu_check.sh, 2026-12-04) Swin-B fine-tuning
    # ran 2.09x faster compiled (1,790 vs 856 crops/s) after ~3.5 min of compiling, and
    # EfficientNet-Lite0 not faster (0.96x): worth --set compile=true for Swin-B runs of hours, not
    # yet a default, since no compiled run's accuracy has been compared with eager. On 2 CPU
    # threads the compiled decoder step of lifeiqa_effnet_lite0_small (batch 64) took 66 ms against
    # 45 ms eager (where the MoE dispatches sparsely; compiled it stays dense, in one graph), after
    # 30 s of compilation.
    compile: bool = False

    def __post_init__(self) -> None:
        _check_field_types(self)
        if self.mode not in ("finetune", "frozen", "zero_shot"):
            raise InvalidOptionError(f"recipe {self.name}: mode={self.mode!r}, expected "
                                     f"finetune|frozen|zero_shot")
        if self.schedule not in ("step", "cosine"):
            raise InvalidOptionError(f"recipe {self.name}: schedule={self.schedule!r}, expected "
                                     f"step|cosine")
        if self.scheduler not in SCHEDULERS:
            raise InvalidOptionError(f"recipe {self.name}: scheduler={self.scheduler!r}, expected "
                                     f"{'|'.join(SCHEDULERS)}")
        if self.scheduler == "harness" and (self.warmup_lr or self.min_lr):
            raise InvalidOptionError(f"recipe {self.name}: warmup_lr and min_lr are timm "
                                     f"scheduler arguments; set scheduler=timm (the harness "
                                     f"schedule warms up from 0 and decays to 0)")
        if self.test_crop_layout not in TEST_CROP_LAYOUTS:
            raise InvalidOptionError(f"recipe {self.name}: test_crop_layout="
                                     f"{self.test_crop_layout!r}, expected "
                                     f"{'|'.join(TEST_CROP_LAYOUTS)}")
        if self.test_crop_layout == "random" and self.mode == "frozen":
            raise InvalidOptionError(f"recipe {self.name}: test_crop_layout='random' needs "
                                     f"mode=finetune (a frozen recipe caches one fixed set of "
                                     f"test crops per image)")
        try:
            parse_policy(self.resize_policy)
        except ValueError as err:
            raise InvalidOptionError(f"recipe {self.name}: {err}") from None
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
        for name in ("warmup_epochs", "warmup_lr", "min_lr"):
            if not getattr(self, name) >= 0:
                raise InvalidOptionError(f"recipe {self.name}: {name}={getattr(self, name)!r}, "
                                         f"expected a value >= 0")
        if not (self.step_every > 0 and 0 < self.decay_rate <= 1):
            raise InvalidOptionError(f"recipe {self.name}: step_every={self.step_every!r}, "
                                     f"decay_rate={self.decay_rate!r}: expected step_every > 0 "
                                     f"and 0 < decay_rate <= 1")

    def override(self, **changes: Any) -> Recipe:
        known = [f.name for f in dataclasses.fields(self)]
        for name in changes:
            if name not in known:
                raise unknown_name("recipe field", name, known)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as recorded in a job's config; a field added after results were first
        stored is left out at the value that reproduces how runs behaved before it existed
        (:data:`_LATER_FIELDS`), so the configs of such runs still equal the stored ones."""
        return {name: value for name, value in dataclasses.asdict(self).items()
                if name not in _LATER_FIELDS or value != _LATER_FIELDS[name]}

    def with_epochs(self, epochs: int) -> Recipe:
        """The recipe over ``epochs`` epochs with its schedule's shape kept: the warmup and the
        decay interval scale with the epochs, so the learning rate traces the same curve over
        the fraction of training done (a shorter run drops the LR at the same fractions, 12/30
        and 22/30 for the authors' step recipes, from the same warmup LR to the same base)."""
        factor = epochs / self.epochs
        return self.override(epochs=epochs, warmup_epochs=self.warmup_epochs * factor,
                             step_every=self.step_every * factor)


# Fields added with the authors' exact recipes (issue 15), at their earlier implicit behaviour.
_LATER_FIELDS = {"decay_rate": 0.1, "warmup_lr": 0.0, "min_lr": 0.0, "scheduler": "harness",
                 "test_crop_layout": "grid", "drop_last": False}

# Field types as written in the annotations above (the module uses postponed annotations).
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _check_field_types(recipe: Recipe) -> None:
    """Each field holds its annotated type: overrides come from text (``--set lr=abc``), and a
    wrong type would otherwise fail every unit later instead of the command now. An int given
    for a float is stored as a float (one recorded config per value); a bool is not an int
    here, nor a float an int (``epochs=2.5``)."""
    for spec in dataclasses.fields(recipe):
        expected = _TYPES[cast(str, spec.type)]  # a string: the annotations are postponed
        value = getattr(recipe, spec.name)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(recipe, spec.name, float(value))
            continue
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise InvalidOptionError(f"recipe {recipe.name}: {spec.name}={value!r} is "
                                     f"{type(value).__name__}, expected {spec.type}")


def lr_factor(recipe: Recipe, epoch: float) -> float:
    """Learning-rate multiplier at a (fractional) epoch under ``scheduler="harness"``: linear
    warmup, then step or cosine."""
    import math

    if recipe.warmup_epochs and epoch < recipe.warmup_epochs:
        return (epoch + 1e-3) / recipe.warmup_epochs
    if recipe.schedule == "cosine":
        span = max(recipe.epochs - recipe.warmup_epochs, 1e-9)
        progress = min(1.0, (epoch - recipe.warmup_epochs) / span)
        return 0.5 * (1 + math.cos(math.pi * progress))
    return recipe.decay_rate ** int(epoch // recipe.step_every)


# The authors' configs (configs/swin/swin_*.yaml; docs/design.md section 3): batch is 4 GPUs x
# per-GPU batch; lr BASE_LR, warmup_lr WARMUP_LR (CSIQ and TID2013: equal to the base, no
# effective warmup; KADID-10k: ten times its base, so the LR falls during "warmup"); 30 epochs,
# WARMUP_EPOCHS 2, DECAY_EPOCHS 10, DECAY_RATE 0.1 (config.py's default). MIN_LR (2e-6) reaches
# only the cosine scheduler (LIVEC: 1e-6): timm's StepLRScheduler has no floor. Experts and
# depth are the presets' (lifeiqa/presets.py), from the same yaml files; KonIQ-10k's yaml says
# 2 experts, and its example launcher's --num_experts 8 (which overrides the yaml) is not
# followed: the yaml is the documented choice.
_AUTHORS_COMMON: dict[str, Any] = dict(scheduler="timm", precision="fp16", drop_last=True)
_AUTHORS: dict[str, dict[str, Any]] = {
    "live": dict(batch_size=4 * 16, train_crops=35, test_crops=35, lr=2e-5, warmup_lr=2e-7,
                 model="lifeiqa_swin_b_live"),
    "csiq": dict(batch_size=4 * 128, train_crops=35, test_crops=35, lr=2e-4, warmup_lr=2e-4,
                 model="lifeiqa_swin_b_csiq"),
    "tid2013": dict(batch_size=4 * 128, train_crops=25, test_crops=25, lr=2e-4, warmup_lr=2e-4,
                    model="lifeiqa_swin_b_tid2013"),
    "kadid10k": dict(batch_size=4 * 128, train_crops=35, test_crops=35, lr=2e-5, warmup_lr=2e-4,
                     model="lifeiqa_swin_b_kadid10k"),
    "livec": dict(batch_size=4 * 64, train_crops=50, test_crops=50, lr=3e-5, warmup_lr=2e-7,
                  schedule="cosine", min_lr=1e-6, model="lifeiqa_swin_b_livec"),
    "koniq10k": dict(batch_size=4 * 128, train_crops=40, test_crops=40, lr=2e-5, warmup_lr=2e-7,
                     resize_policy="fit:512x384", model="lifeiqa_swin_b_koniq10k"),
    "spaq": dict(batch_size=4 * 128, train_crops=40, test_crops=40, lr=2e-5, warmup_lr=2e-7,
                 resize_policy="fit:512x384", model="lifeiqa_swin_b_spaq"),
}

# The authors' image handling, for exact reproduction only (``--image-policy authors``): KonIQ-10k
# and SPAQ resized to exactly 384 wide x 512 high (torchvision's Resize((512, 384)) is height,
# width), squeezing landscape photos, and no dataset's EXIF orientation applied (PIL's
# Image.open(...).convert("RGB")).
_AUTHORS_IMAGES = {"koniq10k": "squeeze-noexif:384x512", "spaq": "squeeze-noexif:384x512"}
IMAGE_POLICIES = ("recipe", "authors")


def authors_image_policy(dataset: str) -> str:
    """The resize policy of the authors' pipeline for ``dataset`` (a synthetic counterpart,
    ``synth-<name>``, is treated as its real dataset)."""
    return _AUTHORS_IMAGES.get(dataset.removeprefix("synth-"), "native-noexif")


RECIPES: dict[str, Recipe] = {f"authors_{k}": Recipe(name=f"authors_{k}", **_AUTHORS_COMMON, **v)
                              for k, v in _AUTHORS.items()}
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
# The demo's benchmark (lifeiqa-bench demo): cpu_demo trained to convergence, on one 192 crop
# per image (the synthetic `small` set's 256x192 images hold it without upscaling; the backbone
# must take any size, as EfficientNet does); the epochs come from a measured SRCC-vs-epochs
# curve (README, "Two commands").
RECIPES["cpu_bench"] = RECIPES["cpu_demo"].override(name="cpu_bench", epochs=8, crop_size=192)


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
