"""The speed benchmark: how fast the harness runs its protocols, measured side by side.

Nine sections, each a ratio or a rate from one run on one device, the compared variants timed
in alternation (warmup first, then the median of several repeats, synchronising the device):

1. decoder overhead (:mod:`.decoder`): Life-IQA forward and forward+backward over its bare
   backbone's;
2. data path (:mod:`.datapath`): the authors'-style pipeline (PIL decode, crop, flip, normalise
   per sample, each image listed PATCH_NUM times, a torch DataLoader) against crops cut from the
   decoded cache;
3. feature cache (:mod:`.cache`): a 10-split frozen-backbone protocol with the feature cache
   against running the frozen backbone on every crop every epoch, and how far their predictions
   differ;
4. inference (:mod:`.inference`): seconds per image of Life-IQA against pyiqa's topiq_nr and
   musiq (random weights, built without downloads);
5. training (:mod:`.training`): images/s through ``train_finetune``, the epoch against the model
   steps alone, and on a GPU the model FLOP utilisation (:mod:`.flops`);
6. decoder training (:mod:`.decoder_training`): one step of the decoder and head on cached
   features as first written and with each change that made it leaner, with its FLOPs;
7. units per loop (:mod:`.unit_batching`): the decoder steps of 1, 2, 5 and 10 units one at a
   time (as the executors train them) against batched with ``torch.func.vmap``, in FLOP/s;
8. protocol scaling (:mod:`.scaling`): the gate's suite and the demo run cold from the command
   line at several split counts, their wall times and what is fixed and what each split adds
   (not run by default: it takes whole protocol runs).
9. arithmetic cost (:mod:`.arithmetic`): the gate's suite run cold under the pinned CPU
   arithmetic and under each library's own choice, alternating (not run by default either).

Everything is generated in a temporary folder (images from :mod:`harness.data.synth.content`, cold
caches), random-initialised or offline weights only: no network. ``run_speed(SpeedOptions(...))``
returns a :class:`SpeedReport`; progress goes to this package's logger.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from harness.data.cache import DecodedImageCache
from harness.device import resolve_device
from harness.engine.batching import default_workers
from harness.errors import InvalidOptionError
from harness.plan.recipes import Recipe
from harness.speed.arithmetic import arithmetic_cost
from harness.speed.cache import feature_cache
from harness.speed.datapath import data_path
from harness.speed.decoder import decoder_overhead
from harness.speed.decoder_training import decoder_training
from harness.speed.inference import inference
from harness.speed.machine import describe_machine
from harness.speed.report import DEFAULT_SECTIONS, SECTIONS, TITLES, SectionResult, SpeedReport, Table
from harness.speed.scaling import protocol_scaling
from harness.speed.sizes import Bench, sizes_for, write_images
from harness.speed.training import training
from harness.speed.unit_batching import unit_batching

__all__ = ["DEFAULT_SECTIONS", "PRECISIONS", "SECTIONS", "TITLES", "SectionResult",
           "SpeedOptions", "SpeedReport", "Table", "run_speed"]

logger = logging.getLogger(__name__)

PRECISIONS = ("bf16", "fp16", "fp32")
RUNNERS: dict[str, Callable[[Bench], Table]] = {
    "decoder_overhead": decoder_overhead, "data_path": data_path, "feature_cache": feature_cache,
    "inference": inference, "training": training, "decoder_training": decoder_training,
    "unit_batching": unit_batching, "protocol_scaling": protocol_scaling,
    "arithmetic_cost": arithmetic_cost}


@dataclass(frozen=True)
class SpeedOptions:
    """What :func:`run_speed` measures, and where.

    ``sections``: numbers from :data:`SECTIONS`, run in this order (default
    :data:`DEFAULT_SECTIONS`); ``device``: ``auto``, a torch
    device name (``cpu``, ``cuda``, ``cuda:1``, ``mps``) or a ``torch.device``; ``tiny``: the
    smallest models and a handful of images (a quick check, figures not meaningful);
    ``precision``: the autocast precision on CUDA (CPU runs fp32); ``compile``: torch.compile the
    training model; ``workers``: crop-cutting threads and authors'-style loader processes (None:
    4 on a GPU, 2 on CPU)."""

    sections: tuple[int, ...] = DEFAULT_SECTIONS
    device: str | torch.device = "auto"
    tiny: bool = False
    precision: str = "bf16"
    compile: bool = False
    workers: int | None = None

    def __post_init__(self) -> None:
        known = ", ".join(f"{number} {name}" for number, name in SECTIONS.items())
        sections: object = self.sections  # as the caller gave it, which may be anything
        if isinstance(sections, str) or not hasattr(sections, "__iter__"):
            raise InvalidOptionError(f"SpeedOptions.sections={self.sections!r}: expected a "
                                     f"sequence of section numbers ({known})")
        object.__setattr__(self, "sections", tuple(self.sections))
        unknown = [s for s in self.sections
                   if not isinstance(s, int) or isinstance(s, bool) or s not in SECTIONS]
        if unknown or not self.sections:
            raise InvalidOptionError(
                f"SpeedOptions.sections={self.sections!r}: "
                + (f"unknown section(s) {', '.join(map(repr, unknown))}" if unknown else "empty")
                + f"; expected one or more of {known}")
        repeated = sorted({s for s in self.sections if self.sections.count(s) > 1})
        if repeated:
            raise InvalidOptionError(f"SpeedOptions.sections={self.sections!r}: section(s) "
                                     f"{', '.join(map(str, repeated))} given more than once; "
                                     "expected each at most once")
        if not (isinstance(self.device, torch.device) or _is_device_name(self.device)):
            raise InvalidOptionError(
                f"SpeedOptions.device={self.device!r}: expected 'auto', a torch device name "
                "(cpu, cuda, cuda:1, mps) or a torch.device")
        for name in ("tiny", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidOptionError(f"SpeedOptions.{name}={getattr(self, name)!r}: expected "
                                         "True or False")
        if self.precision not in PRECISIONS:
            raise InvalidOptionError(f"SpeedOptions.precision={self.precision!r}: expected one of "
                                     f"{', '.join(PRECISIONS)}")
        if self.workers is not None and (isinstance(self.workers, bool)
                                         or not isinstance(self.workers, int) or self.workers < 0):
            raise InvalidOptionError(f"SpeedOptions.workers={self.workers!r}: expected None "
                                     "(the device's default) or a whole number, 0 or more")


def _is_device_name(name: object) -> bool:
    if name == "auto":
        return True
    try:
        torch.device(name)  # type: ignore[call-overload]  # any object: torch raises for one it refuses
    except (RuntimeError, TypeError):
        return False
    return isinstance(name, str)


def run_speed(options: SpeedOptions,
              on_section: Callable[[SpeedReport], None] | None = None) -> SpeedReport:
    """Run the chosen sections on generated images in a temporary folder, and return what they
    measured. A section that raises is recorded in the report's ``failed`` and the others still
    run; ``on_section`` receives the report so far after each section that completes (so that
    an interrupted run keeps what it measured)."""
    device = resolve_device(str(options.device))
    sizes = sizes_for(device, options.tiny)
    workers = default_workers(device) if options.workers is None else options.workers
    if device.type == "cpu":
        workers = max(workers, min(2, os.cpu_count() or 1))  # the authors' loader needs some
    machine = describe_machine(device)
    load = tuple(os.getloadavg())
    report = SpeedReport(machine, options.tiny, options.precision, options.compile, workers, sizes,
                         load_average_start=load, load_average_end=load)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lifeiqa-speed-") as tmp:
        folder = Path(tmp)
        logger.info("speed: %s (%s), %swriting %d test images", device, machine.processor,
                    "tiny sizes, " if options.tiny else "", sizes.image_count)
        images = write_images(folder / "images", sizes.image_count, sizes.image_size)
        recipe = Recipe(name="speed", precision=options.precision, compile=options.compile)
        bench = Bench(device, sizes, recipe, workers, folder, images,
                      DecodedImageCache(folder / "decoded"))
        for number in options.sections:
            name = SECTIONS[number]
            logger.info("running %s ...", TITLES[name])
            start = time.perf_counter()
            try:
                table = RUNNERS[name](bench)
            except Exception as err:  # one section's failure must not lose the others' figures
                message = f"{type(err).__name__}: {err}"
                logger.error("%s FAILED: %s", TITLES[name], message)
                report = replace(report, failed={**report.failed, name: message})
                continue
            section = SectionResult(name, table, time.perf_counter() - start)
            report = replace(report, sections=(*report.sections, section),
                             load_average_end=tuple(os.getloadavg()))
            if on_section:
                on_section(report)
    return replace(report, load_average_end=tuple(os.getloadavg()),
                   wall_seconds=time.perf_counter() - started)
