"""Baselines Life-IQA is compared against, trained or evaluated under the same protocol.

``registry`` names them (what each needs, what it trains, what data its weights saw); the
families live in their own modules: ``probe`` (linear probes on one backbone stage),
``pyiqa_arch`` (pyiqa architectures trained by the harness) and ``training_free`` (metrics used
zero-shot). Life-IQA configurations (its ablations, the DEIQT-style head) run through the
ordinary Life-IQA path.
"""

from .registry import BASELINES, Baseline, get_baseline, is_baseline, list_baselines

__all__ = ["BASELINES", "Baseline", "get_baseline", "is_baseline", "list_baselines"]
