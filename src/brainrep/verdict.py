"""What holds: the result tables turned into a verdict table and the report's first page.

Every sentence is written from the tables (metrics, out-of-fold predictions, site probe,
subtyping, exclusions, QC); nothing is claimed by hand. A feature set *beats chance* when its
permutation p-value on the primary metric is below ``alpha``; it *beats* another feature set
when a paired permutation test on the same participants' out-of-fold predictions
(:func:`paired_permutation_p`) gives p below ``alpha``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from brainrep.predict import PRIMARY  # higher is better for every primary metric


def feature_kind(name: str) -> str:
    """``confounds``, ``classical``, ``ssl`` (pretrained encoders, cross-modal included) or
    ``random init`` (an untrained encoder of the same architecture)."""
    if name == "confounds":
        return "confounds"
    if name.startswith("random_"):
        return "random init"
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


def _number(value, digits: int = 2) -> str:
    return "n/a" if pd.isna(value) else f"{value:.{digits}f}"


def _p(value) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3g}"


def prediction_sentences(verdicts: pd.DataFrame) -> list[str]:
    """Plain-words summary per target and CV scheme."""
    lines = []
    for (target, scheme), table in verdicts.groupby(["target", "cv_scheme"], sort=False):
        metric = table["metric"].iloc[0]
        above = table[table["beats_chance"] == True]  # noqa: E712 (NaN means untested)
        baseline = table["baseline"].dropna().iloc[0] if table["baseline"].notna().any() else None
        lead = (f"{target} ({scheme.replace('_', ' ')}, {metric}): "
                f"{len(above)} of {len(table)} feature sets beat chance"
                + (f" ({', '.join(above['feature_set'])})." if len(above) else "."))
        if table["beats_chance"].isna().all():
            lead = (f"{target} ({scheme.replace('_', ' ')}, {metric}): no permutation test "
                    "was run (downstream.n_permutations is 0); nothing can be said to beat "
                    "chance.")
        lines.append(lead)
        for kind in ("ssl", "classical"):
            rows = table[(table["kind"] == kind) & (table["feature_set"] != baseline)]
            for row in rows.to_dict("records"):
                if pd.isna(row["vs_baseline_p_value"]):
                    continue
                verb = "beats" if row["beats_baseline"] else "does not beat"
                lines.append(f"{row['feature_set']} {verb} the best classical baseline "
                             f"{baseline} (paired p = {_p(row['vs_baseline_p_value'])}).")
        for row in table[table["vs_random_init_p_value"].notna()].to_dict("records"):
            verb = "beats" if row["beats_random_init"] else "does not beat"
            lines.append(f"{row['feature_set']} {verb} its random-init twin "
                         f"(paired p = {_p(row['vs_random_init_p_value'])}).")
        beaten = table[table["beats_confounds"] == True]  # noqa: E712
        if table["vs_confounds_p_value"].notna().any():
            lines.append(f"Feature sets that beat the confound-only model: "
                         f"{', '.join(beaten['feature_set']) or 'none'}.")
    return lines


def site_sentences(probe: pd.DataFrame, alpha_margin: float = 0.1) -> list[str]:
    """Which feature sets carry the acquisition site (probe well above chance)."""
    if probe.empty:
        return []
    probe = probe.drop_duplicates(["cv_scheme", "feature_set"])  # the same for every target
    carrying = probe[probe["mean"] > probe["chance"] + alpha_margin]
    return [f"Site can be decoded above chance + {alpha_margin} from "
            f"{carrying['feature_set'].nunique()} of {probe['feature_set'].nunique()} "
            "feature sets"
            + (f" ({', '.join(carrying['feature_set'].unique())})" if len(carrying) else "")
            + "; a result these sets share may ride on site. Leave-site-out is the test of "
            "transfer to an unseen site."]


def subtype_sentences(summary: pd.DataFrame, nuisance: list[str],
                      alpha: float = 0.05) -> list[str]:
    """Per feature set: does the clustering survive its null, and is it free of nuisance
    (site, confounds, motion) associations (q >= ``alpha``)?"""
    lines = []
    for row in summary.to_dict("records"):
        survives = pd.notna(row["null_p_value"]) and row["null_p_value"] < alpha
        associated = [v for v in nuisance
                      if pd.notna(row.get(f"{v}_q_value")) and row[f"{v}_q_value"] < alpha]
        holds = survives and not associated
        lines.append(
            f"{row['feature_set']}: k = {row['k']} ({row['method']}), null p = "
            f"{_p(row['null_p_value'])} ({'survives' if survives else 'does not survive'} its "
            f"null), bootstrap ARI {_number(row['bootstrap_ari'])}; nuisance associations: "
            f"{', '.join(associated) or 'none'}. "
            + ("This solution holds." if holds else "This solution does not hold."))
    return lines


def exclusion_sentences(ledger: pd.DataFrame) -> list[str]:
    """Counts of included and excluded recordings and participants, by reason; participants
    without a label for a target are counted apart (included, not scored for it)."""
    lines = []
    for level, rows in ledger.groupby("level", sort=False):
        key = "recording" if level == "recording" else "participant_id"
        rows = rows.assign(unit=rows[key].astype(str) + rows.get("datatype", "").astype(str)
                           if level == "recording" else rows[key])
        excluded = rows[rows["status"] == "excluded"]
        n_units, n_excluded = rows["unit"].nunique(), excluded["unit"].nunique()
        reasons = excluded.drop_duplicates("unit").groupby(["stage", "reason"]).size()
        line = (f"{n_units - n_excluded} of {n_units} {level}s included; {n_excluded} excluded"
                + (" (" + "; ".join(f"{n} {reason} at {stage}" for (stage, reason), n
                                    in reasons.items()) + ")" if n_excluded else "") + ".")
        unscored = rows[rows["status"] == "not_scored"]
        for reason, group in unscored.groupby("message", sort=False):
            line += f" {group['unit'].nunique()} not scored: {reason}."
        lines.append(line)
    return lines


def qc_sentences(eeg_qc: pd.DataFrame | None, fmri_qc: pd.DataFrame | None) -> list[str]:
    """A line per modality: recordings, bad channels and rejected windows (EEG); motion,
    censoring and QC exclusions (fMRI)."""
    lines = []
    if eeg_qc is not None and len(eeg_qc):
        bads = eeg_qc["bad_channels"].fillna("").astype(str).str.len() > 0
        lines.append(f"EEG: {len(eeg_qc)} recordings; {int(bads.sum())} with bad channels; "
                     f"median rejected-window fraction "
                     f"{_number(pd.to_numeric(eeg_qc['rejected_fraction']).median())}.")
    if fmri_qc is not None and len(fmri_qc):
        excluded = fmri_qc["excluded"].astype(str).str.lower() == "true"
        motion = (f"median mean FD {_number(pd.to_numeric(fmri_qc['mean_fd_mm']).median())} mm"
                  if "mean_fd_mm" in fmri_qc else "no motion estimates (parcellated inputs)")
        lines.append(f"fMRI: {len(fmri_qc)} runs; {motion}; {int(excluded.sum())} excluded by "
                     "QC thresholds.")
    return lines


def _escape(value) -> str:
    """Plain text for RST: markup characters and reference-making trailing underscores
    escaped."""
    text = "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else str(
        value)
    text = " ".join(text.split("\n"))
    for char in ("\\", "*", "`", "|", "["):
        text = text.replace(char, "\\" + char)
    return re.sub(r"(\w)_(?=\W|$)", r"\1\\_", text)


def rst_table(frame: pd.DataFrame) -> str:
    """``frame`` as an RST list-table (floats to 3 significant digits)."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [list(frame.columns), *frame.itertuples(index=False)]:
        cells = [f"{v:.3g}" if isinstance(v, float) and np.isfinite(v) else _escape(v)
                 for v in row]
        lines += [f"   * - {cells[0]}", *[f"     - {cell}" for cell in cells[1:]]]
    return "\n".join(lines) + "\n"


def rst_section(heading: str, sentences: list[str], table: pd.DataFrame | None = None,
                literal: str | None = None) -> str:
    """One section of the first page: a heading, a bullet per sentence, then an optional
    table and an optional literal block (e.g. the resolved configuration)."""
    parts = [heading, "-" * len(heading), ""]
    parts += [f"- {_escape(sentence)}" for sentence in sentences] + [""]
    if table is not None and len(table):
        parts.append(rst_table(table))
    if literal:
        parts += ["::", "", *["    " + line for line in literal.splitlines()], ""]
    return "\n".join(parts) + "\n"


def front_page(title: str, intro: str, sections: list[str]) -> str:
    """The report's first page (RST). Snakemake renders it with Jinja2 first: ``intro`` (the
    workflow description) is templated, the generated sections are kept raw."""
    title = _escape(title)
    return "\n".join([title, "=" * len(title), "", intro.strip(), "", "{% raw %}", *sections,
                      "{% endraw %}", ""])
