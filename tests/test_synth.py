"""Synthetic datasets in the real layouts, read by the real loaders."""

import csv
import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from commands import bench

from harness.data.registry import load_dataset
from harness.data.synth import generate
from harness.data.synth.content import content_groups, spectral_exponent
from harness.data.synth.generate import MANIFEST, SynthSize, synthesize
from harness.data.synth.manifest import read_manifest
from harness.plan.splits import freeze_splits, read_split


@pytest.fixture(scope="module")
def kadid_like(tmp_path_factory):
    return synthesize("kadid10k", tmp_path_factory.mktemp("synth") / "kadid", "tiny", seed=5)


@pytest.mark.slow
def test_check_command_reads_the_kadid_like_set(kadid_like):
    result = bench("datasets", "check", str(kadid_like), "--dataset", "kadid10k")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "images: 250   content groups: 2" in result.stdout
    assert "distortion types (25)" in result.stdout
    assert "no problems found" in result.stdout


def test_labels_carry_the_distortion_severity(kadid_like):
    dataset = load_dataset("kadid10k", kadid_like)
    by_level = {level: np.mean([r.score for r in dataset.records if r.level == level])
                for level in range(1, 6)}
    means = [by_level[level] for level in range(1, 6)]
    assert all(a > b for a, b in itertools.pairwise(means)), means  # KADID DMOS: higher is better
    assert min(r.score for r in dataset.records) >= 1.0 and max(r.score for r in dataset.records) <= 5.0


def test_generation_is_deterministic_and_reused(kadid_like, tmp_path):
    again = synthesize("kadid10k", tmp_path / "kadid", "tiny", seed=5)
    files = sorted(p.relative_to(kadid_like) for p in kadid_like.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for relative in files:
        if relative.name != MANIFEST:  # the manifest records the wall time
            assert (kadid_like / relative).read_bytes() == (again / relative).read_bytes(), relative
    stamp = (again / "dmos.csv").stat().st_mtime_ns
    synthesize("kadid10k", tmp_path / "kadid", "tiny", seed=5)
    assert (again / "dmos.csv").stat().st_mtime_ns == stamp  # up to date: not regenerated
    # what the data step asks before it starts generator processes: only for what is missing
    assert generate.is_synthesized("kadid10k", again, "tiny", seed=5)
    assert not generate.is_synthesized("kadid10k", again, "tiny", seed=6)
    assert not generate.is_synthesized("kadid10k", again, "small", seed=5)
    assert not generate.is_synthesized("kadid10k", tmp_path / "elsewhere", "tiny", seed=5)


def test_tid_and_koniq_like_sets_load_with_the_real_loaders(tmp_path):
    tid = load_dataset("tid2013", synthesize("tid2013", tmp_path / "tid", "tiny", seed=1))
    assert len(tid.records) == 2 * 24 * 5 and len(tid.groups) == 2
    assert len({r.distortion for r in tid.records}) == 24
    assert all(0 <= r.score <= 9 for r in tid.records)
    koniq_root = synthesize("koniq10k", tmp_path / "koniq", "tiny", seed=1)
    koniq = load_dataset("koniq10k", koniq_root)
    # 24 images cut from 4 sources: each source is one content group
    assert len(koniq.records) == 24 and len(koniq.groups) == 4
    with open(koniq_root / "koniq10k_scores_and_distributions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    counts = [sum(int(row[f"c{i}"]) for i in range(1, 6)) for row in rows]
    assert all(c == int(row["c_total"]) for c, row in zip(counts, rows, strict=True))


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a synthetic dataset"):
        synthesize("kadid10k", tmp_path / "precious", "tiny")
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "keep me"


# the demo's catalogue and crops at a test's resolution: three photos, three views of each
CROPS = SynthSize(groups=3, height=48, width=64, authentic_images=6, levels=1, crops=3,
                  catalogue="installed")


@pytest.fixture(scope="module")
def cropped(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(generate.SIZES, "test-crops", CROPS)
        return synthesize("kadid10k", tmp_path_factory.mktemp("synth") / "crops", "test-crops")


def test_crops_of_one_photo_are_one_content_group(cropped):
    dataset = load_dataset("kadid10k", cropped)
    sources = read_manifest(cropped)["details"]["groups"]
    by_group = {}
    for record in dataset.records:
        by_group.setdefault(record.group, set()).add(sources[record.image_id])
    # one source per group and one group per source
    assert all(len(found) == 1 for found in by_group.values()), by_group
    assert sorted(s for found in by_group.values() for s in found) == \
        ["photo:astronaut", "photo:chelsea", "photo:coffee"]
    # several references per group, each with some of the group's distortions
    references = {}
    for record in dataset.records:
        references.setdefault(record.group, set()).add(record.image_id.split("_")[0])
    assert all(len(refs) == 3 for refs in references.values()), references
    # every type once per group (levels=1), spread over the group's references
    assert len(dataset.records) == 3 * 25
    assert {len({r.distortion for r in dataset.records if r.group == g})
            for g in dataset.groups} == {25}


def test_split_files_keep_every_view_of_a_source_on_one_side(cropped, tmp_path):
    dataset = load_dataset("kadid10k", cropped)
    sources = read_manifest(cropped)["details"]["groups"]
    source_of_group = {r.group: sources[r.image_id] for r in dataset.records}
    for path in freeze_splits("synth", dataset.groups, tmp_path, count=10, test_fraction=0.34):
        split = read_split(path, dataset.groups)
        parts = [{source_of_group[g] for g in part}
                 for part in (split.train, split.test, split.validation)]
        assert parts[1] and not (parts[0] & parts[1] or parts[0] & parts[2] or
                                 parts[1] & parts[2]), path


def test_procedural_content_has_a_natural_power_spectrum():
    rng = np.random.default_rng(0)
    # the estimator: white noise is flat, 1/f^2 noise has exponent 2
    assert abs(spectral_exponent(rng.normal(size=(192, 256)))) < 0.2
    spectrum = np.fft.rfft2(rng.normal(size=(192, 256)))
    radius = np.hypot(np.fft.fftfreq(192)[:, None], np.fft.rfftfreq(256)[None, :])
    radius[0, 0] = 1
    pink = np.fft.irfft2(spectrum / radius, s=(192, 256))
    assert spectral_exponent(pink) == pytest.approx(2.0, abs=0.15)
    # the demo set's procedural content (natural images: about 1.6-2.6)
    small = generate.SIZES["small"]
    procedural = [group.references[0].image
                  for group in content_groups(small.groups, small.height, small.width, 0,
                                              small.catalogue, small.crops)
                  if group.name.startswith("dead_leaves")]
    exponents = [spectral_exponent(image) for image in procedural]
    assert len(procedural) >= 15
    assert all(1.6 <= a <= 2.7 for a in exponents), exponents
    assert 2.0 <= float(np.median(exponents)) <= 2.5, exponents


def test_two_makers_of_one_set_make_it_once_and_the_second_reads_the_first(tmp_path, monkeypatch):
    """Two processes that need the same set at once (two test workers, a pool's workers): one
    makes it, the other waits and reads that one. Both made it before, and the second replaced
    the folder while the first's run read it (images of its dmos.csv went missing)."""
    made, real = [], generate.WRITERS["csiq"]

    def writer(config, staging):  # the real writer, counted
        made.append(staging)
        return real(config, staging)

    monkeypatch.setitem(generate.WRITERS, "csiq", writer)
    out = tmp_path / "synth" / "csiq-tiny"
    with ThreadPoolExecutor(2) as pool:  # two locks of one folder conflict within a process too
        folders = list(pool.map(lambda _: synthesize("csiq", out, "tiny"), range(2)))
    assert folders == [out, out] and len(made) == 1
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no lock file left
