import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.plan.splits import plan_split, read_split, subsample_train, unit_list_hash, write_split

UNITS = [f"I{i:02d}" for i in range(1, 82)]


def test_eighty_twenty_split_is_deterministic_and_disjoint():
    split = plan_split("kadid10k", UNITS, seed=3)
    assert len(split.test) == 16 and len(split.train) == 65
    assert not set(split.train) & set(split.test)
    assert plan_split("kadid10k", list(reversed(UNITS)), seed=3) == split  # order-free
    assert plan_split("kadid10k", UNITS, seed=4).test != split.test


def test_validation_part_is_carved_from_training_groups():
    split = plan_split("kadid10k", UNITS, seed=0, validation_fraction=0.1)
    parts = [set(split.train), set(split.test), set(split.validation)]
    assert sum(map(len, parts)) == 81 and len(set.union(*parts)) == 81
    assert split.validation and split.test == plan_split("kadid10k", UNITS, seed=0).test


def test_split_file_round_trip_and_data_check(tmp_path):
    split = plan_split("tid2013", UNITS[:25], seed=1)
    path = tmp_path / "split_1.json"
    write_split(split, path)
    assert read_split(path, UNITS[:25]) == split
    with pytest.raises(ValueError, match="made for other data"):
        read_split(path, UNITS[:24])


def test_data_efficiency_subsets_are_nested():
    split = plan_split("kadid10k", UNITS, seed=2)
    sizes = {}
    for fraction in (0.2, 0.4, 0.6, 0.8):
        sub = subsample_train(split, fraction)
        sizes[fraction] = set(sub.train)
        assert sub.test == split.test
    assert sizes[0.2] <= sizes[0.4] <= sizes[0.6] <= sizes[0.8] <= set(split.train)


@settings(max_examples=60, deadline=None)
@given(units=st.sets(st.text(min_size=1, max_size=8), min_size=2, max_size=60),
       seed=st.integers(0, 10_000), test_fraction=st.floats(0.05, 0.95))
def test_groups_never_cross_and_sizes_add_up(units, seed, test_fraction):
    units = sorted(units)
    split = plan_split("any", units, seed, test_fraction)
    assert not set(split.train) & set(split.test)
    assert set(split.train) | set(split.test) == set(units)
    assert split.train and split.test
    assert split.units_hash == unit_list_hash(units)
    assert plan_split("any", units, seed, test_fraction) == split


def test_committed_frozen_split_files_match_the_planner():
    import json
    from pathlib import Path

    from harness.plan.protocols import PROTOCOL_DIR

    files = sorted((PROTOCOL_DIR / "splits").rglob("split_*.json"))
    assert len(files) == 40  # kadid10k and tid2013: 10 splits, with and without validation
    for path in files:
        data = json.loads(path.read_text())
        units = data["train"] + data["test"] + data["validation"]
        validation = 0.1 if data["validation"] else 0.0
        expected = plan_split(data["dataset"], units, data["seed"], 0.2, validation)
        assert read_split(Path(path), units) == expected, path
