"""Protocols declared as data: YAML files in ``protocols/`` with a name and a version.

No protocol is a code path: a protocol file says which datasets (or pairs), how many splits or
seeds, which model variants, and whether to break results down by distortion type; the job
planner expands it. A protocol may declare datasets of one's own (``define_datasets``: name ->
a CSV of scores and its images, :mod:`harness.data.declared`) and name them in its datasets or
pairs; their relative paths are relative to the protocol file's folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, cast

import yaml

from harness.assets import asset_dir
from harness.data.declared import DatasetDeclaration, declare_datasets
from harness.errors import DataNotFoundError, InvalidOptionError, unknown_name
from harness.plan.models import LIFEIQA_KINDS, ModelRef, canonical_args, format_args
from lifeiqa.config import ABLATIONS

PROTOCOL_DIR = asset_dir("protocols")  # the repository's, or the wheel's copy
KINDS = ("splits", "cross-dataset")
BREAKDOWNS = ("none", "distortion")
# What a unit computes beyond its scores (harness/engine/analyses.py): nothing, the MoE's expert
# routing by distortion type, or the separability of backbone stages' features by type.
ANALYSES = ("none", "routing", "separability")


@dataclass(frozen=True)
class Protocol:
    name: str
    version: str
    kind: str
    description: str = ""
    splits: int = 10
    seeds: int = 3
    # units of each seeded cell run again under another seed and draw of training crops: their
    # differences measure the cell's rerun noise (harness/results/stability.py)
    noise_units: int = 0
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    datasets: tuple[str, ...] = ()
    synthetic_datasets: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()
    synthetic_pairs: tuple[tuple[str, str], ...] = ()
    variants: tuple[str, ...] = ("full",)
    baselines: tuple[str, ...] = ()  # registry model rows (harness.plan.registry), same splits
    train_fractions: tuple[float, ...] = (1.0,)
    breakdown: str = "none"
    analysis: str = "none"
    define_datasets: tuple[DatasetDeclaration, ...] = ()  # datasets of one's own, by declaration
    source: str = ""
    extra: dict = field(default_factory=dict)

    def targets(self, synthetic: bool) -> list[tuple[str, str]]:
        """(train, test) dataset pairs; for splits both are the same dataset."""
        if self.kind == "splits":
            names = self.synthetic_datasets if synthetic else self.datasets
            return [(d, d) for d in names]
        return [cast("tuple[str, str]", tuple(p))
                for p in (self.synthetic_pairs if synthetic else self.pairs)]


def _fail(source: str, message: str) -> NoReturn:
    raise InvalidOptionError(f"protocol {source}: {message}")


def _row(source: str, role: str, row: object) -> tuple[str, str]:
    """A protocol's variant or baseline row in canonical form (``name`` or ``name(key=value,...)``
    with the keys sorted; the mapping form ``{name: NAME, args: {...}}`` reads as the same) and
    its model kind."""
    if isinstance(row, dict):
        unknown = sorted(set(row) - {"name", "args"})
        if "name" not in row or unknown or not isinstance(row.get("args", {}), dict):
            _fail(source, f"{role} {row!r}: expected a name, NAME(key=value, ...) or a mapping "
                          f"{{name: NAME, args: {{key: value}}}}")
        row = str(row["name"]) + format_args(canonical_args(row.get("args", {})))
    try:
        model = ModelRef.parse("", str(row))
    except InvalidOptionError as err:  # an unknown name, bad arguments, a pyiqa name pyiqa lacks
        _fail(source, f"{role} {row!r}: {err}")
    return model.variant + format_args(model.args), model.kind


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _is_count(least: int) -> Callable[[object], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_fraction(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1


def _is_list(item: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: isinstance(value, list) and all(item(v) for v in value)


def _is_pair(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_is_text(v) for v in value)


def _is_row(value: object) -> bool:
    return _is_text(value) or isinstance(value, dict)


# Each key a protocol file may have: what its value must be, and how an error says so. Checked
# when the file is read, so a wrong value is named by file and key, never met later as a crash
# or a silently different plan (a string where a list belongs would be read letter by letter).
FIELD_RULES = {
    "name": (_is_text, "a non-empty string"),
    "version": (lambda v: isinstance(v, str | int | float) and not isinstance(v, bool),
                "a version such as 1.0"),
    "kind": (lambda v: v in KINDS, f"one of {list(KINDS)}"),
    "description": (lambda v: isinstance(v, str), "a string"),
    "splits": (_is_count(1), "a whole number >= 1"),
    "seeds": (_is_count(1), "a whole number >= 1"),
    "noise_units": (_is_count(0), "a whole number >= 0"),
    "test_fraction": (_is_fraction, "a number in (0, 1)"),
    "validation_fraction": (lambda v: v == 0 or _is_fraction(v), "a number in [0, 1)"),
    "datasets": (_is_list(_is_text), "a list of dataset names"),
    "synthetic_datasets": (_is_list(_is_text), "a list of dataset names"),
    "pairs": (_is_list(_is_pair), "a list of [source, target] dataset names"),
    "synthetic_pairs": (_is_list(_is_pair), "a list of [source, target] dataset names"),
    "variants": (_is_list(_is_row), "a list of model rows"),
    "baselines": (_is_list(_is_row), "a list of model rows"),
    "train_fractions": (_is_list(lambda v: isinstance(v, int | float) and not isinstance(v, bool)
                                 and 0 < v <= 1), "a list of numbers in (0, 1]"),
    "breakdown": (lambda v: v in BREAKDOWNS, f"one of {list(BREAKDOWNS)}"),
    "analysis": (lambda v: v in ANALYSES, f"one of {list(ANALYSES)}"),
    "define_datasets": (lambda v: isinstance(v, dict), "a mapping of dataset name -> declaration"),
}


def parse_protocol(data: object, source: str) -> Protocol:
    if not isinstance(data, dict):
        _fail(source, "expected a YAML mapping")
    for key in ("name", "version", "kind"):
        if key not in data:
            _fail(source, f"missing required key {key!r}")
    unknown = sorted(set(data) - set(FIELD_RULES))
    if unknown:
        _fail(source, f"unknown key(s) {unknown}; known: {sorted(FIELD_RULES)}")
    for key, value in data.items():
        valid, expected = FIELD_RULES[key]
        if not valid(value):
            _fail(source, f"{key}: {value!r}: expected {expected}")
    # the rules a job's ModelRef applies, so a protocol that loads plans valid models
    rows = {}
    for key in ("variants", "baselines"):
        rows[key] = [_row(source, key[:-1], row) for row in data.get(key, [])]
    for variant, kind in rows["variants"]:
        if kind not in LIFEIQA_KINDS:
            _fail(source, f"variant {variant!r} is a registry model: list it under baselines "
                          f"(variants are full and {sorted(ABLATIONS)})")
    for name, kind in rows["baselines"]:
        if kind in LIFEIQA_KINDS:
            _fail(source, f"baseline {name!r} is a Life-IQA variant: list it under variants "
                          f"(baselines are registry models: lifeiqa-bench list models)")
    values = dict(data)
    values["version"] = str(values["version"])
    for key in ("datasets", "synthetic_datasets"):
        if key in values:
            values[key] = tuple(values[key])
    for key in ("variants", "baselines"):
        if key in values:
            values[key] = tuple(row for row, _ in rows[key])
    for key in ("pairs", "synthetic_pairs"):
        if key in values:
            values[key] = tuple(tuple(p) for p in values[key])
    if "train_fractions" in values:
        values["train_fractions"] = tuple(float(f) for f in values["train_fractions"])
    if "define_datasets" in values:
        values["define_datasets"] = declare_datasets(values["define_datasets"], Path(source).parent,
                                                     f"protocol {source}: define_datasets")
    return Protocol(**values, source=source)


def list_protocols(directory: Path = PROTOCOL_DIR) -> list[str]:
    """The protocols shipped in ``directory``; none there is an installation that lost its
    data files, said as such (an empty list would read as "no protocols exist")."""
    names = sorted(p.stem for p in directory.glob("*.yaml"))
    if not names:
        raise DataNotFoundError(f"no protocol files (*.yaml) in {directory}: this installation "
                                f"lacks the protocols it ships with; reinstall lifeiqa (a "
                                f"protocol of your own is given as a path to its YAML file)")
    return names


def load_protocol(name_or_path: str, directory: Path = PROTOCOL_DIR) -> Protocol:
    """A protocol by name (``protocols/<name>.yaml``) or by path to a YAML file."""
    path = Path(name_or_path)
    by_name = not path.suffix
    if by_name:
        path = directory / f"{name_or_path}.yaml"
    if not path.is_file():
        if not by_name:
            raise DataNotFoundError(f"protocol file {path} not found")
        raise unknown_name("protocol", name_or_path, list_protocols(directory),
                           f"(files in {directory}), or a path to a protocol YAML file")
    return parse_protocol(yaml.safe_load(path.read_text()), str(path))
