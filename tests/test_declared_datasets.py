"""Datasets by configuration: a user's CSV and images declared in a protocol, on the command line
or through the API, run end to end (pool workers included), checked row by row; and dataset
plug-ins from a really installed distribution's ``lifeiqa_bench.datasets`` entry point."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import commands
import numpy as np
import pytest
from PIL import Image

import harness
from harness.cli import main
from harness.data.custom import load_custom_csv
from harness.data.declared import DatasetDeclaration, declare_dataset, load_declaration_file
from harness.data.layout import DatasetLayoutError
from harness.data.records import ScoreScale
from harness.data.sources import DataSources
from harness.engine.executors import _sources_from_dict, _sources_to_dict
from harness.errors import DataNotFoundError, InvalidOptionError

TYPES = ("blur", "noise")
GROUPS = 8
HEADER = "file_name,quality,reference,dist_type"
COLUMNS = "path=file_name,score=quality,group=reference,distortion=dist_type"
ONE_LINE = f"data/scores.csv,images=data,range=1:5,better=higher,{COLUMNS}"
MAPPING = {"csv": "data/scores.csv", "images": "data", "range": [1, 5], "better": "higher",
           "path": "file_name", "score": "quality", "group": "reference",
           "distortion": "dist_type"}
PROTOCOL = """\
name: my-benchmark
version: "1"
kind: splits
splits: 10
define_datasets:
  my_set:
    csv: data/scores.csv
    images: data
    range: [1, 5]
    better: higher
    path: file_name
    score: quality
    group: reference
    distortion: dist_type
datasets: [my_set]
variants: []
baselines: [piqe]
breakdown: distortion
"""


def write_dataset(folder: Path, rows: list[str] | None = None) -> Path:
    """``folder/data/``: GROUPS reference images x TYPES x 2 levels of 32x32 PNGs, and
    ``scores.csv`` with the user's own column names (or ``rows`` as its rows); the CSV."""
    rng = np.random.default_rng(0)
    (folder / "data" / "imgs").mkdir(parents=True, exist_ok=True)
    written = []
    for group in range(GROUPS):
        for kind in TYPES:
            for level in (1, 2):
                name = f"imgs/r{group}_{kind}{level}.png"
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / "data" / name)
                written.append(f"{name},{rng.uniform(1, 5):.2f},r{group}.png,{kind}")
    csv = folder / "data" / "scores.csv"
    csv.write_text("\n".join([HEADER, *(written if rows is None else rows)]) + "\n")
    return csv


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path)


def bench(*args: str, cwd: Path, cache: Path, pythonpath: Path | None = None
          ) -> subprocess.CompletedProcess[str]:
    """The command line on one thread, with ``pythonpath`` (an installed plug-in) importable."""
    env = {"OMP_NUM_THREADS": "1"}
    if pythonpath is not None:  # keeps the socket block (tests/netblock) on the path
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")])
    return commands.bench(*args, cwd=cwd, cache=cache, env=env)


def unit_results(runs: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(runs.rglob("result.json"))]


def check_declared_units(runs: Path, csv: Path, declared_by: str) -> None:
    units = unit_results(runs)
    assert [(u["test_dataset"], u["unit"]) for u in units] == [("my_set", "split_00"),
                                                               ("my_set", "split_01")]
    digest = hashlib.sha256(csv.read_bytes()).hexdigest()
    for unit in units:
        described = unit["data"]["test"]["declared"]
        assert described["csv"] == str(csv.resolve()) and described["csv_sha256"] == digest
        assert described["columns"] == {"path": "file_name", "score": "quality",
                                         "group": "reference", "distortion": "dist_type"}
        assert described["scale"] == {"name": "MOS", "low": 1.0, "high": 5.0,
                                      "higher_is_better": True}
        assert described["declared_by"] == declared_by
        assert set(unit["per_distortion"]) == set(TYPES)  # the distortion column was read
        assert unit["split"]["test_images"] > 0 and np.isfinite(unit["metrics"]["srcc"])


# --- end to end -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_protocol_declaration_runs_end_to_end(dataset, tmp_path):
    protocol = tmp_path / "my-benchmark.yaml"
    protocol.write_text(PROTOCOL)
    elsewhere = tmp_path / "elsewhere"  # the declaration's paths are relative to the YAML file
    elsewhere.mkdir()
    result = bench("run", "--protocol", str(protocol), "--splits", "2", "--device", "cpu",
                   "--runs", str(tmp_path / "runs"), cwd=elsewhere, cache=tmp_path / "cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| piqe    | my_set" in result.stdout
    check_declared_units(tmp_path / "runs", dataset,
                         f"protocol {protocol}: define_datasets.my_set")


@pytest.mark.slow
def test_a_command_line_declaration_joins_a_builtin_protocol_on_pool_workers(dataset, tmp_path):
    result = bench("run", "--protocol", "comparison", "--models", "piqe", "--datasets", "my_set",
                   "--define-dataset", f"my_set={ONE_LINE}", "--splits", "2", "--device", "cpu",
                   "--executor", "pool", "--workers", "2", "--runs", str(tmp_path / "runs"),
                   "--json", cwd=tmp_path, cache=tmp_path / "cache")
    assert result.returncode == 0, result.stdout + result.stderr
    (jobs,) = (tmp_path / "runs" / "comparison" / "pool").glob("*/jobs.json")
    (sent,) = json.loads(jobs.read_text())["sources"]["declared"]
    assert DatasetDeclaration.from_dict(sent).csv == str(dataset.resolve())
    assert commands.counts(result.stdout) == (2, 0, 0)  # the workers read it
    check_declared_units(tmp_path / "runs", dataset, "--define-dataset my_set")


# --- declarations: forms, travel, up-front checks ----------------------------------------------


def test_the_three_forms_declare_the_same_dataset_and_it_travels(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_set.yaml").write_text(json.dumps(MAPPING))  # JSON is YAML
    forms = [declare_dataset("my_set", ONE_LINE), declare_dataset("my_set", MAPPING),
             declare_dataset("my_set", "my_set.yaml"), load_declaration_file("my_set.yaml")]
    first = forms[0]
    assert (first.csv, first.images) == (str(dataset.resolve()), str(dataset.parent.resolve()))
    assert (first.low, first.high, first.higher_is_better, first.score_name) == (1, 5, True, "MOS")
    assert all({**form.to_dict(), "origin": ""} == {**first.to_dict(), "origin": ""}
               for form in forms)
    # a frozen JSON value: through jobs.json (pool workers) and pickle (Slurm tasks)
    sources = DataSources(declared=(first,))
    assert _sources_from_dict(json.loads(json.dumps(_sources_to_dict(sources)))) == sources
    assert pickle.loads(pickle.dumps(sources)) == sources
    loaded = sources.load("my_set")
    assert (loaded.name, loaded.kind, len(loaded), loaded.distortion_types) == \
        ("my_set", "synthetic", GROUPS * 4, TYPES)
    assert sources.has("my_set") and sources.spec("my_set") is None
    lower = declare_dataset("dmos_set", f"{ONE_LINE.replace('higher', 'lower')},score_name=")
    assert (lower.higher_is_better, lower.score_name) == (False, "DMOS")


def test_the_api_plans_a_declared_dataset_beside_a_protocols_own(dataset, tmp_path):
    plan = harness.dry_run("splits", define_datasets={"my_set": {**MAPPING, "csv": str(dataset),
                                                                 "images": str(dataset.parent)}},
                           splits=2, runs=str(tmp_path / "runs"), device="cpu")
    assert {job.train_dataset for job in plan.jobs} == {"my_set"} and len(plan.jobs) == 2
    assert any("skipping kadid10k->kadid10k: no data" in note for note in plan.notes)
    assert plan.sources.declaration("my_set") is not None


BAD = [
    ({"csv": "data/missing.csv"}, "data/missing.csv: CSV file not found"),
    ({"images": "nowhere"}, "nowhere: image folder not found"),
    ({"colour": "red"}, "unknown key(s) ['colour']; known: csv, images, range, better"),
    ({"range": [5, 1]}, "range [5, 1]: expected low < high"),
    ({"range": "1-5"}, "range '1-5': expected [low, high]"),
    ({"range": ["a", 5]}, "expected two numbers"),
    ({"better": "up"}, "better 'up': expected higher or lower"),
    ({"better": None}, "missing better (higher or lower"),
    ({"score": "mos"}, "missing column(s) ['mos']; expected ['file_name', 'mos'] (optional "
                       "['reference', 'dist_type']), found ['file_name', 'quality', 'reference', "
                       "'dist_type']"),
    ({"name": "kadid10k"}, "name 'kadid10k' would shadow the built-in dataset 'kadid10k'"),
    ({"name": "KADID-10k"}, "would shadow the built-in dataset 'kadid10k' (KADID-10k)"),
    ({"name": "koniq"}, "would shadow the built-in dataset 'koniq10k'"),
    ({"name": "synth-mine"}, "names starting with 'synth-' are the synthetic sets'"),
    ({"name": "a__to__b"}, "name 'a__to__b': expected"),
]


@pytest.mark.parametrize("change, message", BAD, ids=[m[:28] for _, m in BAD])
def test_a_bad_declaration_is_refused_before_any_work(dataset, tmp_path, monkeypatch, change,
                                                      message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIFEIQA_CACHE", str(tmp_path / "cache"))
    change = dict(change)
    name = change.pop("name", "my_set")
    declaration = {key: value for key, value in {**MAPPING, **change}.items() if value is not None}
    with pytest.raises(InvalidOptionError) as caught:
        harness.evaluate("splits", define_datasets={name: declaration}, splits=1,
                         runs=str(tmp_path / "runs"), device="cpu")
    assert message in str(caught.value) and f"--define-dataset {name}" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("args, message", [
    (["--define-dataset", f"my_set={ONE_LINE.replace('quality', 'qual')}"],
     "--define-dataset my_set: "),
    (["--define-dataset", f"my_set={ONE_LINE},lower-better"],
     "'lower-better': expected KEY=VALUE after the CSV"),
    (["--define-dataset", f"my_set={ONE_LINE}", "--define-dataset", f"my_set={ONE_LINE}"],
     "--define-dataset my_set: given twice"),
    (["--define-dataset", "my_set=nothing.yaml"], "nothing.yaml): declaration file not found"),
    (["--define-dataset", f"my_set={ONE_LINE}", "--synthetic"], "--synthetic runs the synthetic"),
    (["--define-dataset", f"my_set={ONE_LINE}", "--protocol", "my-benchmark.yaml"],
     "dataset(s) my_set declared both by protocol my-benchmark.yaml and by --define-dataset"),
    (["--protocol", "broken.yaml"],
     "protocol broken.yaml: define_datasets.my_set: range [3, 3]: expected low < high"),
])
def test_cli_bad_declarations_are_one_line_with_exit_status_2(dataset, tmp_path, monkeypatch,
                                                              capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-benchmark.yaml").write_text(PROTOCOL)
    (tmp_path / "broken.yaml").write_text(PROTOCOL.replace("[1, 5]", "[3, 3]"))
    protocol = [] if "--protocol" in args else ["--protocol", "splits"]
    assert main(["run", *protocol, *args, "--runs", "runs"]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and len(printed.err.strip().splitlines()) == 1, printed.err
    assert message in printed.err
    if "score=qual," in args[-1]:  # an unknown column: the CSV's columns are listed
        assert f"found {HEADER.split(',')}" in printed.err
    assert not (tmp_path / "runs").exists()


def test_a_bad_row_refuses_the_run_before_any_unit_in_one_line(dataset, tmp_path, monkeypatch,
                                                               capsys):
    rows = dataset.read_text().splitlines()
    rows[3] = rows[3].replace(rows[3].split(",")[1], "good", 1)  # line 4: not a number
    dataset.write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--protocol", "splits", "--define-dataset", f"my_set={ONE_LINE}",
                 "--splits", "2", "--runs", "runs", "--executor", "pool", "--workers", "2"])
    printed = capsys.readouterr()
    assert code == 2 and len(printed.err.strip().splitlines()) == 1, printed.err
    assert printed.err.startswith("lifeiqa-bench run: error: dataset my_set has 1 problem(s): ")
    assert "scores.csv:4: score 'good' is not a number" in printed.err
    assert "--exclude-bad" in printed.err
    assert not list((tmp_path / "runs").rglob("result.json"))  # no unit ran, none failed
    assert not list((tmp_path / "runs").rglob("failure.json"))


# --- datasets check / list --------------------------------------------------------------------


def test_datasets_check_names_each_bad_row_by_file_and_line(tmp_path, capsys):
    rows = ["imgs/r0_blur1.png,3.0,r0.png,blur",         # line 2: fine
            "imgs/r0_blur2.png,3.5,r0.png,blur",         # 3: fine
            "imgs/gone.png,2.0,r1.png,noise",            # 4: no such image
            "imgs/r0_blur1.png,4.0,r0.png,blur",         # 5: duplicate path
            "imgs/r1_noise1.png,good,r1.png,noise",      # 6: not a number
            "imgs/r1_noise2.png,7.5,r1.png,noise",       # 7: outside [1, 5]
            "imgs/r2_blur1.png,2.5,,blur",               # 8: no content group
            "imgs/r2_blur2.png,2.5,r2.png,"]             # 9: no distortion type
    csv = write_dataset(tmp_path, rows)
    code = main(["datasets", "check", "--quick", "--define-dataset",
                 f"my_set={csv},range=1:5,better=higher,{COLUMNS}"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"declared by --define-dataset my_set: {csv.resolve()}" in out
    assert "problems (6)" in out
    for expected in (f"{csv.parent.resolve() / 'imgs/gone.png'} (scores.csv:4): image file not found",
                     "scores.csv:5: duplicate path 'imgs/r0_blur1.png' (first at line 2)",
                     "scores.csv:6: score 'good' is not a number",
                     "scores.csv:7: score 7.5 outside [1.0, 5.0] (MOS)",
                     "scores.csv:8: empty content group",
                     "scores.csv:9: empty distortion type"):
        assert expected in out, expected


def test_datasets_check_and_list_read_declaration_files_and_protocols(dataset, tmp_path,
                                                                      monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_set.yaml").write_text(json.dumps(MAPPING))
    (tmp_path / "my-benchmark.yaml").write_text(PROTOCOL)
    assert main(["datasets", "check", "my_set.yaml", "--quick"]) == 0
    assert main(["datasets", "check", "--protocol", "my-benchmark.yaml", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.count("dataset my_set at ") == 2 and out.count("no problems found") == 2
    assert "distortion types (2):" in out and f"content groups: {GROUPS}" in out

    assert main(["datasets", "list", "--protocol", "my-benchmark.yaml"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("kadid10k") and line.endswith("built-in") for line in lines)
    (mine,) = [line for line in lines if line.startswith("my_set")]
    assert f"{GROUPS * 4} images" in mine and "MOS 1-5 (higher is better)" in mine
    assert mine.endswith("declared by protocol my-benchmark.yaml: define_datasets.my_set")

    assert main(["datasets", "check", "my_set.yaml", "--dataset", "kadid10k"]) == 2
    assert "go together" in capsys.readouterr().err


def test_load_custom_csv_reads_the_columns_it_is_given(dataset):
    columns = {"path": "File_Name", "score": " quality ", "group": "reference"}
    loaded = load_custom_csv(dataset, ScoreScale("MOS", 1, 5, True), columns=columns)
    assert loaded.kind == "synthetic" and loaded.groups == sorted(f"r{g}.png" for g in range(GROUPS))
    assert loaded.distortion_types == ()  # no distortion column named, none called "distortion"
    with pytest.raises(DatasetLayoutError, match=r"missing column\(s\) \['ref_image'\]"):
        load_custom_csv(dataset, ScoreScale("MOS", 1, 5, True),
                        columns={**columns, "group": "ref_image"})
    with pytest.raises(DataNotFoundError, match="declaration file not found"):
        load_declaration_file(dataset.parent / "absent.yaml")


# --- the entry-point group --------------------------------------------------------------------

PLUGINS = {
    # a loader module of a real layout: scores.csv in the dataset folder
    "iqa-extra": ("0.3.1", "extra = iqa_extra:register", """\
        from pathlib import Path

        from harness.data.custom import load_custom_csv
        from harness.data.records import ScoreScale
        from harness.data.registry import DatasetSpec, register_dataset

        SCALE = ScoreScale("MOS", 1, 5, True)
        COLUMNS = {"path": "file_name", "score": "quality", "group": "reference",
                   "distortion": "dist_type"}


        def _load(root):
            return load_custom_csv(Path(root) / "scores.csv", SCALE, name="extraset",
                                   columns=COLUMNS)


        def register():
            register_dataset(DatasetSpec("extraset", "Extra-Set", "synthetic", SCALE, 32, 8,
                                         ("blur", "noise"), _load))
        """),
    "iqa-broken": ("1.0", "broken = iqa_broken:register", "import no_such_module_here\n"),
    "iqa-shadow": ("0.1", "shadow = iqa_shadow", """\
        from harness.data.registry import get_dataset_spec, register_dataset

        register_dataset(get_dataset_spec("kadid10k"))
        """),
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """Each plug-in built and installed by pip (offline, no build isolation) into its own
    folder: a real distribution with its entry points, for a subprocess's PYTHONPATH."""
    root = tmp_path_factory.mktemp("plugins")
    folders = {}
    for dist, (version, entry_point, code) in PLUGINS.items():
        package = dist.replace("-", "_")
        source = root / "src" / dist
        (source / package).mkdir(parents=True)
        (source / package / "__init__.py").write_text(textwrap.dedent(code))
        (source / "pyproject.toml").write_text(textwrap.dedent(f"""\
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{dist}"
            version = "{version}"

            [project.entry-points."lifeiqa_bench.datasets"]
            {entry_point.split(' = ')[0]} = "{entry_point.split(' = ')[1]}"
            """))
        folders[dist] = root / "site" / dist
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-build-isolation", "--no-index", "--disable-pip-version-check",
                        "--target", str(folders[dist]), str(source)],
                       check=True, capture_output=True, timeout=300)
    return folders


@pytest.mark.slow
def test_a_plugin_dataset_is_listed_checked_and_run_on_pool_workers(installed, dataset, tmp_path):
    extra = installed["iqa-extra"]
    listed = bench("datasets", "list", cwd=tmp_path, cache=tmp_path / "cache", pythonpath=extra)
    assert listed.returncode == 0, listed.stderr
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith("extraset")]
    assert "Extra-Set" in line and line.endswith("plug-in iqa-extra 0.3.1")

    shadow = bench("datasets", "check", "--define-dataset", f"extraset={ONE_LINE}", cwd=tmp_path,
                   cache=tmp_path / "cache", pythonpath=extra)
    assert shadow.returncode == 2 and "would shadow the plug-in iqa-extra 0.3.1's dataset " \
                                      "'extraset' (Extra-Set)" in shadow.stderr, shadow.stderr

    protocol = tmp_path / "extra.yaml"
    protocol.write_text(PROTOCOL.split("define_datasets")[0] + "test_fraction: 0.25\n"
                        "datasets: [extraset]\nvariants: []\nbaselines: [piqe]\n")
    result = bench("run", "--protocol", str(protocol), "--dataset-root",
                   f"extraset={dataset.parent}", "--splits", "2", "--device", "cpu",
                   "--executor", "pool", "--workers", "2", "--runs", str(tmp_path / "runs"),
                   cwd=tmp_path, cache=tmp_path / "cache", pythonpath=extra)
    assert result.returncode == 0, result.stdout + result.stderr
    units = unit_results(tmp_path / "runs")
    assert [u["test_dataset"] for u in units] == ["extraset", "extraset"]
    for unit in units:  # each worker loaded the entry point itself
        plugin = unit["data"]["test"]["plugin"]
        assert (plugin["name"], plugin["version"]) == ("iqa-extra", "0.3.1")


@pytest.mark.slow
@pytest.mark.parametrize("dist, message", [
    ("iqa-broken", "plug-in iqa-broken 1.0 (entry point broken = iqa_broken:register, group "
                   "lifeiqa_bench.datasets) failed to load: ModuleNotFoundError: No module named "
                   "'no_such_module_here'"),
    ("iqa-shadow", "plug-in iqa-shadow 0.1: dataset name 'kadid10k' would shadow the built-in "
                   "dataset 'kadid10k' (KADID-10k)"),
])
def test_a_failing_plugin_is_one_line_naming_it(installed, tmp_path, dist, message):
    result = bench("datasets", "list", cwd=tmp_path, cache=tmp_path / "cache",
                   pythonpath=installed[dist])
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"lifeiqa-bench datasets: error: {message}"]


def test_edited_scores_make_another_config_so_resuming_refuses_the_old_units(dataset, tmp_path):
    """The CSV's SHA-256 is part of each unit's config: after the scores change, a rerun does
    not reuse units made from the old ones (it names the difference; --force reruns them)."""
    declared = {"my_set": {**MAPPING, "csv": str(dataset), "images": str(dataset.parent)}}
    options = {"define_datasets": declared, "splits": 1, "runs": str(tmp_path / "runs"),
               "device": "cpu", "models": ("piqe",), "recipe": "cpu_demo"}
    first = harness.evaluate("comparison", datasets=["my_set"], **options)
    assert first.done == 1
    digest = hashlib.sha256(dataset.read_bytes()).hexdigest()
    assert first.units[0].config["data_versions"] == {"my_set": digest}
    assert harness.evaluate("comparison", datasets=["my_set"], **options).skipped == 1
    dataset.write_text(dataset.read_text().replace(",r0.png,", ",r0.png,", 1)[:-1] + "\n")
    lines = dataset.read_text().splitlines()
    lines[1] = lines[1].replace(lines[1].split(",")[1], "4.99")  # one score edited
    dataset.write_text("\n".join(lines) + "\n")
    with pytest.raises(harness.ResultsError, match=r"data_versions\.my_set: stored"):
        harness.evaluate("comparison", datasets=["my_set"], **options)
    rerun = harness.evaluate("comparison", datasets=["my_set"], force=True, **options)
    assert rerun.done == 1 and rerun.units[0].config["data_versions"]["my_set"] != digest
