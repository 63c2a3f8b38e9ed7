"""Datasets of one's own, declared as data: a CSV of scores and a folder of images.

A declaration names the dataset and says what a CSV cannot: which of its columns hold the image
path, the score, the content group and the distortion type, and the score's name, range and
direction. It is given in a protocol (``define_datasets:``), on the command line
(``--define-dataset NAME=...``) or through the API (``define_datasets={NAME: ...}``), in any of
three forms, all read by :func:`declare_dataset`:

* a mapping (YAML, or a dict); relative paths are relative to the declaring file's folder::

      csv: scores.csv         # required
      images: imgs            # the folder the path column is relative to; default: the CSV's
      range: [1, 5]           # required: the score's low and high ends
      better: higher          # required: higher or lower
      path: file              # the CSV's column names (defaults: path, mos, ref, distortion;
      score: quality          #   ref and distortion are optional)
      group: reference        # content group: keeps splits content-disjoint
      distortion: type        # distortion type: per-distortion tables
      score_name: MOS         # default: MOS when higher is better, else DMOS

* one line, ``scores.csv,images=imgs,range=1:5,better=higher,score=quality`` (the first item
  is the CSV, or ``csv=...``; paths relative to the current folder; no comma inside a value);
* the path of a YAML file holding the mapping (``my_set.yaml``).

A declaration is a frozen, JSON-serialisable value: it travels inside
:class:`~harness.data.sources.DataSources` to pool workers (``jobs.json``) and Slurm tasks
(pickled), so every process reads the same scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from harness.data.custom import DEFAULT_COLUMNS, load_custom_csv
from harness.data.layout import DatasetLayoutError
from harness.data.records import SYNTH_PREFIX, Dataset, ScoreScale
from harness.data.registry import find_dataset_spec
from harness.errors import DataNotFoundError, DatasetError

KEYS = ("csv", "images", "range", "better", *DEFAULT_COLUMNS, "score_name")
REQUIRED = {"csv": "the CSV of scores", "range": "the score's [low, high]",
            "better": "higher or lower: which way the score is better"}
DIRECTIONS = ("higher", "lower")
# a name becomes a results folder and a table column: keep it a plain word
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


@dataclass(frozen=True)
class DatasetDeclaration:
    """A CSV of scores and its image folder (absolute paths), the score's scale, the CSV's
    column names for the roles of :data:`~harness.data.custom.DEFAULT_COLUMNS` (None: the
    default name), and where it was declared (``origin``, which messages and results name)."""

    name: str
    csv: str
    images: str
    low: float
    high: float
    higher_is_better: bool
    score_name: str = ""  # "" -> MOS when higher is better, else DMOS
    path_column: str | None = None
    score_column: str | None = None
    group_column: str | None = None
    distortion_column: str | None = None
    origin: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name) \
                or "__to__" in self.name:  # "__to__" joins the two names of a transfer pair
            self._fail(f"name {self.name!r}: expected letters, digits and _ . + - (starting with "
                       f"a letter or digit)")
        if self.name.lower().startswith(SYNTH_PREFIX):
            self._fail(f"name {self.name!r}: names starting with {SYNTH_PREFIX!r} are the "
                       f"synthetic sets'")
        shadowed = find_dataset_spec(self.name)
        if shadowed is not None:
            whose = f"plug-in {shadowed.plugin.label}'s" if shadowed.plugin else "built-in"
            self._fail(f"name {self.name!r} would shadow the {whose} dataset {shadowed.name!r} "
                       f"({shadowed.title}); choose another name")
        for key in ("csv", "images"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key).strip():
                self._fail(f"{key} {getattr(self, key)!r}: expected a path")
        for key in ("low", "high"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                self._fail(f"range {key} {value!r}: expected a finite number")
            object.__setattr__(self, key, float(value))
        if self.low >= self.high:
            self._fail(f"range [{self.low:g}, {self.high:g}]: expected low < high")
        if not isinstance(self.higher_is_better, bool):
            self._fail(f"higher_is_better {self.higher_is_better!r}: expected True or False")
        if not isinstance(self.score_name, str):
            self._fail(f"score_name {self.score_name!r}: expected a name such as MOS or DMOS")
        if not self.score_name.strip():
            object.__setattr__(self, "score_name", "MOS" if self.higher_is_better else "DMOS")
        for role in DEFAULT_COLUMNS:
            column = getattr(self, f"{role}_column")
            if column is not None and (not isinstance(column, str) or not column.strip()):
                self._fail(f"{role} column {column!r}: expected the name of a column of the CSV")

    def _fail(self, message: str) -> NoReturn:
        raise DatasetError(f"{self.where}: {message}")

    @property
    def where(self) -> str:
        """Where the declaration was made, for messages."""
        return self.origin or f"dataset {self.name!r}"

    @property
    def scale(self) -> ScoreScale:
        return ScoreScale(self.score_name, self.low, self.high, self.higher_is_better)

    def columns(self) -> dict[str, str]:
        """Role -> the CSV's column name, for the roles the declaration names."""
        named = {role: getattr(self, f"{role}_column") for role in DEFAULT_COLUMNS}
        return {role: column for role, column in named.items() if column is not None}

    def load(self) -> Dataset:
        """The dataset, read without opening an image (bad rows become ``Dataset.problems``);
        a missing CSV or image folder, or a named column the CSV lacks, raises
        :class:`~harness.data.layout.DatasetLayoutError` naming the declaration."""
        try:
            return load_custom_csv(self.csv, self.scale, self.images, self.name, self.columns())
        except DatasetLayoutError as err:
            raise DatasetLayoutError(f"{self.where}: {err}") from None

    def csv_sha256(self) -> str:
        """The SHA-256 of the CSV's bytes: which scores a unit was trained and tested on."""
        return hashlib.sha256(Path(self.csv).read_bytes()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """What a result records: the CSV and the SHA-256 of its bytes (exactly which scores),
        the columns read, the scale and where the dataset was declared."""
        return {"csv": self.csv, "csv_sha256": self.csv_sha256(), "images": self.images,
                "columns": {**DEFAULT_COLUMNS, **self.columns()},
                "scale": {"name": self.score_name, "low": self.low, "high": self.high,
                          "higher_is_better": self.higher_is_better},
                "declared_by": self.origin}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetDeclaration:
        """The declaration :meth:`to_dict` wrote (validated again)."""
        return cls(**data)


def declare_dataset(name: str, value: DatasetDeclaration | Mapping[str, Any] | str | Path,
                    base: str | Path | None = None, origin: str = "") -> DatasetDeclaration:
    """Dataset ``name`` as ``value`` declares it: a declaration, a mapping of :data:`KEYS`, a
    one-line declaration, or the path of a YAML file holding a mapping. ``base`` (default: the
    current folder) is what relative paths are relative to (a YAML file's: its folder);
    ``origin`` says where the declaration was made, in messages and results."""
    origin = origin or f"dataset {name!r}"
    if isinstance(value, DatasetDeclaration):
        if value.name != name:
            raise DatasetError(f"{origin}: the declaration given is of dataset {value.name!r}")
        return value
    base = Path(base if base is not None else Path.cwd()).expanduser()
    if isinstance(value, Mapping):
        return _from_mapping(name, value, base, origin)
    if isinstance(value, str | Path):
        text = str(value).strip()
        if "," not in text and text.lower().endswith((".yaml", ".yml")):
            return load_declaration_file(base / Path(text).expanduser(), name, origin)
        return _from_mapping(name, parse_one_line(text, origin), base, origin)
    raise DatasetError(f"{origin}: expected a mapping of {', '.join(KEYS)}, a one-line "
                       f"declaration or a YAML file, found {type(value).__name__}")


def declare_datasets(data: object, base: str | Path, origin: str) -> tuple[DatasetDeclaration, ...]:
    """A ``define_datasets`` mapping (name -> declaration), as a protocol holds it."""
    if not isinstance(data, Mapping):
        raise DatasetError(f"{origin}: expected a mapping of dataset name -> declaration, found "
                           f"{type(data).__name__}")
    return tuple(declare_dataset(str(name), value, base, f"{origin}.{name}")
                 for name, value in data.items())


def load_declaration_file(path: str | Path, name: str | None = None,
                          origin: str = "") -> DatasetDeclaration:
    """The declaration in YAML file ``path`` (a mapping of :data:`KEYS`, paths relative to the
    file's folder), named ``name`` (default: the file's stem)."""
    path = Path(path).expanduser().resolve()
    where = f"{origin} ({path})" if origin else str(path)
    if not path.is_file():
        raise DataNotFoundError(f"{where}: declaration file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        reason = (str(err).strip().splitlines() or [""])[0]
        raise DatasetError(f"{where}: not a YAML file ({reason})") from None
    return _from_mapping(name or path.stem, data, path.parent, where)


def parse_one_line(text: str, origin: str) -> dict[str, str]:
    """``CSV,KEY=VALUE,...`` (or ``csv=CSV,...``) as a mapping of :data:`KEYS`."""
    data: dict[str, str] = {}
    for index, item in enumerate(text.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            if index:
                raise DatasetError(f"{origin}: {item.strip()!r}: expected KEY=VALUE after the CSV "
                                   f"(keys: {', '.join(KEYS)})")
            key, value = "csv", item
        key = key.strip()
        if key in data:
            raise DatasetError(f"{origin}: {key!r} given twice")
        data[key] = value.strip()
    return data


def _from_mapping(name: str, data: object, base: Path, origin: str) -> DatasetDeclaration:
    def fail(message: str) -> NoReturn:
        raise DatasetError(f"{origin}: {message}")

    if not isinstance(data, Mapping):
        fail(f"expected a mapping of {', '.join(KEYS)}, found {type(data).__name__}")
    unknown = sorted(str(key) for key in data if key not in KEYS)
    if unknown:
        fail(f"unknown key(s) {unknown}; known: {', '.join(KEYS)}")
    missing = [f"{key} ({meaning})" for key, meaning in REQUIRED.items() if key not in data]
    if missing:
        fail(f"missing {'; '.join(missing)}")
    better = str(data["better"]).strip().lower()
    if better not in DIRECTIONS:
        fail(f"better {data['better']!r}: expected higher or lower (which way the score is better)")
    low, high = _range(data["range"], fail)
    csv = _path(base, data["csv"], "csv", fail)
    images = csv.parent if data.get("images") in (None, "") else \
        _path(base, data["images"], "images", fail)
    columns = {f"{role}_column": str(data[role]).strip() for role in DEFAULT_COLUMNS
               if data.get(role) not in (None, "")}
    return DatasetDeclaration(name=name, csv=str(csv), images=str(images), low=low, high=high,
                              higher_is_better=better == "higher",
                              score_name=str(data.get("score_name") or ""), origin=origin,
                              **columns)


def _range(value: object, fail: Callable[[str], NoReturn]) -> tuple[float, float]:
    ends = value.split(":") if isinstance(value, str) else value
    if not isinstance(ends, list | tuple) or len(ends) != 2:
        fail(f"range {value!r}: expected [low, high] (on the command line low:high)")
    try:
        if any(isinstance(end, bool) for end in ends):
            raise ValueError
        return float(ends[0]), float(ends[1])
    except (TypeError, ValueError):
        fail(f"range {value!r}: expected two numbers, [low, high] (on the command line low:high)")


def _path(base: Path, value: object, key: str, fail: Callable[[str], NoReturn]) -> Path:
    if not isinstance(value, str | Path) or not str(value).strip():
        fail(f"{key} {value!r}: expected a path")
    return (base / Path(str(value).strip()).expanduser()).resolve()
