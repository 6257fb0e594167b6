from pathlib import Path

from brainrep.io import log_to_file
from brainrep.report.front_page import Provenance, front_page, front_page_sections
from brainrep.report.settings import VerdictSettings
from brainrep.report.verdict import verdict_table

log_to_file(snakemake.log[0])
settings = VerdictSettings.from_config(snakemake.params.settings)
verdicts = verdict_table(snakemake.input.metrics, snakemake.input.predictions,
                         n_permutations=settings.n_permutations, seed=settings.seed)
verdicts.to_csv(snakemake.output.table, sep="\t", index=False, na_rep="n/a")
inputs = snakemake.input
sections = front_page_sections(
    verdicts, settings=settings, site_probes=inputs.siteprobe,
    window_probes=inputs.window_probes, subtype=inputs.subtype, multiview=inputs.multiview,
    feasibility=inputs.feasibility, ledger=inputs.ledger,
    eeg_qc=inputs.eeg_qc[0] if inputs.eeg_qc else None,
    fmri_qc=inputs.fmri_qc[0] if inputs.fmri_qc else None, qc_group=inputs.qc_group,
    provenance=Provenance(command=snakemake.params.command, seeds=snakemake.params.seeds,
                          config=inputs.config, software=inputs.software,
                          inputs=inputs.inputs, rules=inputs.rules))
Path(snakemake.output.page).write_text(front_page(
    f"brainrep: what holds in {snakemake.config['name']}", Path(inputs.intro).read_text(),
    sections))
