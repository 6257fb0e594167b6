"""The report's first page in plain words: every sentence written from a result table
(verdicts, site probe, window probe, subtyping, exclusions, QC); nothing is claimed by hand."""

from __future__ import annotations

import pandas as pd


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
        for kind in ("ssl", "foundation", "from scratch", "classical"):
            rows = table[(table["kind"] == kind) & (table["feature_set"] != baseline)]
            for row in rows.to_dict("records"):
                if pd.isna(row["vs_baseline_p_value"]):
                    continue
                verb = "beats" if row["beats_baseline"] else "does not beat"
                lines.append(f"{row['feature_set']} {verb} the best classical baseline "
                             f"{baseline} (paired p = {_p(row['vs_baseline_p_value'])}).")
        for row in table[table["vs_random_init_p_value"].notna()].to_dict("records"):
            verb = "beats" if row["beats_random_init"] else "does not beat"
            twin = ("twin trained from scratch" if row["feature_set"].endswith("_finetuned")
                    else "random-init twin")
            lines.append(f"{row['feature_set']} {verb} its {twin} "
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


def window_probe_sentences(table: pd.DataFrame) -> list[str]:
    """A line per row of the window-level probe tables (column ``modality`` added) with every
    training label (``fraction`` 1): encoders with their pretraining, frozen or fine-tuned
    (``<encoder>_finetuned``), and classical features (no pretraining) named as such."""
    def sentence(r: dict) -> str:
        if pd.isna(r["pretraining"]):
            return (f"{r['modality']} {r['encoder']} features (classical, same windows and "
                    f"splits): {r['metric']} {r['mean']:.2f} for {r['label']}")
        encoder, finetuned, _ = r["encoder"].partition("_finetuned")
        score = f"{r['metric']} {r['mean']:.2f} for {r['label']}"
        if finetuned and r["pretraining"] == "none":
            return (f"{r['modality']} {encoder}-init encoder trained with {r['label']} from "
                    f"scratch in each training split: {score}")
        how = (f"encoder fine-tuned with {r['label']} in each training split" if finetuned
               else "encoder, frozen")
        return f"{r['modality']} {encoder} {how}: {score} ({r['pretraining']} pretraining)"

    return [sentence(r) for r in table[table["fraction"] == 1].to_dict("records")]


def multiview_sentences(summary: pd.DataFrame) -> list[str]:
    """The held-out canonical correlation and its permutation p of each multiview run."""
    return [f"multiview CCA ({r['feature_set']} with {r['symptoms']}): out-of-sample "
            f"r {r['r_out_of_sample_cv1']:.2f}, permutation p = {r['cca_p_value']:.3f}"
            for r in summary.to_dict("records") if r["status"] == "done"]
