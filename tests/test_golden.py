"""Golden files as a kind of reference file: the committed one loads and fits its schema, a
file's kind is read from its data (``generated``), and a bad golden file names the file, the
entry and the field. Writing golden files from real suites and checking reruns against them:
tests/test_published_check.py."""

import copy
from pathlib import Path

import pytest
import yaml

from harness import cli
from harness.reporting.golden import SCHEMA_FILE, GoldenEntry, GoldenFile, load_golden, parse_golden
from harness.reporting.published import PublishedFile, load_reference
from harness.reporting.reference import PublishedFileError, is_golden, json_schema

COMMITTED = Path(__file__).resolve().parent.parent / "leaderboards" / "golden-synthetic.yaml"


def committed() -> dict:
    return yaml.safe_load(COMMITTED.read_text())


def test_the_committed_golden_file_fits_its_schema_and_loads_as_golden():
    from jsonschema import Draft202012Validator

    Draft202012Validator(json_schema(SCHEMA_FILE)).validate(committed())
    reference = load_reference(COMMITTED)
    assert isinstance(reference, GoldenFile) and reference.generated["suite"] == "golden"
    assert all(isinstance(e, GoldenEntry) and e.provenance == "measured" for e in reference.entries)
    entry = reference.entries[0]
    assert entry.unit_tolerance and len(entry.unit_values("srcc")) == len(entry.split_files) == 10
    assert entry.source_text().startswith("suite golden @ ")
    assert load_golden(COMMITTED).entries == reference.entries


def test_the_kind_is_read_from_the_data_not_the_name(tmp_path):
    assert is_golden(committed()) and not is_golden({"version": 1, "entries": []})
    # the same entries without 'generated' are no golden file, and golden fields are refused there
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({"version": 1, "entries": committed()["entries"]}))
    with pytest.raises(PublishedFileError, match=r"bare.yaml: entries\[0\] \(lifeiqa_effnet_lite0_small\): "
                                                 r"rerun_noise: unknown field"):
        load_reference(bare)
    renamed = tmp_path / "published.yaml"
    renamed.write_text(COMMITTED.read_text())
    assert isinstance(load_reference(renamed), GoldenFile)
    assert isinstance(load_reference(), PublishedFile)


def test_the_published_command_lists_a_golden_file(capsys):
    assert cli.main(["published", "--file", str(COMMITTED)]) == 0
    out = capsys.readouterr().out
    assert "| lifeiqa_effnet_lite0_small | synth-csiq" in out and "measured" in out
    assert "Sources:" not in out  # a golden row cites its suite, not a publication


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("generated"), "gold.yaml: generated: missing"),
    (lambda d: d["entries"][1].update(provenance="checked"),
     "entries[1] (lifeiqa_effnet_lite0_small): provenance: expected 'measured', found 'checked'"),
    (lambda d: d["entries"][1]["source"].pop("git_commit"),
     "entries[1] (lifeiqa_effnet_lite0_small): source: a golden entry needs 'suite' and 'git_commit'"),
    (lambda d: d["entries"][1]["split_files"][2].update(srcc="x"),
     "entries[1] (lifeiqa_effnet_lite0_small): split_files[2].srcc: expected a number, found 'x'"),
    (lambda d: d["entries"][1]["split_files"][2].pop("sha256_16"),
     "split_files[2].sha256_16: missing"),
    (lambda d: d["entries"][1]["unit_tolerance"].update(srcc=3),
     "entries[1] (lifeiqa_effnet_lite0_small): unit_tolerance.srcc: 3: expected a number in [0, 2]"),
    (lambda d: d["entries"][1].update(unit_tolerance={"krcc": 0.1}),
     "unit_tolerance.krcc: no such metric in this entry's metrics ['srcc', 'plcc']"),
    (lambda d: d["entries"][1].update(evaluated_on="whole"), "evaluated_on: unknown field"),
    (lambda d: d.update(tables=[]), "gold.yaml: tables: unknown top-level key"),
])
def test_bad_golden_files_name_the_entry_and_field(change, message):
    document = copy.deepcopy(committed())
    change(document)
    with pytest.raises(PublishedFileError) as error:
        parse_golden(document, "gold.yaml")
    assert str(error.value).startswith("gold.yaml: ")
    assert message in str(error.value)
