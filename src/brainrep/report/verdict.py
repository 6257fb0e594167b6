"""What holds: the prediction tables turned into a verdict table.

A feature set *beats chance* when its
permutation p-value on the primary metric is below ``alpha``; it *beats* another feature set
when a paired permutation test on the same participants' out-of-fold predictions
(:func:`paired_permutation_p`) gives p below ``alpha``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from brainrep.io import read_table
from brainrep.predict import PRIMARY  # higher is better for every primary metric


def feature_kind(name: str) -> str:
    """``confounds``, ``classical``, ``ssl`` (pretrained encoders, cross-modal included,
    frozen or fine-tuned), ``foundation`` (a published model, pretrained elsewhere),
    ``random init`` (an untrained encoder of the same architecture) or ``from scratch`` (that
    encoder trained with the target: ``random_<modality>_finetuned``)."""
    if name == "confounds":
        return "confounds"
    if name.startswith("foundation_"):
        return "foundation"
    if name.startswith("random_"):
        return "from scratch" if name.endswith("_finetuned") else "random init"
    if name.startswith(("ssl_", "crossmodal_")):
        return "ssl"
    return "classical"


def _metric_rows(values: np.ndarray, truth: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` of each row of ``values`` (draws, participants) against ``truth``: AUROC of
    scores (``truth`` boolean), balanced accuracy of labels, R² of predictions."""
    if metric == "auroc":
        ranks = rankdata(values, axis=1)
        n_pos, n_neg = truth.sum(), (~truth).sum()
        return (ranks[:, truth].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    if metric == "balanced_accuracy":
        recalls = [(values[:, truth == c] == c).mean(axis=1) for c in np.unique(truth)]
        return np.mean(recalls, axis=0)
    if metric == "r2":
        residual = ((values - truth) ** 2).sum(axis=1)
        return 1 - residual / ((truth - truth.mean()) ** 2).sum()
    raise ValueError(f"no paired test for metric {metric!r}")


def paired_permutation_p(truth: np.ndarray, first: np.ndarray, second: np.ndarray,
                         metric: str, n_permutations: int, seed: int) -> float:
    """One-sided p-value that ``first`` scores higher than ``second`` on ``metric``, both
    predicting the same participants (arrays of shape (n_participants,)).

    Under the null the two models are exchangeable per participant: each draw swaps the two
    predictions of a random half of the participants. AUROC compares within-model ranks
    (scores of different models are on different scales; ``truth`` is then boolean), balanced
    accuracy compares predicted labels, R² predicted values.
    """
    if metric == "auroc":
        first, second = rankdata(first) / len(first), rankdata(second) / len(second)
    observed = np.diff(_metric_rows(np.stack([second, first]), truth, metric))[0]
    swap = np.random.default_rng(seed).random((n_permutations, len(truth))) < 0.5
    null = (_metric_rows(np.where(swap, second, first), truth, metric)
            - _metric_rows(np.where(swap, first, second), truth, metric))
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations))


def _prediction_values(rows: pd.DataFrame, task: str) -> pd.Series:
    column = "score" if task == "binary" else "y_pred"
    return rows.set_index("participant_id")[column]


def prediction_verdicts(metrics: pd.DataFrame, predictions: pd.DataFrame,
                        n_permutations: int, seed: int, alpha: float = 0.05) -> pd.DataFrame:
    """One row per CV scheme x feature set of one target: the primary metric with its
    interval, chance and permutation p, and paired tests against the best classical
    baseline (the classical feature set with the highest estimate in that scheme), the
    confound-only model and, for an SSL encoder, its random-init twin. ``beats_*`` are
    ``True``/``False``, or ``NaN`` where the test is not available (no permutations, or the
    comparison is the set itself)."""
    task = metrics["task"].iloc[0]
    metric = PRIMARY[task]
    positive = metrics["positive_class"].iloc[0]
    primary = metrics[metrics["metric"] == metric]
    rows = []
    for scheme, table in primary.groupby("cv_scheme", sort=False):
        kinds = table["feature_set"].map(feature_kind)
        classical = table[kinds == "classical"]
        baseline = (classical.loc[classical["estimate"].idxmax(), "feature_set"]
                    if len(classical) else None)
        scheme_predictions = {name: _prediction_values(group, task) for name, group in
                              predictions[predictions["cv_scheme"] == scheme].groupby(
                                  "feature_set", sort=False)}
        truth = predictions[predictions["cv_scheme"] == scheme].drop_duplicates(
            "participant_id").set_index("participant_id")["y_true"]
        for record in table.to_dict("records"):
            name = record["feature_set"]
            row = {key: record[key] for key in ("target", "cv_scheme", "feature_set",
                                                "metric", "estimate", "ci_low", "ci_high",
                                                "chance", "p_value", "n_participants")}
            row["kind"] = feature_kind(name)
            row["beats_chance"] = (record["p_value"] < alpha
                                   if pd.notna(record["p_value"]) else np.nan)
            twin = ("random_" + name.split("_", 1)[1]) if row["kind"] == "ssl" else None
            row["baseline"] = baseline
            for label, other in (("baseline", baseline), ("confounds", "confounds"),
                                 ("random_init", twin)):
                p_value = np.nan
                if (n_permutations and other and other != name and other in scheme_predictions
                        and name in scheme_predictions):
                    both = scheme_predictions[name].index.intersection(
                        scheme_predictions[other].index)
                    y = truth.loc[both].to_numpy()
                    y = y.astype(str) == str(positive) if task == "binary" else y
                    if task != "binary" or 0 < y.sum() < len(y):
                        p_value = paired_permutation_p(
                            y, scheme_predictions[name].loc[both].to_numpy(),
                            scheme_predictions[other].loc[both].to_numpy(), metric,
                            n_permutations, seed)
                row[f"vs_{label}_p_value"] = p_value
                row[f"beats_{label}"] = p_value < alpha if pd.notna(p_value) else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def verdict_table(metrics: list[str], predictions: list[str], *, n_permutations: int,
                  seed: int) -> pd.DataFrame:
    """:func:`prediction_verdicts` of every target (its metrics and out-of-fold predictions
    files, in the same order), in one table."""
    return pd.concat([prediction_verdicts(read_table(m), read_table(p), n_permutations, seed)
                      for m, p in zip(metrics, predictions, strict=True)] or [pd.DataFrame()],
                     ignore_index=True)
