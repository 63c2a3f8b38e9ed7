"""The speed report: each section's table, the machine and settings it was measured with, and
its JSON and markdown forms."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from harness.speed.machine import Machine
from harness.speed.sizes import Sizes

SECTIONS: dict[int, str] = {1: "decoder_overhead", 2: "data_path", 3: "feature_cache",
                            4: "inference", 5: "training", 6: "decoder_training",
                            7: "unit_batching", 8: "protocol_scaling", 9: "arithmetic_cost"}
# what runs without a choice of sections: sections 8 and 9 run whole protocols (~15 and ~6 min
# on 2 cores)
DEFAULT_SECTIONS = (1, 2, 3, 4, 5, 6, 7)
TITLES: dict[str, str] = {
    "decoder_overhead": "1. Decoder overhead: Life-IQA over its bare backbone",
    "data_path": "2. Data path: authors'-style per-sample pipeline vs cached batched crops",
    "feature_cache": "3. Feature cache: 10-split frozen-backbone protocol with vs without",
    "inference": "4. Inference: Life-IQA vs pyiqa topiq_nr and musiq (random weights)",
    "training": "5. Training throughput and model FLOP utilisation",
    "decoder_training": "6. Decoder training on cached features: each change, side by side",
    "unit_batching": "7. Units per loop: decoder steps one unit at a time vs several batched",
    "protocol_scaling": "8. Protocol cost against the number of splits: the gate and the demo, cold",
    "arithmetic_cost": "9. The pinned arithmetic's cost: the gate's suite cold, pinned vs native",
}

Row = dict[str, object]  # column -> a number, text, a yes/no or None (no value)


@dataclass(frozen=True)
class Table:
    """What a section measured: one row per model, metric or setting, and notes on how."""

    rows: tuple[Row, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class SectionResult:
    """A section's table and how long the section ran."""

    name: str  # a value of SECTIONS
    table: Table
    seconds: float

    @property
    def title(self) -> str:
        return TITLES[self.name]

    def to_dict(self) -> dict[str, object]:
        return {"title": self.title, "rows": list(self.table.rows), "notes": list(self.table.notes),
                "seconds": self.seconds}


@dataclass(frozen=True)
class SpeedReport:
    """The sections measured so far (in the order run), those that failed, and the settings.

    ``wall_seconds`` is None while the run is in progress (a partial report)."""

    machine: Machine
    tiny: bool
    precision: str
    compile: bool
    workers: int
    sizes: Sizes
    load_average_start: tuple[float, ...]
    load_average_end: tuple[float, ...]
    sections: tuple[SectionResult, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)  # section name -> the error
    wall_seconds: float | None = None

    def section(self, name: str) -> SectionResult:
        """The measured section ``name``; KeyError if it was not run or failed."""
        for section in self.sections:
            if section.name == name:
                return section
        raise KeyError(f"speed report: no section {name!r}; measured: "
                       f"{', '.join(s.name for s in self.sections) or 'none'}")

    def to_dict(self) -> dict[str, object]:
        """The JSON layout of ``lifeiqa-bench speed --out``."""
        report: dict[str, object] = {
            "benchmark": "lifeiqa-bench speed", "machine": self.machine.to_dict(),
            "settings": {"tiny": self.tiny, "precision": self.precision, "compile": self.compile,
                         "workers": self.workers, "sizes": asdict(self.sizes)},
            "load_average_start": list(self.load_average_start),
            "sections": {section.name: section.to_dict() for section in self.sections},
            "failed": dict(self.failed),
            "load_average_end": list(self.load_average_end)}
        if self.wall_seconds is not None:
            report["wall_seconds"] = self.wall_seconds
        return report

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_markdown(self) -> str:
        """The tables with their notes, under a header that says where they were measured."""
        from tabulate import tabulate

        info = self.machine
        lines = [f"# lifeiqa-bench speed ({'tiny' if self.tiny else 'full'} sizes)", "",
                 f"Device: {info.device}" + (f" ({info.gpu})" if info.gpu else "")
                 + f"; CPU: {info.cpu} ({info.cpu_cores} cores); torch {info.torch}, timm "
                 f"{info.timm}, pyiqa {info.pyiqa}; {info.date}.",
                 f"Load average at start/end: {self.load_average_start[0]:.1f} / "
                 f"{self.load_average_end[0]:.1f} (on {info.cpu_cores} cores; above the core "
                 "count means other processes shared the machine and the figures are noisy). "
                 f"{info.torch_threads} torch thread(s), OMP_WAIT_POLICY {info.omp_wait_policy} "
                 "(on a shared CPU, PASSIVE keeps OpenMP's spinning threads from stalling every "
                 "op).", ""]
        for section in self.sections:
            rows = [{k: format_value(v) for k, v in row.items()} for row in section.table.rows]
            lines += [f"## {section.title}", "", tabulate(rows, headers="keys", tablefmt="github"),
                      ""]
            lines += [f"- {note}" for note in section.table.notes]
            lines += [f"- section time: {section.seconds:.0f} s", ""]
        for name, message in self.failed.items():
            lines += [f"## {TITLES[name]}", "", f"FAILED: {message}", ""]
        if self.wall_seconds is not None:
            lines.append(f"Total wall time: {self.wall_seconds / 60:.1f} min.")
        return "\n".join(lines)


def format_value(value: object) -> str:
    """A table cell: three significant digits, yes/NO for targets met or missed."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "NO", None: ""}[value]
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e5:
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return f"{value:.2e}"
    return str(value)
