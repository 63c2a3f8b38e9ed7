"""Faults injected for real into the harness: a run killed at a random point, two runs sharing
one results store, a diverging unit, a file-size limit and a full disk, corrupt cache entries and
a corrupt image. Real ``lifeiqa-bench`` processes, real files, real OS errors; the data is a
12-image KADID-10k-layout fixture, so each run takes seconds.
"""

import errno
import io
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from commands import counts
from dataset_fixtures import WRITERS, write_kadid10k_release

import lifeiqa
from harness.cli import main
from harness.data.cache import CHECKSUM, DecodedImageCache, ImageReadError, file_digest
from harness.data.layout import DatasetLayoutError
from harness.data.registry import load_dataset
from harness.data.validate import require_valid
from harness.engine.features import tensor_checksum
from harness.engine.train import NonFiniteLossError, train_finetune, train_frozen
from harness.plan.jobs import Job, UnitKey
from harness.plan.recipes import get_recipe
from harness.results.schema import UnitResult
from harness.results.store import LOCK, ResultsStore, UnitBusyError, read_result
from lifeiqa import BackboneFeatures

SCRIPT = shutil.which("lifeiqa-bench") or str(Path(sys.executable).parent / "lifeiqa-bench")
FAST = ["--model", "lifeiqa_tiny", "--set", "epochs=2", "--set", "train_crops=1",
        "--set", "test_crops=1", "--set", "batch_size=64"]
UNITS = ["split_00", "split_01"]
UNIT_DIR = Path("splits", "lifeiqa_tiny", "kadid10k")  # <runs>/<suite>/<model>/<dataset>


@dataclass
class Bench:
    """``lifeiqa-bench run`` of the splits protocol (2 splits) on the fixture."""

    data: Path
    cache: Path

    def argv(self, runs: Path) -> list[str]:
        return ["run", "--protocol", "splits", "--datasets", "kadid10k", "--dataset-root",
                f"kadid10k={self.data}", "--splits", str(len(UNITS)), "--runs", str(runs), *FAST]

    def env(self, cache: Path | None = None) -> dict[str, str]:
        # no bytecode writes into the shared tree (matters under a file-size limit)
        return {**os.environ, "LIFEIQA_CACHE": str(cache or self.cache),
                "PYTHONDONTWRITEBYTECODE": "1"}

    def start(self, runs: Path, cache: Path | None = None, file_limit: int | None = None
              ) -> subprocess.Popen:
        return subprocess.Popen([SCRIPT, *self.argv(runs)], env=self.env(cache), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=None if file_limit is None else _file_limit(file_limit))

    def run(self, runs: Path, cache: Path | None = None, file_limit: int | None = None
            ) -> subprocess.CompletedProcess:
        process = self.start(runs, cache, file_limit)
        out, err = process.communicate(timeout=600)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def here(self, runs: Path, cache: Path | None = None, *extra: str
             ) -> subprocess.CompletedProcess:
        """The same command in this process (no interpreter start-up to pay)."""
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
            patch.setenv("LIFEIQA_CACHE", str(cache or self.cache))
            code = main([*self.argv(runs), *extra])
        return subprocess.CompletedProcess(["main"], code, out.getvalue(), err.getvalue())


@dataclass
class Reference:
    """An uninterrupted run: its results store, per-unit results, summary table and the cache
    entries it wrote (relative to the cache folder)."""

    runs: Path
    results: dict[str, UnitResult]
    table: list[str]
    cache_entries: list[Path]

    @property
    def unit_seconds(self) -> float:
        return sum(r.wall_seconds for r in self.results.values())


def _file_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def results(runs: Path) -> dict[str, UnitResult]:
    """unit -> its result.json; fails on any that does not parse (a partial file)."""
    return {p.parent.name: read_result(p) for p in sorted(runs.rglob("result.json"))}


def table(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("|")]


def assert_same_metrics(ours: dict[str, UnitResult], theirs: dict[str, UnitResult]) -> None:
    assert sorted(ours) == sorted(theirs)
    for unit in ours:
        assert ours[unit].metrics.to_dict() == pytest.approx(theirs[unit].metrics.to_dict(),
                                                             abs=1e-6), unit


def temporary_files(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("*.tmp")]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Bench:
    root = tmp_path_factory.mktemp("faults")
    write_kadid10k_release(root / "kadid", bad_rows=False)
    return Bench(root / "kadid", root / "cache")


@pytest.fixture(scope="module")
def reference(bench, tmp_path_factory) -> Reference:
    runs = tmp_path_factory.mktemp("reference")
    done = bench.here(runs)
    assert done.returncode == 0, done.stdout + done.stderr
    entries = [p.relative_to(bench.cache) for p in sorted(bench.cache.rglob("*"))
               if p.suffix in (".npy", ".safetensors")]
    return Reference(runs, results(runs), table(done.stdout), entries)


def _seed_with_first_unit(reference: Reference, runs: Path) -> Path:
    """A results store holding the reference's split files and its first unit only."""
    shutil.copytree(reference.runs, runs)
    for unit in UNITS[1:]:
        shutil.rmtree(runs / UNIT_DIR / unit)
    return runs / UNIT_DIR / UNITS[0] / "result.json"


# --- interruption and concurrency --------------------------------------------------------------


def _wait_for_a_lock(runs: Path, process: subprocess.Popen) -> None:
    """Until ``process`` holds a unit (or has ended)."""
    deadline = time.time() + 300
    while not any(runs.rglob(LOCK)) and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)


@pytest.mark.slow
def test_kill_at_a_random_point_then_rerun_matches_the_uninterrupted_run(bench, reference, tmp_path):
    seed = random.SystemRandom().randrange(2**32)
    runs, cache = tmp_path / "runs", tmp_path / "cache"  # a cold cache: cache writes can be hit too
    process = bench.start(runs, cache)
    _wait_for_a_lock(runs, process)  # the first unit has started: every moment from here is fair
    delay = random.Random(seed).uniform(0, reference.unit_seconds)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    where = f"(seed {seed}: killed {delay:.2f} s after the first unit started)"

    finished = results(runs)  # whatever is there parses: no partial result.json
    assert all(r.metrics.n > 0 for r in finished.values()), where
    stamps = {u: (runs / UNIT_DIR / u / "result.json").stat().st_mtime_ns for u in finished}
    resumed = bench.here(runs, cache, "--json")
    assert resumed.returncode == 0, where + resumed.stdout + resumed.stderr
    assert counts(resumed.stdout) == (len(UNITS) - len(finished), len(finished), 0), where
    for unit, stamp in stamps.items():  # finished units were not redone
        assert (runs / UNIT_DIR / unit / "result.json").stat().st_mtime_ns == stamp, where
    assert_same_metrics(results(runs), reference.results)
    # what the resumed run reports is every unit, with the uninterrupted run's numbers
    reported = json.loads(resumed.stdout)["units"]
    for metric in ("srcc", "plcc"):
        assert {u["unit"]: u[metric] for u in reported} == pytest.approx(
            {unit: getattr(r.metrics, metric) for unit, r in reference.results.items()},
            abs=1e-6), where
    assert not list(runs.rglob(LOCK)), where


@pytest.mark.slow
def test_two_runs_on_one_store_run_each_unit_exactly_once(bench, reference, tmp_path):
    runs = tmp_path / "runs"
    other = bench.start(runs)
    _wait_for_a_lock(runs, other)  # it is inside its first unit: now this process runs too
    ours = bench.here(runs)
    out, err = other.communicate(timeout=600)
    both = [ours, subprocess.CompletedProcess(other.args, other.returncode, out, err)]
    done = sorted(u for r in both for u in re.findall(r"kadid10k (split_\d\d): SRCC", r.stdout))
    assert done == UNITS, both
    busy = [line for r in both for line in (r.stdout + r.stderr).splitlines()
            if "this run waits for it" in line]
    assert busy, "neither run met a unit the other held: the runs did not overlap"
    for line in busy:  # a unit the other process holds is said plainly, and waited for
        assert re.search(r"is being run by process \d+ on \S+ .*; this run waits for it after "
                         r"the others", line), line
    for run in both:  # deferring to another process is no failure
        assert run.returncode == 0 and "FAILED" not in run.stdout + run.stderr, \
            run.stdout + run.stderr
    assert_same_metrics(results(runs), reference.results)
    assert not list(runs.rglob(LOCK)) and not temporary_files(runs)


def test_a_unit_lock_is_exclusive_and_dies_with_its_holder(tmp_path):
    key = UnitKey("suite", "model", "data", "split_00")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom harness.plan.jobs import UnitKey\n"
         "from harness.results.store import ResultsStore\n"
         f"with ResultsStore({str(tmp_path)!r}).claim(UnitKey(*{key.parts()!r})):\n"
         "    print('held', flush=True)\n    time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        store = ResultsStore(tmp_path)
        expected = rf"being run by process {holder.pid} on {re.escape(socket.gethostname())}"
        with pytest.raises(UnitBusyError, match=expected), store.claim(key):
            pass
    finally:
        holder.kill()  # SIGKILL: no clean-up code runs in the holder
        holder.wait()
    lock = store.unit_dir(key) / LOCK
    assert lock.exists()  # left behind, but the kernel dropped its lock with the process
    with store.claim(key):
        assert lock.read_text().split()[0] == str(os.getpid())
    assert not lock.exists()


# --- a diverging unit ----------------------------------------------------------------------------


def test_a_diverging_unit_fails_alone_and_writes_no_result(bench, tmp_path, monkeypatch, capsys):
    """lr=1e30 makes Life-IQA's loss non-finite; the ridge probe on the same splits has no
    learning rate and must still run. Nothing may look like a Life-IQA result afterwards."""
    protocol = tmp_path / "diverge.yaml"
    protocol.write_text("name: diverge\nversion: '1'\nkind: splits\nsplits: 1\n"
                        "datasets: [kadid10k]\nvariants: [full]\nbaselines: [probe_stage4]\n")
    runs = tmp_path / "runs"
    monkeypatch.setenv("LIFEIQA_CACHE", str(bench.cache))
    code = main(["run", "--protocol", str(protocol), "--dataset-root", f"kadid10k={bench.data}",
                 "--runs", str(runs), *FAST, "--set", "lr=1e30"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "FAILED NonFiniteLossError: non-finite training loss in epoch 2" in out
    assert "'variant': 'full'" in out and "'lr': 1e+30" in out  # the failing unit's config
    assert "1 run, 0 already done, 1 failed" in out
    assert "FAILED lifeiqa_tiny kadid10k split_00: NonFiniteLossError" in err
    assert (runs / "diverge" / "probe_stage4" / "kadid10k" / "split_00" / "result.json").is_file()
    # no result, only the failure record, so that tables name the unit instead of losing it
    files = [p for p in (runs / "diverge" / "lifeiqa_tiny").rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["failure.json"]
    assert json.loads(files[0].read_text())["kind"] == "diverged"
    assert "| probe_stage4" in out and "| lifeiqa_tiny" not in out
    assert "lifeiqa_tiny on kadid10k: 1 unit(s) without a result, counted as failures: " \
           "split_00 (diverged: NonFiniteLossError" in out


def test_an_update_that_diverges_after_the_last_loss_is_caught():
    """One step per epoch: the loss is computed before the step that blows the weights up, so
    only the predictions show it; they must not reach the metrics as if they were scores."""
    model = lifeiqa.create_model("lifeiqa_tiny").eval()
    with torch.no_grad():  # frozen-backbone features of six crops, one per image
        out = model.forward_features(torch.rand(6, 3, 224, 224))
    features = [BackboneFeatures(out.pooled[i:i + 1], out.deepest[i:i + 1]) for i in range(6)]
    scores = np.linspace(1.0, 5.0, 6)
    recipe = get_recipe("cpu_demo").override(epochs=1, lr=1e30, batch_size=64)
    with pytest.raises(NonFiniteLossError, match="non-finite test predictions after epoch 1"):
        train_frozen(model, recipe, features[:4], scores[:4], features[4:], scores[4:])


# --- no room to write ----------------------------------------------------------------------------


def test_atomic_write_over_the_file_size_limit_keeps_the_old_file(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    code = ("from pathlib import Path\nfrom harness.fileio import atomic_write_text\n"
            f"try:\n    atomic_write_text(Path({str(target)!r}), 'x' * 100_000)\n"
            "except OSError as err:\n    print(err.errno, err)\n")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           preexec_fn=_file_limit(10_000), timeout=120)
    number, message = child.stdout.strip().split(" ", 1)
    assert int(number) == errno.EFBIG, child.stderr
    assert f"cannot write {target}: File too large" in message and "ulimit -f" in message
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_results_reach_the_disk_before_they_are_renamed_and_cache_entries_skip_it(tmp_path,
                                                                                monkeypatch):
    """A result, plan or board is fsynced (a machine crash must not leave it empty); a cache
    entry, which its reader verifies and rebuilds, is not (fsync cost the demo 12 s)."""
    from PIL import Image

    from harness.data.cache import DecodedImageCache
    from harness.fileio import atomic_write_text

    synced: list[str] = []
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    atomic_write_text(tmp_path / "result.json", "{}")
    assert len(synced) == 1 and synced[0].startswith(".result.json.")
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    cache = DecodedImageCache(tmp_path / "cache")
    assert cache.get(image).shape == (8, 8, 3)
    written = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert len(written) == 3 and len(synced) == 1  # digest memo, entry, checksum: none synced


@pytest.mark.slow
def test_file_size_limit_during_a_run_is_named_and_spares_earlier_results(bench, reference, tmp_path):
    runs = tmp_path / "runs"
    first = _seed_with_first_unit(reference, runs)
    before = first.read_bytes()
    limited = bench.run(runs, file_limit=2048)  # below a result.json, above the other files
    assert limited.returncode == 1, limited.stdout + limited.stderr
    failed = re.findall(r"cannot write (\S+): File too large \(the file is larger than", limited.stdout)
    assert failed and all(Path(p).parent.exists() for p in failed), limited.stdout
    assert "1 already done" in limited.stdout and first.read_bytes() == before
    assert sorted(results(runs)) == [UNITS[0]]
    assert not temporary_files(runs, bench.cache)


@pytest.mark.slow
def test_full_disk_during_a_run_is_named_and_spares_earlier_results(bench, reference, tmp_path):
    """A real ENOSPC: the results store on a small tmpfs, filled up, in a private mount
    namespace (root, or an unprivileged user namespace where the kernel allows one)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare(1) is not installed; the file-size-limit test covers this path")
    namespace = [unshare, "--mount"] if os.geteuid() == 0 else [
        unshare, "--user", "--map-root-user", "--mount"]
    probe = subprocess.run([*namespace, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here ({probe.stderr.strip()}); the "
                    f"file-size-limit test covers this path")
    seed, disk, out = tmp_path / "seed", tmp_path / "disk", tmp_path / "out"
    first = _seed_with_first_unit(reference, seed / "runs")
    disk.mkdir()
    out.mkdir()
    script = ('set -e; disk=$1; seed=$2; out=$3; shift 3\n'
              'mount -t tmpfs -o size=2m tmpfs "$disk"\n'
              'cp -a "$seed/." "$disk/"\n'
              'cat /dev/zero > "$disk/filler" 2>/dev/null || true\n'
              'set +e; "$@"; code=$?\n'
              'rm "$disk/filler"; cp -a "$disk/." "$out/"; exit $code\n')
    full = subprocess.run([*namespace, "sh", "-c", script, "sh", str(disk), str(seed), str(out),
                           SCRIPT, *bench.argv(disk / "runs")],
                          env=bench.env(), capture_output=True, text=True, timeout=600)
    assert full.returncode == 1, full.stdout + full.stderr
    failed = re.findall(r"cannot write (\S+): No space left on device \(the disk is full\)",
                        full.stdout)
    assert failed and all(p.startswith(str(disk / "runs")) for p in failed), full.stdout
    kept = out / "runs" / UNIT_DIR / UNITS[0] / "result.json"
    assert kept.read_bytes() == first.read_bytes()
    assert sorted(results(out / "runs")) == [UNITS[0]] and not temporary_files(out)


# --- one line for each fault ------------------------------------------------------------------


def _sigint_default() -> None:
    """SIGINT as a terminal leaves it: a shell that starts the tests in the background (``&``,
    nohup) ignores SIGINT, every child inherits that, and Python then raises no
    KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(bench: Bench, runs: Path, *extra: str) -> subprocess.CompletedProcess:
    """Ctrl-C as a terminal sends it (SIGINT to the whole process group, workers included) once
    the run is inside a unit."""
    process = subprocess.Popen([SCRIPT, *bench.argv(runs), *extra], env=bench.env(), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True, preexec_fn=_sigint_default)
    _wait_for_a_lock(runs, process)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.slow
@pytest.mark.parametrize("executor", [[], ["--executor", "pool", "--workers", "2"]],
                         ids=["local", "pool"])
def test_ctrl_c_says_what_finished_and_how_to_resume_then_the_rerun_completes(
        bench, reference, tmp_path, executor):
    runs = tmp_path / "runs"
    stopped = _interrupt(bench, runs, *executor)
    assert stopped.returncode == 130, stopped.stdout + stopped.stderr
    assert "Traceback" not in stopped.stdout + stopped.stderr
    said = [line for line in stopped.stderr.splitlines() if "interrupted" in line]
    assert len(said) == 1 and said[0].startswith("lifeiqa-bench run: error: interrupted (Ctrl-C): ")
    assert "finished" in said[0] and "run the same command again to resume" in said[0]
    resumed = bench.run(runs)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_same_metrics(results(runs), reference.results)
    assert not list(runs.rglob(LOCK)) and not temporary_files(runs)


@pytest.mark.slow
def test_a_pool_that_cannot_write_its_queue_says_where_in_one_line(bench, reference, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(reference.runs, runs)  # its split files are there: the queue is the write
    for unit in UNITS:
        shutil.rmtree(runs / UNIT_DIR / unit)
    process = subprocess.run([SCRIPT, *bench.argv(runs), "--executor", "pool", "--workers", "2"],
                             env=bench.env(), capture_output=True, text=True, timeout=300,
                             preexec_fn=_file_limit(64))
    assert process.returncode == 1, process.stdout + process.stderr
    assert "Traceback" not in process.stderr and process.stderr.strip().splitlines()[-1] \
        .startswith(f"lifeiqa-bench run: error: cannot start the pool's job queue in {runs}/splits/")
    assert "(in the runs folder" in process.stderr
    assert not list(runs.rglob("jobs.json"))  # no empty queue left behind


@pytest.mark.slow
def test_a_damaged_unit_is_named_by_every_reader_and_run_again_by_run(bench, reference, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(reference.runs, runs)
    predictions = runs / UNIT_DIR / UNITS[0] / "predictions.csv"
    rows = predictions.read_text().splitlines(keepends=True)
    kept = (len(rows) - 1) // 2
    predictions.write_text("".join(rows[:1 + kept]))  # half of its rows
    board = tmp_path / "board"
    for argv in (["summarize", "splits"], ["leaderboard", "splits", "--out", str(board)],
                 ["check", str(runs / "splits"), "--write-golden", str(tmp_path / "g.yaml")]):
        read = subprocess.run([SCRIPT, *argv, "--runs", str(runs)] if argv[0] != "check" else
                              [SCRIPT, *argv], env=bench.env(), capture_output=True, text=True,
                              timeout=300)
        assert read.returncode == 1 and len(read.stderr.strip().splitlines()) == 1, read.stderr
        assert f"{predictions}: {kept} rows, but the unit's result.json says it scored" in \
            read.stderr
        assert "and rerun the unit" in read.stderr
    assert not board.exists() and not (tmp_path / "g.yaml").exists()  # nothing of part of a unit
    split_file = runs / "splits" / "splits" / "kadid10k" / "split_01.json"
    split_file.write_text("not json")
    again = bench.run(runs)  # both units are run again, each saying why
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{kept} rows, but the unit's result.json" in again.stderr + again.stdout
    assert "the split file was changed since it ran" in again.stderr + again.stdout
    assert_same_metrics(results(runs), reference.results)
    split_file.unlink()
    gone = subprocess.run([SCRIPT, "summarize", "splits", "--runs", str(runs)], env=bench.env(),
                          capture_output=True, text=True, timeout=300)
    assert gone.returncode == 1 and f"its split file {split_file} is missing" in gone.stderr


# --- corrupt caches and images -------------------------------------------------------------------


def _damage(path: Path, truncate: bool) -> None:
    data = path.read_bytes()
    if truncate:
        path.write_bytes(data[: len(data) // 2])
    else:  # same size, flipped bytes in the data: only a checksum can tell
        flipped = bytes(b ^ 0x5A for b in data[-64:])
        path.write_bytes(data[:-64] + flipped)


def test_corrupt_cache_entries_are_rebuilt_and_results_match(bench, reference, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(bench.cache, cache)  # the reference run's warm cache, privately
    # one feature entry of each image (its name is the image's digest) is damaged, so every
    # decoded image is read again to rebuild them
    features = list({p.stem: cache / p for p in reference.cache_entries
                     if p.suffix == ".safetensors"}.values())
    images = [cache / p for p in reference.cache_entries if p.suffix == ".npy"]
    assert len(features) == len(images) == 12
    for k, path in enumerate(features + images):
        _damage(path, truncate=k % 2 == 0)
    rerun = bench.here(tmp_path / "runs", cache)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert table(rerun.stdout) == reference.table
    assert_same_metrics(results(tmp_path / "runs"), reference.results)
    # each unit's result names the entries it rebuilt: together, every damaged one, once
    recorded = [e for r in results(tmp_path / "runs").values() for e in r.rebuilt_cache_entries]
    assert sorted(recorded) == sorted(str(p) for p in features + images)
    for path in images:  # rebuilt, and whole again
        assert file_digest(path, "blake2b") == path.with_suffix(CHECKSUM).read_text()
    from safetensors import safe_open

    for path in features:
        with safe_open(str(path), "pt") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
            assert handle.metadata()["blake2b"] == tensor_checksum(tensors)


def test_an_image_damaged_after_validation_is_named_when_training_reads_it(bench, tmp_path):
    data = tmp_path / "kadid"
    shutil.copytree(bench.data, data)
    dataset, _, _ = require_valid(load_dataset("kadid10k", data))
    records = dataset.records
    victim = records[3].path
    victim.write_bytes(victim.read_bytes()[:60])  # e.g. a copy still in progress, a bad sector
    scores = torch.tensor([r.score for r in records]).numpy()
    recipe = get_recipe("cpu_demo").override(mode="finetune", epochs=1, batch_size=64,
                                             train_crops=1, test_crops=1)
    model = lifeiqa.create_model("lifeiqa_tiny")
    with pytest.raises(ImageReadError, match=re.escape(f"{victim}: cannot decode the image")):
        train_finetune(model, recipe, records[:8], scores[:8], records[8:], scores[8:],
                       DecodedImageCache(tmp_path / "images"), workers=0)


@pytest.mark.parametrize("layout, metadata", [
    ("kadid10k/release", "dmos.csv"), ("tid2013/release", "mos_with_names.txt"),
    ("spaq/release", "Annotations/MOS and Image attribute scores.xlsx"),
    ("livec/release", "Data/AllMOS_release.mat")])
def test_damaged_metadata_files_are_named(layout, metadata, tmp_path):
    written = WRITERS[layout](tmp_path)
    path = tmp_path / metadata
    path.write_bytes(b"\xff\xfe\x00garbage" + path.read_bytes()[: len(path.read_bytes()) // 3])
    with pytest.raises(DatasetLayoutError, match=re.escape(str(path))):
        load_dataset(written.dataset, tmp_path)


def test_the_runner_records_a_diverged_unit(tmp_path):
    from harness.data.sources import DataSources
    from harness.engine.runner import JobRunner
    from harness.engine.train import NonFiniteLossError
    from harness.plan.models import ModelRef
    from harness.plan.recipes import get_recipe
    from harness.results.schema import config_hash

    job = Job("s", "splits", "1.0", "splits", ModelRef("lifeiqa_tiny", "full"), "synth-kadid10k",
              "synth-kadid10k", "split_00", 0, 0, 1.0, 0.2, 0.0, "last", "none",
              get_recipe("cpu_demo"))
    runner = JobRunner(ResultsStore(tmp_path / "runs"), DataSources(), device="cpu",
                       log=lambda _: None)
    runner.record_failure(job, NonFiniteLossError("non-finite training loss in epoch 1"), "boom")
    runner.record_failure(job.__class__(**{**job.__dict__, "unit": "split_01", "split_seed": 1}),
                          ValueError("bad file"), "ValueError: bad file")
    failures = ResultsStore(tmp_path / "runs").failures("s")
    assert [(f.kind, f.model, f.unit, f.message) for f in failures] == [
        ("diverged", "lifeiqa_tiny", "split_00", "boom"),
        ("failed", "lifeiqa_tiny", "split_01", "ValueError: bad file")]
    assert failures[0].config_hash == failures[1].config_hash == config_hash(job.config())
