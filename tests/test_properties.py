"""Property-based tests (hypothesis): metadata parsers on random valid and invalid rows, the
split planner, and the correlation metrics' invariances.

The parsers read real CSV files written per example. Whatever a row holds, it becomes exactly
one record or one Problem located at the line it starts on: no exception escapes and nothing is
dropped silently (a blank line holds no row).
"""

import csv
import io
import itertools
import math
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.data.custom import load_custom_csv
from harness.data.loaders.kadid10k import TYPES as KADID_TYPES
from harness.data.records import ScoreScale
from harness.data.registry import load_dataset
from harness.plan.splits import Split, plan_split, read_split, subsample_train, write_split
from harness.results import metrics

SETTINGS = settings(max_examples=50, deadline=None)

# Any text a CSV cell can hold: commas, quotes, line breaks, Unicode; NUL only where the csv
# module reads it (Python 3.11+; 3.10 refuses the whole file with a DatasetLayoutError).
_EXCLUDED = "" if sys.version_info >= (3, 11) else "\x00"
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=_EXCLUDED),
                   max_size=12)
SAFE_NAME = st.text("abcXYZ0123456789_-", min_size=1, max_size=10)
SCORE = st.floats(allow_nan=False, allow_infinity=False)
BAD_SCORE = st.sampled_from(["nan", "NaN", "inf", "-inf", "1e999", "", " ", "abc", "3,5", "0x10",
                             "--1"])
ESCAPING = st.sampled_from([p for p in ("../x.png", "a/../../x.png", "/etc/x.png", "C:\\x.png",
                                        "C:x.png", "\\\\host\\share\\x.png", "//host/share/x.png",
                                        "a\x00b.png") if not (_EXCLUDED and _EXCLUDED in p)])


def _write(path: Path, header: list[str], rows: list[list[str]]) -> list[int]:
    """Write a CSV; the line each row starts on (the header is line 1)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    starts, line = [], 2
    for row in rows:
        before = buffer.tell()
        writer.writerow(row)
        starts.append(line)
        line += len(re.findall(r"\r\n|\r|\n", buffer.getvalue()[before:]))
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    return starts


def _outcomes(dataset, file: str) -> dict[int, object]:
    """line -> the record or Problem made from it; fails if a line got two."""
    found: dict[int, object] = {}
    for item in [*dataset.records, *dataset.problems]:
        where = item.source if hasattr(item, "source") else item.location
        name, line = where.rsplit(":", 1)
        assert name == file, where
        assert int(line) not in found, f"line {line} gave two outcomes"
        found[int(line)] = item
    return found


def _check_every_row_accounted(dataset, file: str, rows: list[list[str]], starts: list[int]) -> None:
    expected = [line for line, row in zip(starts, rows, strict=True) if any(c.strip() for c in row)]
    assert sorted(_outcomes(dataset, file)) == expected


def _check_round_trip(dataset, file: str, starts: list[int], rows: list, fields: tuple[str, ...],
                      expected) -> None:
    """Each valid row gives its record (``fields`` equal ``expected(want)``) the first time its
    name appears; invalid rows and repeated names give Problems."""
    outcomes = _outcomes(dataset, file)
    seen = set()
    for line, (_, want) in zip(starts, rows, strict=True):
        got = outcomes[line]
        if want is None or want[0] in seen:  # a name listed again is a Problem too
            assert not hasattr(got, "image_id"), (line, got)
            continue
        seen.add(want[0])
        assert tuple(getattr(got, f) for f in fields) == expected(want), (line, got)


# --- KADID-10k dmos.csv ------------------------------------------------------------------------

KADID_HEADER = ["dist_img", "ref_img", "dmos", "var"]


@st.composite
def kadid_rows(draw) -> tuple[list[str], tuple | None]:
    """A row and what it must give: (name, score, group, type, level), or None for a Problem."""
    ref, code, level = draw(st.integers(1, 81)), draw(st.integers(0, 99)), draw(st.integers(0, 99))
    name = f"{draw(st.sampled_from('Ii'))}{ref:02d}_{code:02d}_{level:02d}.png"
    kind = draw(st.sampled_from(["valid", "valid", "bad score", "bad name", "escape", "short"]))
    score = repr(draw(SCORE))
    if kind == "bad score":
        return [name, f"I{ref:02d}.png", draw(BAD_SCORE), "0.1"], None
    if kind == "bad name":
        return [draw(st.sampled_from(["", "I01_01_01.jpg", "I1_01_01.png", "x.png"])), "r", score, "0"], None
    if kind == "escape":
        return [draw(ESCAPING), f"I{ref:02d}.png", score, "0.1"], None
    if kind == "short":
        return [name, f"I{ref:02d}.png"][:draw(st.integers(1, 2))], None
    good = 1 <= code <= 25
    return [name, f"I{ref:02d}.png", score, "0.1"], (
        (name, float(score), f"I{ref:02d}.png", KADID_TYPES[code - 1], level) if good else None)


@SETTINGS
@given(st.lists(kadid_rows(), max_size=25))
def test_kadid_csv_valid_rows_round_trip_and_bad_ones_become_problems(rows):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        starts = _write(root / "dmos.csv", KADID_HEADER, [cells for cells, _ in rows])
        dataset = load_dataset("kadid10k", root)
    _check_round_trip(dataset, "dmos.csv", starts, rows,
                      ("image_id", "score", "group", "distortion", "level"),
                      lambda want: (f"images/{want[0]}", *want[1:]))


@SETTINGS
@given(st.lists(st.lists(ANY_TEXT, max_size=5), max_size=15))
def test_kadid_csv_arbitrary_rows_never_escape_or_vanish(rows):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        starts = _write(root / "dmos.csv", KADID_HEADER, rows)
        dataset = load_dataset("kadid10k", root)
    _check_every_row_accounted(dataset, "dmos.csv", rows, starts)


# --- KonIQ-10k scores CSV ----------------------------------------------------------------------

KONIQ_FILE = "koniq10k_scores_and_distributions.csv"
KONIQ_HEADER = ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"]


@st.composite
def koniq_rows(draw) -> tuple[list[str], tuple | None]:
    name = draw(SAFE_NAME) + ".jpg"
    kind = draw(st.sampled_from(["valid", "valid", "bad score", "escape", "short", "empty name"]))
    score = repr(draw(SCORE))
    counts = ["0", "5", "60", "30", "5", "100", "3.2", "0.5"]
    if kind == "bad score":
        return [name, *counts, draw(BAD_SCORE)], None
    if kind == "escape":
        return [draw(ESCAPING), *counts, score], None
    if kind == "short":
        return [name, *counts][:draw(st.integers(1, 9))], None
    if kind == "empty name":
        return [" ", *counts, score], None
    return [name, *counts, score], (name, float(score))


@SETTINGS
@given(st.lists(koniq_rows(), max_size=25))
def test_koniq_csv_valid_rows_round_trip_and_bad_ones_become_problems(rows):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        starts = _write(root / KONIQ_FILE, KONIQ_HEADER, [cells for cells, _ in rows])
        dataset = load_dataset("koniq10k", root)
    _check_round_trip(dataset, KONIQ_FILE, starts, rows, ("image_id", "score", "group"),
                      lambda want: (f"1024x768/{want[0]}", want[1], f"1024x768/{want[0]}"))


@SETTINGS
@given(st.lists(st.lists(ANY_TEXT, max_size=11), max_size=15))
def test_koniq_csv_arbitrary_rows_never_escape_or_vanish(rows):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        starts = _write(root / KONIQ_FILE, KONIQ_HEADER, rows)
        dataset = load_dataset("koniq10k", root)
    _check_every_row_accounted(dataset, KONIQ_FILE, rows, starts)


# --- a user's CSV ------------------------------------------------------------------------------

MOS = ScoreScale("MOS", 0.0, 100.0, higher_is_better=True)


@st.composite
def custom_rows(draw) -> tuple[list[str], tuple | None]:
    path = "/".join(draw(st.lists(SAFE_NAME, min_size=1, max_size=3))) + ".png"
    ref, kind = draw(SAFE_NAME), draw(st.sampled_from(
        ["valid", "valid", "bad score", "escape", "empty path", "empty ref", "extra field"]))
    score = repr(draw(SCORE))
    if kind == "bad score":
        return [path, draw(BAD_SCORE), ref], None
    if kind == "escape":
        return [draw(ESCAPING), score, ref], None
    if kind == "empty path":
        return ["", score, ref], None
    if kind == "empty ref":
        return [path, score, ""], None
    if kind == "extra field":
        return [path, score, ref, "blur", "unquoted,comma"], None
    return [path, score, ref], (path, float(score), ref)


@SETTINGS
@given(st.lists(custom_rows(), max_size=25))
def test_custom_csv_valid_rows_round_trip_and_bad_ones_become_problems(rows):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        starts = _write(root / "scores.csv", ["path", "mos", "ref"], [cells for cells, _ in rows])
        dataset = load_custom_csv(root / "scores.csv", MOS)
    _check_round_trip(dataset, "scores.csv", starts, rows, ("image_id", "score", "group"),
                      lambda want: want)


@SETTINGS
@given(st.lists(st.lists(ANY_TEXT, max_size=5), max_size=15))
def test_custom_csv_arbitrary_rows_never_escape_or_vanish(rows):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        starts = _write(root / "scores.csv", ["path", "mos", "ref", "distortion"], rows)
        dataset = load_custom_csv(root / "scores.csv", MOS)
    _check_every_row_accounted(dataset, "scores.csv", rows, starts)
    for record in dataset.records:  # whatever was accepted stays inside the root
        assert ".." not in Path(record.image_id).parts and not Path(record.image_id).is_absolute()


# --- the split planner (test_splits.py covers disjointness, coverage and determinism) -----------

UNITS = st.sets(st.text(min_size=1, max_size=8), min_size=3, max_size=60)


@SETTINGS
@given(units=UNITS, seed=st.integers(0, 10_000), test_fraction=st.floats(0.05, 0.95),
       validation_fraction=st.floats(0.01, 0.9), shuffle=st.randoms(use_true_random=False))
def test_validation_part_is_a_third_disjoint_part_of_the_training_groups(
        units, seed, test_fraction, validation_fraction, shuffle):
    ordered = sorted(units)
    plain = plan_split("any", ordered, seed, test_fraction)
    assert abs(len(plain.test) - len(units) * test_fraction) <= 0.5 or len(plain.test) in (
        1, len(units) - 1)
    if len(plain.train) < 2:  # nothing left to carve a validation part from
        with pytest.raises(ValueError, match="too few content groups for a validation part"):
            plan_split("any", ordered, seed, test_fraction, validation_fraction)
        return
    split = plan_split("any", ordered, seed, test_fraction, validation_fraction)
    parts = [set(split.train), set(split.test), set(split.validation)]
    assert all(parts) and sum(map(len, parts)) == len(units) and set.union(*parts) == units
    assert split.test == plain.test and set(split.validation) < set(plain.train)
    shuffled = list(units) * 2  # order and repeats in the input do not matter
    shuffle.shuffle(shuffled)
    assert plan_split("any", shuffled, seed, test_fraction, validation_fraction) == split


@SETTINGS
@given(units=UNITS, seed=st.integers(0, 10_000),
       fractions=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=4))
def test_training_subsets_are_nested_and_leave_test_alone(units, seed, fractions):
    split = plan_split("any", sorted(units), seed)
    subsets = [subsample_train(split, f) for f in sorted(fractions)]
    for smaller, larger in itertools.pairwise(subsets):
        assert set(smaller.train) <= set(larger.train) <= set(split.train)
    for sub, fraction in zip(subsets, sorted(fractions), strict=True):
        assert sub.test == split.test and sub.validation == split.validation and sub.train
        assert abs(len(sub.train) - len(split.train) * fraction) <= 0.5 or len(sub.train) == 1


@SETTINGS
@given(units=UNITS, seed=st.integers(0, 10_000))
def test_split_files_round_trip_and_refuse_other_data(units, seed):
    split = plan_split("any", sorted(units), seed, 0.3, 0.2)
    assert Split.from_json(split.to_json()) == split
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "split.json"
        write_split(split, path)
        assert read_split(path, list(units)) == split
        with pytest.raises(ValueError, match="made for other data"):
            read_split(path, sorted(units)[1:])


# --- metrics -----------------------------------------------------------------------------------

# Integer-valued vectors: a strictly monotone map keeps distinct values distinct (and ties tied)
# exactly in floating point, so rank statistics must not move at all.
VALUES = st.lists(st.integers(-50, 50), min_size=3, max_size=30)
MONOTONE = [lambda v: v, lambda v: 3 * v - 7, lambda v: v ** 3, lambda v: np.exp(v / 10),
            lambda v: np.arctan(v / 5)]


@st.composite
def pairs(draw) -> tuple[np.ndarray, np.ndarray]:
    x = draw(VALUES)
    y = draw(st.lists(st.integers(-50, 50), min_size=len(x), max_size=len(x)))
    return np.array(x, dtype=float), np.array(y, dtype=float)


@SETTINGS
@given(pairs(), st.sampled_from(MONOTONE), st.sampled_from(MONOTONE))
def test_rank_correlations_ignore_monotone_maps_and_are_bounded_and_symmetric(xy, f, g):
    x, y = xy
    for metric in (metrics.srcc, metrics.krcc):
        value = metric(x, y)
        assert -1.0 <= value <= 1.0
        assert metric(f(x), g(y)) == pytest.approx(value, abs=1e-12)
        assert metric(y, x) == pytest.approx(value, abs=1e-12)
        assert metric(-x, y) == pytest.approx(-value, abs=1e-12)
        assert metric(x, -y) == pytest.approx(-value, abs=1e-12)


@SETTINGS
@given(pairs(), st.floats(0.01, 100), st.floats(-100, 100))
def test_plcc_is_bounded_symmetric_and_affine_invariant(xy, scale, shift):
    x, y = xy
    value = metrics.plcc(x, y)
    assert -1.0 - 1e-12 <= value <= 1.0 + 1e-12
    assert metrics.plcc(y, x) == pytest.approx(value, abs=1e-9)
    assert metrics.plcc(scale * x + shift, y) == pytest.approx(value, abs=1e-9)
    assert metrics.plcc(-scale * x + shift, y) == pytest.approx(-value, abs=1e-9)
    if len(set(x)) > 1:
        assert metrics.plcc(x, x) == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore:An input array is nearly constant")  # a flat logistic fit
@SETTINGS
@given(pairs())
def test_full_evaluation_stays_in_range(xy):
    x, y = xy
    scores = metrics.evaluate(x, y)
    for name in ("srcc", "krcc", "plcc", "plcc_logistic"):
        assert -1.0 - 1e-9 <= getattr(scores, name) <= 1.0 + 1e-9, name
    assert scores.rmse_logistic >= 0 and math.isfinite(scores.rmse_logistic)
    assert scores.n == len(x)
