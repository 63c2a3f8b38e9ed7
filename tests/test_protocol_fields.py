"""A protocol file is checked field by field when it is read, and its dataset names before any
work: each fault is one line naming the file and the key, through the real command line."""

from __future__ import annotations

from dataclasses import fields

import pytest
from commands import bench_here

from harness.errors import InvalidOptionError
from harness.plan.protocols import FIELD_RULES, Protocol, parse_protocol


def test_every_protocol_field_has_a_rule():
    assert set(FIELD_RULES) == {f.name for f in fields(Protocol)} - {"source", "extra"}


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("splits", 0, "a whole number >= 1"), ("splits", -3, "a whole number >= 1"),
    ("splits", "two", "a whole number >= 1"), ("seeds", 1.5, "a whole number >= 1"),
    ("noise_units", -1, "a whole number >= 0"), ("noise_units", True, "a whole number >= 0"),
    ("test_fraction", 1.5, "a number in (0, 1)"), ("validation_fraction", "x", "a number in [0, 1)"),
    ("train_fractions", ["x"], "a list of numbers in (0, 1]"),
    ("datasets", "kadid10k", "a list of dataset names"),  # not read letter by letter
    ("pairs", [["a"]], "a list of [source, target] dataset names"),
])
def test_protocol_values_are_checked_when_read(key, value, expected):
    data = {"name": "x", "version": 1, "kind": "splits", key: value}
    with pytest.raises(InvalidOptionError) as caught:
        parse_protocol(data, "mine.yaml")
    assert str(caught.value) == f"protocol mine.yaml: {key}: {value!r}: expected {expected}"


@pytest.mark.parametrize(("line", "expected"), [
    ("splits: 0", "protocol {path}: splits: 0: expected a whole number >= 1"),
    ("splits: two", "protocol {path}: splits: 'two': expected a whole number >= 1"),
    ("datasets: [kadid10kk]", "unknown dataset 'kadid10kk'; did you mean kadid10k, koniq10k? "
                              "Known: csiq, kadid10k, koniq10k, live, livec, spaq, tid2013 (in "
                              "protocol {path}: datasets)"),
    ("synthetic_datasets: [synth-kadid]", "unknown dataset 'synth-kadid'; did you mean "),
])
def test_a_bad_protocol_is_one_line_before_any_work(line, expected, tmp_path, capsys,
                                                   monkeypatch):
    path = tmp_path / "mine.yaml"
    path.write_text(f"name: mine\nversion: 1\nkind: splits\nbaselines: [piqe]\n{line}\n")
    monkeypatch.setenv("LIFEIQA_CACHE", str(tmp_path / "cache"))
    ran = bench_here(capsys, "run", "--protocol", str(path), "--synth-size", "tiny", "--runs",
                     str(tmp_path / "runs"))
    assert ran.returncode == 2 and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert ran.stderr.startswith(f"lifeiqa-bench run: error: {expected.format(path=path)}")
    assert not (tmp_path / "runs").exists()
