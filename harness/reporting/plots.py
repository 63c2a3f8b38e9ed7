"""Leaderboard figures (matplotlib, PNG): SRCC bars with intervals, predicted vs ground truth
with the fitted logistic curve, a per-distortion heatmap, and the analyses' figures (expert x
distortion routing, expert load per epoch, 2-D maps of stage features)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import ModuleType

import numpy as np

from harness.results import metrics
from harness.results.aggregate import Cell, row_label
from harness.results.schema import UnitResult
from harness.results.store import PREDICTIONS, ResultsStore, read_predictions


def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    return plt


def srcc_bars(block: list[Cell], order: list[str], path: Path) -> Path:
    plt = _pyplot()
    datasets = sorted({c.column for c in block})
    rank = {model: index for index, model in enumerate(order)}
    rows = max(Counter(c.column for c in block).values())
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 0.35 * rows + 1.2),
                             squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        # one bar per row of the table: a model under two configs is two bars, labelled apart
        cells = sorted((c for c in block if c.column == dataset and c.model in rank),
                       key=lambda c: (rank[c.model], c.config_hash))
        models = [row_label(c, block) for c in cells]
        medians = np.array([c.srcc.median for c in cells])
        low = medians - np.array([c.srcc.ci_low for c in cells])
        high = np.array([c.srcc.ci_high for c in cells]) - medians
        ax.barh(range(len(models)), medians, xerr=[low, high], color="#4c72b0", ecolor="#333333",
                capsize=2)
        ax.set_yticks(range(len(models)), models, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("SRCC (median, order-statistic interval)")
        ax.set_title(dataset, fontsize=9)
        ax.axvline(0, color="#999999", linewidth=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _predictions(result: UnitResult, runs_root: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The unit's predictions and labels, checked against its result (every test image it
    scored, the columns it writes): a file cut short or damaged raises ResultSchemaError naming
    it, never a scatter of part of the unit under the whole unit's SRCC."""
    path = ResultsStore(runs_root).unit_dir(result.key) / PREDICTIONS
    if not path.is_file():
        return None
    table = read_predictions(path, result.metrics.n)
    return table["prediction"].to_numpy(float), table["score"].to_numpy(float)


def scatter(result: UnitResult, runs_root: Path, path: Path) -> Path | None:
    """Predicted vs ground-truth scores of one unit, with the 4-parameter logistic fit."""
    pairs = _predictions(result, runs_root)
    if pairs is None:
        return None
    predicted, truth = pairs
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.scatter(predicted, truth, s=6, alpha=0.5, color="#4c72b0")
    if len(predicted) >= 2:
        order = np.argsort(predicted)
        mapped = metrics.fit_logistic(predicted, truth)  # linear where a logistic fit fails
        ax.plot(predicted[order], mapped[order], color="#c44e52", label="logistic fit")
        ax.legend(fontsize=7)
    ax.set_title(f"{result.model.name} · {result.test_dataset} · {result.unit}\n"
                 f"SRCC {result.metrics.srcc:.3f}  PLCC {result.metrics.plcc:.3f}", fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth (native scale)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def distortion_heatmap(cells: list[Cell], order: list[str], path: Path) -> Path | None:
    cells = [c for c in cells if c.per_distortion and c.show_breakdown]
    if not cells:
        return None
    by_model = {c.model: c for c in cells}
    models = [m for m in order if m in by_model]
    types = sorted({t for c in cells for t in c.per_distortion})
    grid = np.array([[by_model[m].per_distortion.get(t, np.nan) for t in types] for m in models])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(0.32 * len(types) + 3, 0.3 * len(models) + 1.6))
    image = ax.imshow(grid, vmin=-1, vmax=1, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(types)), types, rotation=90, fontsize=6)
    ax.set_yticks(range(len(models)), models, fontsize=7)
    ax.set_title(f"per-distortion SRCC on {cells[0].column} (median over test parts)", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def block_figures(block: list[Cell], results: list[UnitResult], reference: str | None, order: list[str],
                  folder: Path, slug: str, runs_root: Path | None = None) -> list[tuple[str, Path]]:
    """The figures of one leaderboard block, as (caption, file); ``order`` is the leaderboard's
    model order (the reference first)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = [("SRCC by model with order-statistic intervals of the median",
            srcc_bars(block, order, folder / f"{slug}-srcc.png"))]
    for dataset in sorted({c.column for c in block}):
        name = dataset.replace(" -> ", "__to__").replace(", ", "-").replace("% of train", "pct")
        heat = distortion_heatmap([c for c in block if c.column == dataset], order,
                                  folder / f"{slug}-{name}-distortions.png")
        if heat:
            out.append((f"per-distortion SRCC on {dataset}", heat))
        if runs_root is not None and reference:
            cell = next(c for c in block if c.column == dataset)
            unit = next((r for r in results if r.model.name == reference
                         and r.dataset_label == cell.dataset and r.protocol.name == cell.protocol
                         and r.selection == cell.selection and r.suite == cell.suite
                         and r.train_fraction == cell.train_fraction), None)
            shot = scatter(unit, runs_root, folder / f"{slug}-{name}-scatter.png") if unit else None
            if shot:
                assert unit is not None  # a scatter was drawn of it
                out.append((f"{reference} on {dataset}, {unit.unit}: prediction vs ground truth",
                            shot))
    return out


def routing_heatmap(frequency: np.ndarray, distortions: list[str], title: str, path: Path) -> Path:
    """Expert selection frequency per distortion type (rows sum to 1)."""
    plt = _pyplot()
    types, experts = frequency.shape
    fig, ax = plt.subplots(figsize=(0.45 * experts + 3.5, 0.22 * types + 1.4))
    image = ax.imshow(frequency, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(experts), [str(e) for e in range(experts)], fontsize=7)
    ax.set_yticks(range(types), [d[:40] for d in distortions], fontsize=6)
    ax.set_xlabel("expert")
    ax.set_title(title, fontsize=7)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def expert_load_plot(loads: dict[str, np.ndarray], dataset: str, path: Path) -> Path:
    """Each expert's share of the training selections per epoch, one panel per model."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(loads), figsize=(3.6 * len(loads), 2.8), squeeze=False,
                             sharey=True)
    for ax, (model, load) in zip(axes[0], loads.items(), strict=True):
        epochs = np.arange(1, load.shape[0] + 1)
        for expert in range(load.shape[1]):
            ax.plot(epochs, load[:, expert], marker="o", markersize=3, label=f"expert {expert}")
        ax.axhline(1 / load.shape[1], color="#999999", linewidth=0.5, linestyle="--")
        ax.set_title(f"{model} on {dataset}", fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("share of selections (mean over splits)")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def stage_embeddings(stages: list[dict], caption: str, path: Path) -> Path:
    """One panel per stage: its stored 2-D map of the test part, coloured by distortion type."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(stages), figsize=(3.2 * len(stages), 3.2), squeeze=False)
    types = sorted({label for s in stages for label in s["embedding"]["labels"]})
    colours = plt.get_cmap("tab20", max(len(types), 1))
    for ax, stage in zip(axes[0], stages, strict=True):
        points = np.asarray(stage["embedding"]["points"])
        labels = stage["embedding"]["labels"]
        ax.scatter(points[:, 0], points[:, 1], s=5,
                   c=[colours(types.index(label)) for label in labels])
        ax.set_title(f"stage {stage['stage']}: silhouette {stage['silhouette']:.2f}, "
                     f"k-NN {stage['knn_accuracy']:.2f}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{stage['embedding']['method'].upper()} of stage features, {caption}",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
