"""The analyses of issue 17 (routing, stage-feature separability): every number against a hand
computation on a small fixture, then both protocols end to end with resume and leaderboard."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from commands import bench_here, counts
from scipy import stats

from harness.data.records import ImageRecord
from harness.engine import analyses
from harness.engine.families.probe import stage_separability
from harness.errors import InvalidOptionError
from harness.plan.protocols import load_protocol, parse_protocol
from harness.reporting.analyses import (
    ALPHA,
    RoutingCell,
    analyses_document,
    block_analyses,
    routing_cells,
    routing_table,
)
from harness.reporting.leaderboard_format import read_leaderboard_document
from harness.reporting.views import Table
from harness.results import metrics
from harness.results.schema import UnitResult
from harness.results.store import read_result
from lifeiqa.layers import SparseMoE


def test_silhouette_matches_a_hand_computation():
    # types A = {0, 1}, B = {4, 6} on a line: (b - a) / max(a, b) per point
    x = np.array([[0.0], [1.0], [4.0], [6.0]])
    expected = (4 / 5 + 3 / 4 + 1.5 / 3.5 + 3.5 / 5.5) / 4
    assert analyses.silhouette_score(x, ["A", "A", "B", "B"]) == pytest.approx(expected)
    # a point alone in its type scores 0: A = {0, 1}, B = {4}, C = {10}; b is the nearest type
    x = np.array([[0.0], [1.0], [4.0], [10.0]])
    expected = ((4 - 1) / 4 + (3 - 1) / 3 + 0 + 0) / 4
    assert analyses.silhouette_score(x, ["A", "A", "B", "C"]) == pytest.approx(expected)
    assert math.isnan(analyses.silhouette_score(x, ["A"] * 4))


def test_knn_accuracy_matches_a_hand_computation():
    train = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    labels = ["a", "a", "b", "b", "b", "a"]
    test = np.array([[0.5], [11.2], [1.6]])
    # 0.5 -> 0, 1, 2 -> a a b: a (right); 11.2 -> 11, 12, 10 -> b a b: b (right);
    # 1.6 -> 2, 1, 0 -> b a a: a (wrong: truth b)
    assert analyses.knn_accuracy(train, labels, test, ["a", "b", "b"], k=3) == pytest.approx(2 / 3)
    # a tie goes to the nearest of the tied types: 1.6 with k=2 -> 2 (b), 1 (a) -> b
    assert analyses.knn_accuracy(train, labels, test[2:], ["b"], k=2) == 1.0


def test_pca_map_projects_on_the_training_axes():
    train = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    points = analyses.pca_2d(train, np.array([[1.5, 1.5], [3.5, 3.5]]))
    np.testing.assert_allclose(points[:, 0], [0.0, 2 * math.sqrt(2)], atol=1e-12)  # |(2, 2)|
    np.testing.assert_allclose(points[:, 1], [0.0, 0.0], atol=1e-12)


def test_stage_separability_averages_each_image_crops_and_skips_untyped_images():
    def record(i, distortion):
        return ImageRecord(image_id=str(i), path=Path(f"{i}.png"), score=1.0, group=str(i),
                           distortion=distortion)

    train = [record(0, "a"), record(1, "b"), record(2, None)]
    test = [record(3, "a"), record(4, "b")]
    # two crops per image; the image's feature is their mean: 0, 10, (untyped), 1, 9
    x_train = np.array([[-1.0], [1.0], [9.0], [11.0], [50.0], [50.0]])
    x_test = np.array([[0.0], [2.0], [9.0], [9.0]])
    found = stage_separability(x_train, train, 2, x_test, test, 2, stride=8)
    assert found["stage"] == 2 and found["knn_accuracy"] == 1.0
    # standardised with the training images 0 and 10 (mean 5, std 5): test at -0.8 and 0.8
    assert found["silhouette"] == 0.0  # each test type has one image
    np.testing.assert_allclose(np.abs(found["embedding"]["points"])[:, 0], [0.8, 0.8], atol=1e-4)
    assert found["embedding"]["labels"] == ["a", "b"]
    with pytest.raises(InvalidOptionError, match="distortion types"):
        stage_separability(x_train, train, 2, x_test, [record(3, "a"), record(4, "a")], 2, 8)


def test_mutual_information_and_permutation_p_value_by_hand():
    assert analyses.mutual_information(np.array([[2.0, 0.0], [0.0, 2.0]])) == pytest.approx(1.0)
    assert analyses.mutual_information(np.array([[1.0, 1.0], [1.0, 1.0]])) == pytest.approx(0.0)
    # p = 0.25 log2(0.25 / (0.5 * 0.375)) + 0.25 log2(0.25 / (0.5 * 0.625)) + 0 + 0.5 log2(...)
    counts = np.array([[1.0, 1.0], [0.0, 2.0]])
    joint = counts / 4
    expected = sum(joint[i, j] * math.log2(joint[i, j] / (joint[i].sum() * joint[:, j].sum()))
                   for i in range(2) for j in range(2) if joint[i, j])
    assert analyses.mutual_information(counts) == pytest.approx(expected)
    # four images, two types, each type its own expert: of the 6 distinct labellings, 2 reach
    # the observed 1 bit, so p -> 1/3
    selections = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = np.array([0, 0, 1, 1])
    p = analyses.permutation_p_value(selections, labels, 1.0, 3000, np.random.default_rng(0))
    assert p == pytest.approx(1 / 3, abs=0.03)


def test_permutation_strata_are_content_group_and_level_or_the_group_where_unknown():
    strata, scheme = analyses.permutation_strata(["r1", "r1", "r2", "r1"], [1, 2, 1, 1])
    assert scheme == "within content group and level"
    assert strata[0] == strata[3] and len(set(strata[:3])) == 3
    strata, scheme = analyses.permutation_strata(["r1", "r1", "r2"], [None, None, None])
    assert scheme == "within content group" and strata[0] == strata[1] != strata[2]
    strata, scheme = analyses.permutation_strata(["r1", "r1", "r1"], [None, 2, None])
    assert scheme.startswith("within content group and level (content group alone")
    assert strata[0] == strata[2] != strata[1]
    with pytest.raises(InvalidOptionError, match="2 content groups for 3 levels"):
        analyses.permutation_strata(["r1", "r2"], [1, 1, 1])


def test_permutations_within_strata_by_hand():
    # two strata of two images, types 0 and 1 in each, each type its own expert (1 bit). Within
    # strata there are 4 labellings: both kept or both swapped give 1 bit, one swap 0, so
    # p -> 1/2; over all images (6 labellings, 2 of them at 1 bit) it is 1/3
    selections = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    labels, strata = np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])
    within = analyses.permutation_p_value(selections, labels, 1.0, 3000,
                                          np.random.default_rng(0), strata)
    assert within == pytest.approx(1 / 2, abs=0.03)
    over_all = analyses.permutation_p_value(selections, labels, 1.0, 3000,
                                            np.random.default_rng(0))
    assert over_all == pytest.approx(1 / 3, abs=0.03)
    # a stratum whose images share a type never changes: with every stratum so, p is 1 exactly
    alone = analyses.permutation_p_value(selections, labels, 1.0, 50, np.random.default_rng(0),
                                         np.array([0, 1, 2, 3]))
    assert alone == 1.0
    np.testing.assert_array_equal(analyses.informative_strata(labels, np.array([0, 0, 1, 2])),
                                  [0])


def test_routing_with_no_stratum_of_two_types_has_no_p_value_and_says_why():
    logits = np.random.default_rng(0).normal(size=(4, 3, 4))
    # each reference at each level carries one type (or one image): nothing can be permuted
    found = analyses.routing(logits, ["A", "B", "A", "B"], ["r1", "r2", "r3", "r3"],
                             [1, 1, 1, 2], top_k=2, permutations=20)
    assert found["p_value"] is None and found["informative_strata"] == 0
    assert "no stratum (within content group and level) of the 4 test images holds two " \
        "distortion types" in found["p_value_reason"]
    assert found["mutual_information"] >= 0  # the rest of the record is still computed
    with pytest.raises(InvalidOptionError, match="4 images of logits, 4 types and 3 content"):
        analyses.routing(logits, ["A", "B", "A", "B"], ["r1", "r2", "r3"], [1, 1, 1],
                         top_k=2)


# --- the routing test's size and power on content-balanced data (issue 24) --------------------


def _simulated_routing(rng: np.random.Generator, type_effect: float) -> tuple:
    """A reference-based test part: 8 references x 3 levels x 5 types (every reference carries
    every type at every level, as KADID-10k and TID2013), 8 tokens per image, 4 experts. The
    router's logits: a strong content effect per reference (sd 6), a level effect (sd 1), a type
    effect (sd ``type_effect``, 0: none) and per-token noise (sd 1)."""
    groups, levels, types, tokens, experts = 8, 3, 5, 8, 4
    g, lv, t = (a.ravel() for a in np.meshgrid(np.arange(groups), np.arange(levels),
                                                np.arange(types), indexing="ij"))
    means = (rng.normal(0, 6.0, (groups, experts))[g] + rng.normal(0, 1.0, (levels, experts))[lv]
             + rng.normal(0, type_effect, (types, experts))[t])
    logits = means[:, None, :] + rng.normal(0, 1.0, (len(g), tokens, experts))
    return logits, [f"type{x}" for x in t], [f"ref{x}" for x in g], [int(x) + 1 for x in lv]


SIMULATIONS, SIMULATED_PERMUTATIONS = 200, 99  # (1 + hits) / 100 <= 0.05 is an exact 5 % test


def _rejections(type_effect: float, seed: int) -> tuple[int, int]:
    """Of SIMULATIONS simulated test parts, how many reject at ALPHA: the routing record's test
    (within content group and level), and the same statistic shuffled over all images."""
    rng = np.random.default_rng(seed)
    within = over_all = 0
    for i in range(SIMULATIONS):
        logits, labels, groups, levels = _simulated_routing(rng, type_effect)
        found = analyses.routing(logits, labels, groups, levels, top_k=1,
                                 permutations=SIMULATED_PERMUTATIONS, seed=i)
        within += found["p_value"] <= ALPHA
        index = np.array([found["distortions"].index(label) for label in labels])
        selections = analyses.top_k_selections(logits, 1).sum(1)
        over_all += analyses.permutation_p_value(
            selections, index, found["mutual_information"], SIMULATED_PERMUTATIONS,
            np.random.default_rng(i)) <= ALPHA
    return within, over_all


def test_the_routing_test_is_calibrated_under_a_strong_content_effect():
    """No type effect: the within-stratum test rejects at its nominal rate (within the central
    99.8 % of Binomial(200, 0.05)); shuffling over all images is conservative, not wrong."""
    within, over_all = _rejections(type_effect=0.0, seed=1)
    low, high = stats.binom.ppf([0.001, 0.999], SIMULATIONS, ALPHA)
    assert low <= within <= high, f"{within}/{SIMULATIONS} false positives, expected {low}..{high}"
    assert over_all <= high


def test_the_routing_test_has_power_where_shuffling_over_all_images_has_none():
    """A real type effect under a strong content effect: every reference carries every type, so
    the observed labelling is balanced over content while a shuffle over all images is not; the
    content effect then inflates the unrestricted null above the observed MI (power ~0), while
    the within-stratum null stays balanced like the data. A routing test that shuffled over all
    images fails the first assertion."""
    within, over_all = _rejections(type_effect=0.7, seed=2)
    assert within / SIMULATIONS > 0.8, f"power {within / SIMULATIONS}"
    assert over_all / SIMULATIONS < 0.05, f"unrestricted power {over_all / SIMULATIONS}"


def test_old_routing_units_read_as_shuffled_over_all_images(tmp_path):
    source = next(Path(__file__).parent.joinpath("fixtures", "results-v1").rglob("result.json"))
    result = UnitResult.from_json_dict(json.loads(source.read_text()), source)
    old = {"experts": 2, "top_k": 1, "distortions": ["a", "b"], "frequency": [[1, 0], [0, 1]],
           "test_load": [0.5, 0.5], "entropy": 0.1, "normalized_entropy": 0.2,
           "mutual_information": 1.0, "p_value": 1.0, "permutations": 999}  # before issue 24
    new = {**old, "p_value": None, "p_value_reason": "no stratum holds two types",
           "permutation": "within content group and level"}
    units = [dataclasses.replace(result, unit=name, analyses={"routing": routing})
             for name, routing in (("split_00", old), ("split_01", new))]
    (cell,) = routing_cells(units)
    assert cell.schemes == ["over all test images", "within content group and level"]
    assert cell.untestable == {"split_01": "no stratum holds two types"}
    assert cell.p_values == [1.0, None] and cell.p_values_holm == [1.0, None]
    assert "over all test images + within content group and level" in routing_table([cell]).markdown()
    document = analyses_document(units)["routing"][0]
    assert document["permutation"] == cell.schemes and document["p_values"] == [1.0, None]
    tables, figures = block_analyses(units, None, "x")
    parts = "".join(t.markdown() for t in tables)
    assert figures == []  # no folder, no figures
    assert "split_01: no p-value: no stratum holds two types" in parts
    assert "'within content group and level' shuffles them only among the test images" in parts


def test_routing_counts_splits_significant_after_holm_not_raw():
    # sorted p 0.004, 0.02, 0.3, 0.5, 0.9 -> Holm 0.02, 0.08, 0.9, 1, 1: one split, where the
    # raw count would say two
    p_values = [0.3, 0.02, 0.9, 0.004, 0.5]
    summary = metrics.summarize([0.01] * 5)
    cell = RoutingCell("synth", "lifeiqa", [f"split{i}" for i in range(5)], ["a", "b"],
                       np.full((2, 2), 0.5), summary, p_values, summary, None, None,
                       ["within content group and level"] * 5)
    np.testing.assert_allclose(cell.p_values_holm, [0.9, 0.08, 1.0, 0.02, 1.0])
    assert cell.significant == 1
    assert "splits p_Holm < 0.05" in routing_table([cell]).headers
    assert _row(routing_table([cell]))["splits p_Holm < 0.05"] == "1/5"
    assert _row(routing_table([cell]))["types permuted"] == "within content group and level"


def test_an_untestable_split_is_no_test_in_holm_nor_in_the_count():
    # split1 has no p: Holm adjusts the other two (0.01 -> 0.02, 0.04 -> 0.04), and the row
    # says 2/2 tested with 1 untestable, not 2/3
    summary = metrics.summarize([0.01] * 3)
    cell = RoutingCell("synth", "lifeiqa", ["split0", "split1", "split2"], ["a", "b"],
                       np.full((2, 2), 0.5), summary, [0.04, None, 0.01], summary, None, None,
                       ["within content group"] * 3, {"split1": "no stratum holds two types"})
    assert cell.p_values_holm == [pytest.approx(0.04), None, pytest.approx(0.02)]
    assert cell.significant == 2 and cell.p_median == pytest.approx(0.025)
    row = _row(routing_table([cell]))
    assert row["splits p_Holm < 0.05"] == "2/2 (1 untestable)" and row["p median"] == "0.025"
    none = RoutingCell("synth", "lifeiqa", ["split0"], ["a", "b"], np.full((2, 2), 0.5),
                       summary, [None], summary, None, None, ["within content group"],
                       {"split0": "no stratum holds two types"})
    assert none.p_median is None and none.p_values_holm == [None] and none.significant == 0
    row = _row(routing_table([none]))
    assert row["p median"] == "-" and row["splits p_Holm < 0.05"] == "0/0 (1 untestable)"


def _row(table: Table) -> dict[str, str]:
    """The one row of a table, by column header."""
    (row,) = table.rows
    return dict(zip(table.headers, row, strict=True))


def test_router_entropy_and_the_routing_record_by_hand():
    assert analyses.router_entropy(np.zeros((3, 4))) == pytest.approx(math.log(4))
    assert analyses.router_entropy(np.array([[100.0, 0.0, 0.0, 0.0]])) == pytest.approx(0, abs=1e-9)
    # image 0 (type A) picks experts 0 and 1 on both tokens, image 1 (B) experts 2 and 3 then 0, 3
    logits = np.array([[[3.0, 2.0, 0.0, 0.0], [2.0, 3.0, 0.0, 1.0]],
                       [[0.0, 0.0, 2.0, 3.0], [2.0, 0.0, 0.0, 3.0]]])
    found = analyses.routing(logits, ["A", "B"], ["ref0", "ref0"], [3, 3], top_k=2,
                             permutations=10)
    assert found["distortions"] == ["A", "B"]
    assert found["permutation"] == "within content group and level"
    assert (found["strata"], found["informative_strata"], found["informative_images"]) == (1, 1, 2)
    assert 0 < found["p_value"] <= 1 and found["p_value_reason"] is None
    np.testing.assert_allclose(found["frequency"], [[0.5, 0.5, 0, 0], [0.25, 0, 0.25, 0.5]])
    np.testing.assert_allclose(found["test_load"], [3 / 8, 2 / 8, 1 / 8, 2 / 8])
    counts = np.array([[2.0, 2.0, 0.0, 0.0], [1.0, 0.0, 1.0, 2.0]])
    assert found["mutual_information"] == pytest.approx(analyses.mutual_information(counts))
    assert found["entropy"] == pytest.approx(analyses.router_entropy(logits))
    assert found["normalized_entropy"] == pytest.approx(found["entropy"] / math.log(4))


def test_router_recorder_counts_training_tokens_and_captures_on_request():
    torch.manual_seed(0)
    moe = SparseMoE(8, 16, 4, 2, 0.0)
    recorder = analyses.RouterRecorder(moe.router, 2)
    x = torch.randn(5, 3, 8)
    moe.train()
    moe(x)
    expected = moe.route(x)[1].reshape(-1, 4).sum(0)  # the 0/1 selections SparseMoE uses
    moe.eval()
    moe(x)  # evaluation is not training load
    entries = []
    record = recorder.on_epoch(entries.append)
    record({"epoch": 1})
    np.testing.assert_allclose(entries[0]["expert_load"], (expected / expected.sum()).numpy(),
                               atol=1e-6)
    assert recorder.counts.sum() == 0  # reset for the next epoch
    with recorder.capture() as captured:
        moe(x)
    torch.testing.assert_close(captured[0], moe.router(x))
    recorder.remove()
    moe(x)
    assert recorder.counts.sum() == 0


def test_protocols_declare_their_analysis_and_unknown_ones_are_refused():
    assert load_protocol("routing").analysis == "routing"
    assert "no_balance_loss" in load_protocol("routing").baselines
    assert load_protocol("feature-separability").analysis == "separability"
    with pytest.raises(InvalidOptionError, match="analysis: 'routng': expected one of"):
        parse_protocol({"name": "x", "version": 1, "kind": "splits", "analysis": "routng"}, "x")


FAST = ["--model", "lifeiqa_tiny", "--synth-size", "tiny", "--splits", "2", "--set", "epochs=2",
        "--set", "train_crops=2", "--set", "test_crops=2", "--set", "batch_size=32"]


@pytest.fixture
def bench(capsys: pytest.CaptureFixture[str]):
    """``lifeiqa-bench ARGS`` in this process (no interpreter to start): status and output."""
    return lambda *args: bench_here(capsys, *args)


@pytest.mark.slow
def test_routing_protocol_end_to_end_resumes_and_reports(bench, tmp_path):
    runs = tmp_path / "runs"
    args = ("run", "--protocol", "routing", "--datasets", "synth-kadid10k", "--runs", str(runs),
            *FAST)
    first = bench(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    results = [read_result(p) for p in sorted(runs.rglob("result.json"))]
    assert sorted(r.model.name for r in results) == ["lifeiqa_tiny"] * 2 + ["no_balance_loss"] * 2
    for result in results:
        routing = result.analyses["routing"]
        np.testing.assert_allclose(np.sum(routing["frequency"], 1), 1.0, atol=1e-5)
        assert 0 < routing["p_value"] <= 1 and routing["experts"] == 4
        # every reference of the synthetic set carries every type at every level
        assert routing["permutation"] == "within content group and level"
        assert routing["informative_strata"] == routing["strata"] > 0
        assert [len(e["expert_load"]) for e in result.history] == [4, 4]
    no_balance = next(r for r in results if r.model.name == "no_balance_loss")
    assert no_balance.config["recipe"]["aux_weight"] == 0 == no_balance.config["recipe"]["z_weight"]
    assert no_balance.config["analysis"] == "routing"
    again = bench(*args, "--json")
    assert again.returncode == 0 and counts(again.stdout) == (0, 4, 0)
    # the table's numbers are the medians over the stored units
    cells = {c.model: c for c in routing_cells(results)}
    full = [r.analyses["routing"] for r in results if r.model.name == "lifeiqa_tiny"]
    assert cells["lifeiqa_tiny"].mutual_information.median == pytest.approx(
        np.median([f["mutual_information"] for f in full]))
    np.testing.assert_allclose(cells["lifeiqa_tiny"].frequency,
                               np.mean([f["frequency"] for f in full], axis=0))
    board = bench("leaderboard", "routing", "--runs", str(runs), "--out", str(tmp_path / "board"))
    assert board.returncode == 0, board.stderr
    text = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "Expert routing by distortion type" in text and "-routing.png" in text
    assert "| within content group and level |" in text
    document = read_leaderboard_document(tmp_path / "board" / "leaderboard.json")  # validated
    (routed,) = [b for b in document["blocks"] if b["analyses"].get("routing")]
    assert {tuple(r["permutation"]) for r in routed["analyses"]["routing"]} == \
        {("within content group and level",) * 2}
    assert "-load.png" in text
    assert all(p.stat().st_size > 0 for p in (tmp_path / "board" / "figures").glob("*.png"))


@pytest.mark.slow
def test_feature_separability_end_to_end(bench, tmp_path):
    runs = tmp_path / "runs"
    run = bench("run", "--protocol", "feature-separability", "--runs", str(runs), *FAST)
    assert run.returncode == 0, run.stdout + run.stderr
    results = [read_result(p) for p in sorted(runs.rglob("result.json"))]
    assert sorted({r.analyses["separability"]["stage"] for r in results}) == [1, 2, 3, 4]
    for result in results:
        found = result.analyses["separability"]
        assert -1 <= found["silhouette"] <= 1 and 0 <= found["knn_accuracy"] <= 1
        assert len(found["embedding"]["points"]) == result.split.test_images
    board = bench("leaderboard", "feature-separability", "--runs", str(runs), "--out",
                  str(tmp_path / "board"))
    assert board.returncode == 0, board.stderr
    text = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "Stage-feature separability" in text and "-embedding.png" in text


def test_a_version_2_result_reads_with_no_analyses(tmp_path):
    source = next(Path(__file__).parent.joinpath("fixtures", "results-v1").rglob("result.json"))
    current = UnitResult.from_json_dict(json.loads(source.read_text()), source)
    document = current.to_json_dict()
    assert document["analyses"] == {}
    del document["analyses"]
    document["schema_version"] = 2
    assert UnitResult.from_json_dict(document, "v2").analyses == {}
