"""The paper's analyses of a trained unit (issue 17), computed where the unit runs and stored in
its result (``UnitResult.analyses``), so they resume and aggregate like any metric.

* ``separability``: how well one backbone stage's global features separate distortion types on
  a content-disjoint split: the silhouette score of the test part's features by type, the
  accuracy of a k-nearest-neighbour classifier fitted on the training part, and a 2-D PCA map of
  the test part (the paper's t-SNE figure, linear and deterministic here).
* ``routing``: which experts the MoE head selects for which distortion type on the test part,
  the router's entropy, the mutual information between distortion type and selected expert with
  a permutation-test p-value, and the experts' load per training epoch. The test shuffles types
  only among images of one reference image at one distortion level (issue 24): shuffled over
  all images, a content effect on routing swamps the null and the test has no power on
  reference-based datasets, whose references each carry every type.

Features are standardised with the training part's statistics; distances are Euclidean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import numpy as np
import torch

from harness.errors import InvalidOptionError

KNN_NEIGHBOURS = 5
PERMUTATIONS = 999


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(0), train.std(0) + 1e-8
    return (train - mean) / std, (test - mean) / std


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return cast(np.ndarray, np.sqrt(np.clip(squared, 0.0, None)))


def silhouette_score(x: np.ndarray, labels: Sequence[str] | np.ndarray) -> float:
    """Mean over samples of (b - a) / max(a, b): a the mean distance to the sample's own type
    (itself excluded), b the smallest mean distance to another type; 0 for a sample alone in its
    type (Rousseeuw 1987, as scikit-learn computes it). NaN with fewer than two types."""
    labels = np.asarray(labels)
    types = np.unique(labels)
    if len(types) < 2:
        return float("nan")
    distances = _distances(x, x)
    member = labels[:, None] == types[None, :]  # (n, types)
    sums = distances @ member  # each sample's summed distance to each type
    sizes = member.sum(0).astype(float)
    own = member.argmax(1)
    own_size = sizes[own]
    a = sums[np.arange(len(x)), own] / np.maximum(own_size - 1, 1)
    others = sums / sizes
    others[np.arange(len(x)), own] = np.inf
    b = others.min(1)
    score = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(score.mean())


def knn_accuracy(train_x: np.ndarray, train_labels: Sequence[str] | np.ndarray, test_x: np.ndarray,
                 test_labels: Sequence[str] | np.ndarray, k: int = KNN_NEIGHBOURS) -> float:
    """Accuracy of a k-nearest-neighbour vote (ties to the nearest tied type) fitted on the
    training part, on the test part."""
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    k = min(k, len(train_x))
    nearest = np.argsort(_distances(test_x, train_x), axis=1, kind="stable")[:, :k]
    correct = 0
    for row, truth in zip(train_labels[nearest], test_labels, strict=True):
        votes: dict[str, int] = {}
        for label in row:
            votes[label] = votes.get(label, 0) + 1
        best = max(votes.values())
        predicted = next(label for label in row if votes[label] == best)  # nearest tied
        correct += predicted == truth
    return correct / len(test_x)


def pca_2d(train_x: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """The test part on the training part's first two principal axes, (n_test, 2); each axis's
    sign fixed so that its largest loading is positive (deterministic)."""
    centre = train_x.mean(0)
    _, _, axes = np.linalg.svd(train_x - centre, full_matrices=False)
    axes = axes[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(1)])
    return cast(np.ndarray, (test_x - centre) @ (axes * signs[:, None]).T)


def separability(train_x: np.ndarray, train_labels: Sequence[str], test_x: np.ndarray,
                 test_labels: Sequence[str]) -> dict[str, Any]:
    """One stage's per-image features (train and test parts) -> the stored separability."""
    train_z, test_z = _standardise(train_x, test_x)
    points = pca_2d(train_z, test_z)
    return {"silhouette": silhouette_score(test_z, test_labels),
            "knn_accuracy": knn_accuracy(train_z, train_labels, test_z, test_labels),
            "knn_neighbours": KNN_NEIGHBOURS, "distortion_types": len(set(test_labels)),
            "embedding": {"method": "pca", "points": np.round(points, 4).tolist(),
                          "labels": list(test_labels)}}


# --- routing ----------------------------------------------------------------------------------


def mutual_information(counts: np.ndarray) -> float:
    """I(type; expert) in bits of a (types, experts) table of selection counts."""
    joint = counts / counts.sum()
    outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
    nonzero = joint > 0
    # never below 0 in exact arithmetic; rounding can leave -1e-17 (shown as "-0.0000")
    return max(0.0, float((joint[nonzero] * np.log2(joint[nonzero] / outer[nonzero])).sum()))


# how the stored ``permutation`` names each scheme (units stored before issue 24 have none:
# they shuffled over all test images, which the report says for them)
WITHIN_GROUP_AND_LEVEL = "within content group and level"
WITHIN_GROUP = "within content group"
WITHIN_GROUP_AND_KNOWN_LEVEL = ("within content group and level (content group alone where the "
                                "level is unknown)")


def permutation_strata(groups: Sequence[str], levels: Sequence[int | None]
                       ) -> tuple[np.ndarray, str]:
    """Each image's stratum index (images of one content group at one distortion level; those
    of a group whose level is unknown form one stratum of that group) and the scheme's name.

    Why these strata: on a reference-based dataset every reference carries every type, so the
    type labels are exchangeable only among images of one reference; the level is held too
    because severity moves routing and each type's levels need not be spread alike (the
    synthetic "small" set draws one level per group and type)."""
    if len(groups) != len(levels):
        raise InvalidOptionError(f"{len(groups)} content groups for {len(levels)} levels: "
                                 f"expected one of each per image")
    # (group, known, level): an unknown level is its group's own stratum, apart from any level
    keys = [(str(group), level is not None, 0 if level is None else int(level))
            for group, level in zip(groups, levels, strict=True)]
    index = {key: i for i, key in enumerate(sorted(set(keys)))}
    known = sum(level is not None for level in levels)
    scheme = (WITHIN_GROUP if known == 0 else
              WITHIN_GROUP_AND_LEVEL if known == len(levels) else WITHIN_GROUP_AND_KNOWN_LEVEL)
    return np.array([index[key] for key in keys], dtype=np.int64), scheme


def informative_strata(labels: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """The strata holding at least two distinct labels: only their images move under a
    permutation within strata."""
    pairs = np.unique(np.stack([strata, labels]), axis=1)  # distinct (stratum, label)
    ids, types = np.unique(pairs[0], return_counts=True)
    return ids[types >= 2]


def permutation_p_value(selections: np.ndarray, labels: np.ndarray, observed: float,
                        permutations: int, rng: np.random.Generator,
                        strata: np.ndarray | None = None) -> float:
    """P(I >= observed) with the images' types shuffled (the image is the unit: its tokens share
    a type), ``(1 + hits) / (1 + permutations)``, exact for any number of permutations.
    ``selections``: (images, experts) counts; ``labels``: (images,) type indices; ``strata``:
    (images,) stratum indices, types shuffled only within each stratum (None: one stratum, all
    images exchangeable).

    A stratum with one image, or whose images share one type, is the same in every permutation:
    it adds a constant to the table and nothing to the null's spread. The caller checks that
    some stratum holds two types (:func:`informative_strata`); with none, every permutation is
    the observed labelling and p is 1 by construction, not evidence."""
    labels = np.asarray(labels)
    strata = np.zeros(len(labels), np.int64) if strata is None else np.asarray(strata)
    onehot = np.eye(labels.max() + 1)  # row t: type t's indicator
    # slots in stratum order; a random key per image, sorted within its stratum, fills each
    # stratum's slots with its own images in a uniformly random order
    slots = np.argsort(strata, kind="stable")
    hits = 0
    for _ in range(permutations):
        shuffled = np.empty_like(labels)
        shuffled[slots] = labels[np.lexsort((rng.random(len(labels)), strata))]
        hits += mutual_information(onehot[shuffled].T @ selections) >= observed - 1e-12
    return (1 + hits) / (1 + permutations)


def router_entropy(logits: np.ndarray) -> float:
    """Mean entropy (nats) of the router's softmax over all experts, per token."""
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return float(-(np.exp(log_p) * log_p).sum(-1).mean())


def top_k_selections(logits: np.ndarray, k: int) -> np.ndarray:
    """0/1 selections of the ``k`` largest logits per token (as ``SparseMoE.route``)."""
    selected = np.zeros_like(logits)
    index = torch.from_numpy(logits).topk(k, dim=-1).indices.numpy()
    np.put_along_axis(selected, index, 1.0, axis=-1)
    return selected


def routing(logits: np.ndarray, labels: Sequence[str], groups: Sequence[str],
            levels: Sequence[int | None], top_k: int, permutations: int = PERMUTATIONS,
            seed: int = 0) -> dict[str, Any]:
    """The test part's routing: ``logits`` (images, tokens, experts) of the router; per image
    its distortion type (``labels``), content group (``groups``: its reference image) and
    distortion level (``levels``, None where unknown).

    ``p_value`` tests "the experts selected do not depend on the type, given the content and the
    level": types are shuffled only within each stratum of :func:`permutation_strata`
    (``permutation`` names the scheme). Strata with one image or one type contribute nothing to
    the null (``informative_strata`` counts the rest); with none, the test cannot run and
    ``p_value`` is None with ``p_value_reason`` saying why."""
    if not len(labels) == len(groups) == len(logits):
        raise InvalidOptionError(f"{len(logits)} images of logits, {len(labels)} types and "
                                 f"{len(groups)} content groups: expected one of each per image")
    types = sorted(set(labels))
    index = np.array([types.index(label) for label in labels])
    selections = top_k_selections(logits, top_k).sum(1)  # (images, experts)
    counts = np.eye(len(types))[index].T @ selections  # (types, experts)
    observed = mutual_information(counts)
    experts = logits.shape[-1]
    strata, scheme = permutation_strata(groups, levels)
    informative = informative_strata(index, strata)
    if len(informative):
        p_value: float | None = permutation_p_value(selections, index, observed, permutations,
                                                    np.random.default_rng(seed), strata)
        reason = None
    else:
        p_value = None
        reason = (f"no stratum ({scheme}) of the {len(labels)} test images holds two distortion "
                  f"types, so no permutation changes the labelling")
    return {
        "experts": experts, "top_k": top_k, "distortions": types,
        "frequency": (counts / counts.sum(1, keepdims=True)).round(6).tolist(),
        "test_load": (counts.sum(0) / counts.sum()).round(6).tolist(),
        "entropy": router_entropy(logits),
        "normalized_entropy": router_entropy(logits) / float(np.log(experts)),
        "mutual_information": observed,
        "p_value": p_value,
        "p_value_reason": reason,
        "permutations": permutations,
        "permutation": scheme,
        "strata": int(strata.max()) + 1 if len(strata) else 0,
        "informative_strata": len(informative),
        "informative_images": int(np.isin(strata, informative).sum()),
    }


class RouterRecorder:
    """A forward hook on a MoE's ``router``: the logits of every token it routes in training
    (summed into per-expert selection counts, for the load per epoch) or, inside
    :meth:`capture`, kept whole (the test part's routing)."""

    def __init__(self, router: torch.nn.Linear, top_k: int) -> None:
        self.top_k = top_k
        self.counts = torch.zeros(router.out_features)
        self.captured: list[torch.Tensor] | None = None
        self.handle = router.register_forward_hook(self._hook)

    def _hook(self, module: torch.nn.Module, _inputs: Any, logits: torch.Tensor) -> None:
        logits = logits.detach().float()
        if self.captured is not None:
            self.captured.append(logits.cpu())
        elif module.training:  # evaluation passes between epochs are not training load
            index = logits.topk(self.top_k, dim=-1).indices.reshape(-1).cpu()
            self.counts += torch.bincount(index, minlength=len(self.counts)).float()

    def epoch_load(self) -> list[float]:
        """The experts' shares of the selections since the last call."""
        load = (self.counts / self.counts.sum().clamp_min(1)).tolist()
        self.counts.zero_()
        return [round(x, 6) for x in load]

    def on_epoch(self, then: Callable[[dict], None] | None) -> Callable[[dict], None]:
        """An epoch callback that adds ``expert_load`` to the epoch's history entry (the entry
        the training loop stores), then calls ``then``."""
        def record(entry: dict) -> None:
            entry["expert_load"] = self.epoch_load()
            if then:
                then(entry)
        return record

    @contextmanager
    def capture(self) -> Iterator[list[torch.Tensor]]:
        """Keep every routed token's logits (a list of tensors) while inside."""
        self.captured = []
        try:
            yield self.captured
        finally:
            self.captured = None

    def remove(self) -> None:
        self.handle.remove()
