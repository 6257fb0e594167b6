from pathlib import Path

import pandas as pd

from brainrep.io import log_to_file, read_table
from brainrep.verdict import (
    exclusion_sentences,
    front_page,
    prediction_sentences,
    prediction_verdicts,
    qc_sentences,
    rst_section,
    site_sentences,
    subtype_sentences,
)

log_to_file(snakemake.log[0])
settings = snakemake.params.settings
verdicts = pd.concat([prediction_verdicts(read_table(metrics), read_table(predictions),
                                          settings["n_permutations"], settings["seed"])
                      for metrics, predictions in zip(snakemake.input.metrics,
                                                      snakemake.input.predictions, strict=True)]
                     or [pd.DataFrame()], ignore_index=True)
verdicts.to_csv(snakemake.output.table, sep="\t", index=False, na_rep="n/a")
sections = []
if len(verdicts):
    shown = verdicts[["target", "cv_scheme", "feature_set", "kind", "metric", "estimate",
                      "ci_low", "ci_high", "chance", "p_value", "vs_baseline_p_value",
                      "vs_confounds_p_value", "vs_random_init_p_value"]]
    sections.append(rst_section("Prediction: what holds", prediction_sentences(verdicts) + [
        "p-values are one-sided permutation p-values, uncorrected for the number of feature "
        "sets and comparisons; read them with that in mind."], shown))
def rows_of(path: str) -> pd.DataFrame:
    """A result table; empty where the stage wrote none (e.g. a site probe with one site)."""
    try:
        return read_table(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


probes = pd.concat([rows_of(p) for p in snakemake.input.siteprobe] or [pd.DataFrame()])
if len(probes):
    sections.append(rst_section("Site", site_sentences(probes),
                                probes[["target", "cv_scheme", "feature_set", "metric", "mean",
                                        "chance", "note"]]))
window_probes = [read_table(p).assign(modality=Path(p).name.split("_")[0].removeprefix(
    "modality-")) for p in snakemake.input.window_probes]
if window_probes:
    table = pd.concat(window_probes)
    sections.append(rst_section(
        "SSL encoders: window-level probe",
        [f"{r['modality']} {r['encoder']} encoder: {r['metric']} {r['mean']:.2f} for "
         f"{r['label']} ({r['pretraining']} pretraining)" if pd.notna(r["pretraining"]) else
         f"{r['modality']} {r['encoder']} features (classical, same windows and splits): "
         f"{r['metric']} {r['mean']:.2f} for {r['label']}" for r in table.to_dict("records")]))
subtype_lines = []
nuisance = [*settings["confounds"], *([settings["site_column"]] if settings["site_column"]
                                      else []), "mean_fd_mm"]
for path in snakemake.input.subtype:
    subtype_lines += subtype_sentences(read_table(path), nuisance)
for path in snakemake.input.multiview:
    subtype_lines += [f"multiview CCA ({r['feature_set']} with {r['symptoms']}): out-of-sample "
                      f"r {r['r_out_of_sample_cv1']:.2f}, permutation p = {r['cca_p_value']:.3f}"
                      for r in read_table(path).to_dict("records") if r["status"] == "done"]
feasibility = read_table(snakemake.input.feasibility)
skipped = feasibility[feasibility["runs"].astype(str) != "True"]
if subtype_lines or len(skipped):
    sections.append(rst_section("Subtyping", subtype_lines or ["Subtyping did not run."]))
if len(skipped):
    sections.append(rst_section("Skipped stages", [f"{r['stage']} ({r['item']}): {r['reason']}"
                                                   for r in skipped.to_dict("records")]))
ledger = read_table(snakemake.input.ledger)
eeg_qc = read_table(snakemake.input.eeg_qc[0]) if snakemake.input.eeg_qc else None
fmri_qc = read_table(snakemake.input.fmri_qc[0]) if snakemake.input.fmri_qc else None
sections.append(rst_section("Exclusions", exclusion_sentences(ledger) + [
    f"Every recording and participant with its status and reason: {snakemake.input.ledger}."]))
sections.append(rst_section("Quality control", qc_sentences(eeg_qc, fmri_qc) + [
    f"Group QC page (metrics against thresholds): {snakemake.input.qc_group}; one page per "
    f"participant beside it ({Path(snakemake.input.qc_group).parent}/sub-<label>.html)."]))
software = read_table(snakemake.input.software)
rules = read_table(snakemake.input.rules)
inputs = read_table(snakemake.input.inputs)
sections.append(rst_section(
    "Provenance",
    [f"Reproduce: {snakemake.params.command}",
     "Random seeds: " + ", ".join(f"{k} = {v}" for k, v in snakemake.params.seeds.items()),
     "Software (the provenance job's environment; each rule's is pinned in envs/): "
     + ", ".join(
         f"{r['package']} {r['version']}" for r in software.to_dict("records")),
     f"{len(inputs)} input files, {inputs['bytes'].sum() / 1e6:.1f} MB, SHA-256 of each in "
     f"{snakemake.input.inputs}.",
     f"Each rule's conda environment and container: {snakemake.input.rules} (below)."],
    rules, literal="Resolved configuration:\n\n" + Path(snakemake.input.config).read_text()))
Path(snakemake.output.page).write_text(front_page(
    f"brainrep: what holds in {snakemake.config['name']}",
    Path(snakemake.input.intro).read_text(), sections))
