"""What every loader shares: turning metadata rows into records or Problems, finding image
files whatever their letter case, and reading the metadata formats the releases use (MATLAB
``.mat``, Excel ``.xlsx`` and whitespace-separated text; CSV is ``layout.read_csv``).

A row's location is ``<file>:<row>``, the file relative to the dataset root: for text files the
line number (a header is line 1), for spreadsheets the sheet's row number, for ``.mat`` files
the 1-based entry index.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np

from harness.data.custom import parse_score as _parse_score
from harness.data.layout import DatasetLayoutError, find_child, image_id, resolve_inside
from harness.data.records import Dataset, ImageRecord, Problem
from harness.data.specs import DatasetSpec


class BadRow(ValueError):
    """A metadata row that cannot become a record; the message is the Problem's reason."""


class Meta(NamedTuple):
    """What a file name tells about an image: content group, distortion type and level."""

    group: str | None = None  # None: the image is its own group (authentic datasets)
    distortion: str | None = None
    level: int | None = None


# (image name as the metadata gives it, reference name if the metadata has one) -> Meta
Describe = Callable[[str, str | None], Meta]


def parse_score(value: object) -> float:
    """``value`` as a finite float; raises BadRow saying why it is not one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadRow("missing score")
    if isinstance(value, np.generic):  # from .mat files: report 'nan', not 'np.float64(nan)'
        value = value.item()
    score, reason = _parse_score(value.strip() if isinstance(value, str) else value)
    if reason is not None:
        raise BadRow(reason)
    return score  # type: ignore[return-value]  # a float whenever there is no reason


def parse_int(value: object, what: str) -> int:
    """An integer from text or a number that holds one (spreadsheets store 3 as 3.0)."""
    try:
        number = float(value)  # type: ignore[arg-type]  # any object: TypeError is caught
    except (TypeError, ValueError):
        raise BadRow(f"{what} {value!r} is not an integer") from None
    if not number.is_integer():
        raise BadRow(f"{what} {value!r} is not an integer")
    return int(number)


def type_name(types: tuple[str, ...], code: int, name: str) -> str:
    """The distortion type with 1-based ``code``; BadRow for a code the dataset lacks."""
    if not 1 <= code <= len(types):
        raise BadRow(f"{name}: unknown distortion type code {code:02d} (expected 01-{len(types):02d})")
    return types[code - 1]


def cell_text(value: object) -> str:
    """A metadata cell as text: spreadsheets store CSIQ's image ``1600`` as 1600.0, MATLAB
    cells wrap each name in an array; an empty cell gives ''."""
    while isinstance(value, np.ndarray):
        if value.size != 1:
            raise BadRow(f"expected one value, found {value.size}")
        value = value.flat[0]
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class _CaseIndex:
    """Maps a path to the spelling on disk, one cached directory listing per folder.

    Release archives differ in letter case (TID2013 mixes ``i01_01_1.bmp`` and ``I01_01_1.bmp``),
    and listing a folder once is cheaper than probing ten thousand names.
    """

    def __init__(self) -> None:
        self._folders: dict[Path, tuple[frozenset[str], dict[str, str]]] = {}

    def match(self, start: Path, relative: PurePosixPath) -> Path:
        current = start
        for part in relative.parts:
            names, lowered = self._listing(current)
            current = current / (part if part in names else lowered.get(part.lower(), part))
        return current

    def _listing(self, folder: Path) -> tuple[frozenset[str], dict[str, str]]:
        if folder not in self._folders:
            try:
                names = frozenset(os.listdir(folder))
            except OSError:  # missing folder: names stay as given, validation reports them
                names = frozenset()
            self._folders[folder] = (names, {n.lower(): n for n in sorted(names)})
        return self._folders[folder]


class RecordCollector:
    """Builds one Dataset row by row: each metadata row becomes a record or a Problem."""

    def __init__(self, spec: DatasetSpec, root: Path, layout: str,
                 describe: Describe | None = None) -> None:
        self.spec = spec
        self.root = Path(root).expanduser().resolve()
        self.layout = layout
        self.describe = describe
        self.records: list[ImageRecord] = []
        self.problems: list[Problem] = []
        self._first_seen: dict[str, str] = {}
        self._case = _CaseIndex()

    def where(self, path: Path, row: int) -> str:
        """The ``file:row`` location of a metadata row."""
        return f"{image_id(self.root, path)}:{row}"

    def find(self, name: str) -> Path:
        """A metadata file under the root, any letter case; DatasetLayoutError if absent."""
        # required=True (the default) raises rather than return None
        return find_child(self.root, name)  # type: ignore[return-value]

    def folder(self, *candidates: str) -> str:
        """The first candidate image folder present (as spelled on disk), else the first one.

        A missing folder is not an error here: validation reports the missing files.
        """
        for candidate in candidates:
            found = find_child(self.root, candidate, required=False)
            if found is not None and found.is_dir():
                return image_id(self.root, found)
        return candidates[0]

    @contextmanager
    def row(self, location: str) -> Iterator[None]:
        """Run the body for one row; a BadRow raised in it becomes a Problem at ``location``."""
        try:
            yield
        except BadRow as error:
            self.problems.append(Problem(location, str(error)))

    def add(self, location: str, folder: str, name: str, score: object,
            ref: str | None = None) -> None:
        """Record image ``folder/name`` with ``score``, or a Problem if any part is unusable."""
        with self.row(location):
            self.records.append(self._record(location, folder, name.strip(), score, ref))

    def add_rows(self, path: Path, folder: str, rows: Iterable[tuple[int, Sequence[object]]],
                 name: int, score: int, ref: int | None = None, skip_first: int = 0) -> None:
        """One image per row of ``path``: name, score and reference at the given positions.

        The first ``skip_first`` rows are not images of the benchmark (LIVEC's training images).
        """
        for index, (number, row) in enumerate(rows):
            if index < skip_first:
                continue
            location = self.where(path, number)
            with self.row(location):
                self.add(location, folder, cell_text(field(row, name)), field(row, score),
                         ref=None if ref is None else cell_text(field(row, ref)))

    def _record(self, location: str, folder: str, name: str, score: object,
                ref: str | None) -> ImageRecord:
        if not name:
            raise BadRow("empty image name")
        path, problem = resolve_inside(self.root, name, location, folder)
        if problem is not None:
            raise BadRow(problem.reason)
        assert path is not None  # resolve_inside gives a path whenever it finds no problem
        path = self._case.match(self.root, PurePosixPath(image_id(self.root, path)))
        rel = image_id(self.root, path)
        meta = self.describe(name, ref) if self.describe else Meta()
        value = parse_score(score)
        if rel in self._first_seen:
            raise BadRow(f"{rel} is listed again (first at {self._first_seen[rel]})")
        self._first_seen[rel] = location
        return ImageRecord(image_id=rel, path=path, score=value, group=meta.group or rel,
                           distortion=meta.distortion, level=meta.level, source=location)

    def dataset(self) -> Dataset:
        return Dataset(name=self.spec.name, root=self.root, records=self.records,
                       scale=self.spec.scale, kind=self.spec.kind, layout=self.layout,
                       distortion_types=self.spec.distortion_types, problems=self.problems)


# --- metadata readers ------------------------------------------------------------------------


def column(header: list[str], name: str, path: Path) -> int:
    """Position of column ``name`` (ignoring case and spaces); DatasetLayoutError if absent."""
    wanted = name.strip().lower()
    for position, found in enumerate(header):
        if str(found).strip().lower() == wanted:
            return position
    raise DatasetLayoutError(f"{path}: no column {name!r}; columns are {header}")


def field(row: Sequence[object], position: int) -> object:
    """``row[position]``, or BadRow when the row is too short."""
    if position >= len(row):
        raise BadRow(f"row has {len(row)} field(s), expected at least {position + 1}")
    return row[position]


def read_words(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The (line, whitespace-separated fields) of each non-blank line of a UTF-8 text file;
    lines end at line breaks only (as editors count them), not at form feeds and the like."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = handle.read().split("\n")
    except UnicodeDecodeError as err:
        raise DatasetLayoutError(f"{path}: not UTF-8 text ({err})") from err
    return ((number, line.split()) for number, line in enumerate(lines, 1) if line.strip())


def read_xlsx(path: Path, columns: tuple[str, ...], sheet: str | None = None
              ) -> Iterator[tuple[int, list[object]]]:
    """Rows below the first row holding all ``columns`` (any case), as (sheet row, the values
    of ``columns`` in that order).

    ``sheet`` is searched first, then the other sheets; rows whose cells in ``columns`` are all
    empty are skipped (trailing blank rows are common).
    """
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises zip, XML and its own errors for damaged files
        raise DatasetLayoutError(f"{path}: cannot read the workbook ({type(err).__name__}: "
                                 f"{err})") from err
    try:
        names = sorted(workbook.sheetnames, key=lambda n: n != sheet)
        for name in names:
            rows = list(workbook[name].iter_rows(values_only=True))
            for index, cells in enumerate(rows):
                labels = [str(c).strip().lower() if c is not None else "" for c in cells]
                if all(col.lower() in labels for col in columns):
                    positions = [labels.index(col.lower()) for col in columns]
                    return _xlsx_rows(rows, index, positions)
    finally:
        workbook.close()
    raise DatasetLayoutError(f"{path}: no sheet has the columns {list(columns)}")


def _xlsx_rows(rows: list[tuple], header: int, positions: list[int]
               ) -> Iterator[tuple[int, list[object]]]:
    for index in range(header + 1, len(rows)):
        cells = rows[index]
        values = [cells[pos] if pos < len(cells) else None for pos in positions]
        if any(v is not None and str(v).strip() for v in values):
            yield index + 1, values


def read_mat(path: Path, variable: str) -> np.ndarray:
    """MATLAB variable ``variable`` flattened in MATLAB's column-major order."""
    from scipy.io import loadmat

    try:
        contents = loadmat(path)
    except (OSError, ValueError, NotImplementedError) as error:
        raise DatasetLayoutError(f"{path}: cannot read MATLAB file ({error})") from error
    if variable not in contents:
        found = [k for k in contents if not k.startswith("__")]
        raise DatasetLayoutError(f"{path}: no variable {variable!r}; found {found}")
    return np.asarray(contents[variable]).flatten(order="F")

