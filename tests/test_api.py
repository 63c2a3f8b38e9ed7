"""The Python API: the same numbers as the command line for the same options, silence unless
asked, and bad input refused before any work (API and CLI alike, exit status 2 and one line)."""

from __future__ import annotations

import pytest
from commands import bench, bench_here

import harness
from harness.errors import DataNotFoundError, InvalidOptionError, NoResultsError, UnknownNameError

OPTIONS = dict(datasets=["synth-kadid10k"], model="lifeiqa_tiny", synth_size="tiny", splits=2,
               overrides={"epochs": 1, "train_crops": 1, "test_crops": 1, "batch_size": 32})
CLI_OPTIONS = ["--datasets", "synth-kadid10k", "--model", "lifeiqa_tiny", "--synth-size", "tiny",
               "--splits", "2", "--set", "epochs=1", "--set", "train_crops=1", "--set",
               "test_crops=1", "--set", "batch_size=32"]


@pytest.mark.slow
def test_api_returns_the_numbers_the_cli_stores_and_prints_nothing(tmp_path, capfd):
    cli = bench("run", "--protocol", "splits", "--runs", str(tmp_path / "cli"), *CLI_OPTIONS)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    capfd.readouterr()

    results = harness.evaluate("splits", runs=str(tmp_path / "api"), **OPTIONS)
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == ""  # the API logs; it does not print

    assert (results.done, results.skipped, results.failed) == (2, 0, ())
    table = results.table()
    assert list(table["unit"]) == ["split_00", "split_01"]
    assert table["srcc"].dtype.kind == "f" and table["train_images"].dtype.kind == "i"
    from_cli = harness.load_results("splits", tmp_path / "cli").table()
    columns = ["model", "train_dataset", "test_dataset", "unit", "split_sha256_16", "srcc", "plcc"]
    assert from_cli[columns].to_dict("records") == table[columns].to_dict("records")

    summary = results.summary()
    assert len(summary) == 1 and summary.loc[0, "units"] == 2
    assert summary.loc[0, "srcc_median"] == pytest.approx(table["srcc"].median())
    assert results.reference() == "lifeiqa_tiny"
    # the CLI's printed table is the API's markdown
    assert results.markdown().splitlines()[0] in cli.stdout

    board = harness.leaderboard(results, tmp_path / "board", published=None)
    assert "lifeiqa_tiny" in board.read_text()

    again = harness.evaluate("splits", runs=str(tmp_path / "api"), **OPTIONS)
    assert (again.done, again.skipped) == (0, 2)  # resumed: nothing rerun


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(protocol="nonexistent"), UnknownNameError, "unknown protocol 'nonexistent'"),
    (dict(model="nosuchmodel"), UnknownNameError, "unknown model preset 'nosuchmodel'"),
    (dict(recipe="cpu_dem"), UnknownNameError, "did you mean cpu_demo"),
    (dict(overrides={"lr": "abc"}), InvalidOptionError, "lr='abc' is str, expected float"),
    (dict(overrides={"epochs": 2.5}), InvalidOptionError, "epochs=2.5 is float, expected int"),
    (dict(overrides={"epoch": 2}), UnknownNameError, "did you mean epochs"),
    (dict(data_root="/nonexistent"), DataNotFoundError, "--data-root /nonexistent: no such folder"),
    (dict(datasets=["synth-kadid"]), UnknownNameError, "unknown dataset 'synth-kadid'"),
    (dict(splits=0), InvalidOptionError, "--splits 0: expected an integer >= 1"),
    (dict(device="gpu"), InvalidOptionError, "--device 'gpu'"),
    (dict(workers=2), InvalidOptionError, "--workers: only with --executor pool"),
    (dict(executor="pool"), InvalidOptionError, "needs --gpus"),
    (dict(selection="oracle"), InvalidOptionError, "--allow-oracle"),
])
def test_bad_options_fail_before_any_work(kwargs, error, message, tmp_path, monkeypatch):
    monkeypatch.setenv("LIFEIQA_CACHE", str(tmp_path / "cache"))
    kwargs = {"protocol": "splits", **kwargs}
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")):
        harness.evaluate(kwargs.pop("protocol"), runs=str(tmp_path / "runs"), **kwargs)
    # refused up front: no synthetic data generated, no unit folder made
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()


def test_evaluate_signature_is_every_run_and_executor_option():
    """``evaluate``'s keyword-only parameters are exactly the option fields, with their
    defaults (or None for "the default"), so the reference and an editor show every option."""
    import dataclasses
    import inspect

    from harness.plan.options import ExecutorOptions, RunOptions

    run_fields = [f for f in dataclasses.fields(RunOptions) if f.name not in ("protocol", "executor")]
    fields = {f.name: f for f in (*run_fields, *dataclasses.fields(ExecutorOptions))}
    parameters = inspect.signature(harness.evaluate).parameters
    assert set(parameters) == {"protocol", "progress", *fields}
    assert all(p.kind is p.KEYWORD_ONLY for name, p in parameters.items() if name != "protocol")
    for name, field in fields.items():
        default = parameters[name].default
        declared = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        assert default is None or default == declared or tuple(default) == tuple(declared), name
    documented = inspect.getdoc(harness.evaluate)
    assert all(f"    {name}: " in documented for name in parameters if name != "protocol")


def test_an_unknown_option_is_named(tmp_path):
    with pytest.raises(TypeError, match="colour"):
        harness.evaluate("splits", colour="red", runs=str(tmp_path))  # type: ignore[call-arg]
    with pytest.raises(UnknownNameError, match="unknown option 'colour'"):
        harness.dry_run("splits", colour="red", runs=str(tmp_path))


@pytest.mark.parametrize("args, message", [
    (["run", "--protocol", "nonexistent"], "unknown protocol 'nonexistent'"),
    (["datasets", "check", "/nonexistent", "--dataset", "kadid10k"],
     "/nonexistent: dataset folder not found"),
    (["run", "--protocol", "splits", "--set", "lr=abc"], "lr='abc' is str, expected float"),
    (["run", "--protocol", "splits", "--set", "epochs=2.5"], "epochs=2.5 is float, expected int"),
    (["run", "--protocol", "splits", "--model", "nosuchmodel"], "unknown model preset"),
    (["run", "--protocol", "splits", "--data-root", "/nonexistent"], "no such folder"),
    (["run", "--protocol", "splits", "--set", "epochs"], "--set 'epochs': expected FIELD=VALUE"),
])
def test_cli_bad_input_is_one_line_and_exit_status_2(args, message, tmp_path, capsys,
                                                     monkeypatch):
    monkeypatch.setenv("LIFEIQA_CACHE", str(tmp_path / "cache"))
    runs = ["--runs", str(tmp_path / "runs")] if args[0] == "run" else []
    result = bench_here(capsys, *args, *runs)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()


def test_missing_results_are_a_typed_error(tmp_path):
    with pytest.raises(NoResultsError, match="no results under"):
        harness.load_results("nothing", tmp_path)


def test_plan_is_a_dry_run(tmp_path):
    plan = harness.dry_run("comparison", runs=str(tmp_path), **{**OPTIONS, "splits": 3})
    assert len(plan.jobs) == 3 * (len(plan.protocol.variants) + len(plan.protocol.baselines))
    assert {job.model.name for job in plan.jobs} >= {"lifeiqa_tiny", "probe_stage4", "piqe"}
    assert not tmp_path.joinpath("comparison").exists()
