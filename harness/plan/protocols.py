"""Protocols declared as data: YAML files in ``protocols/`` with a name and a version.

No protocol is a code path: a protocol file says which datasets (or pairs), how many splits or
seeds, which model variants, and whether to break results down by distortion type; the job
planner expands it. A protocol may declare datasets of one's own (``define_datasets``: name ->
a CSV of scores and its images, :mod:`harness.data.declared`) and name them in its datasets or
pairs; their relative paths are relative to the protocol file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.data.declared import DatasetDeclaration, declare_datasets
from harness.errors import DataNotFoundError, InvalidOptionError, unknown_name
from harness.plan.models import LIFEIQA_KINDS, ModelRef, canonical_args, format_args
from lifeiqa.config import ABLATIONS

PROTOCOL_DIR = Path(__file__).resolve().parents[2] / "protocols"
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
        return [tuple(p) for p in (self.synthetic_pairs if synthetic else self.pairs)]


def _fail(source: str, message: str) -> None:
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


def parse_protocol(data: dict, source: str) -> Protocol:
    if not isinstance(data, dict):
        _fail(source, "expected a YAML mapping")
    for key in ("name", "version", "kind"):
        if key not in data:
            _fail(source, f"missing required key {key!r}")
    known = set(Protocol.__dataclass_fields__) - {"source", "extra"}
    unknown = sorted(set(data) - known)
    if unknown:
        _fail(source, f"unknown key(s) {unknown}; known: {sorted(known)}")
    if data["kind"] not in KINDS:
        _fail(source, f"kind {data['kind']!r}: expected one of {KINDS}")
    if data.get("breakdown", "none") not in BREAKDOWNS:
        _fail(source, f"breakdown {data['breakdown']!r}: expected one of {BREAKDOWNS}")
    if data.get("analysis", "none") not in ANALYSES:
        _fail(source, f"analysis {data['analysis']!r}: expected one of {ANALYSES}")
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
    for key, least in (("splits", 1), ("seeds", 1), ("noise_units", 0)):
        value = data.get(key, least)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            _fail(source, f"{key}: {value!r}: expected a whole number >= {least}")
    for key in ("test_fraction", "validation_fraction"):
        value = data.get(key, 0.2)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            _fail(source, f"{key}: {value!r}: expected a number in (0, 1)")
    for fraction in data.get("train_fractions", [1.0]):
        if not 0 < float(fraction) <= 1:
            _fail(source, f"train fraction {fraction}: expected a value in (0, 1]")
    for key in ("pairs", "synthetic_pairs"):
        for pair in data.get(key, []):
            if not (isinstance(pair, list | tuple) and len(pair) == 2):
                _fail(source, f"{key}: each entry must be [source, target], found {pair!r}")
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
    return sorted(p.stem for p in directory.glob("*.yaml"))


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
