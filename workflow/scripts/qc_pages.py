import json

from brainrep.fmri.settings import QcThresholds
from brainrep.io import log_to_file, read_table, sidecar_path
from brainrep.report.qc_pages import Recording, group_page, participant_page, qc_table

log_to_file(snakemake.log[0])
ledger = read_table(snakemake.input.ledger).fillna("")
status = ledger[ledger["level"] == "recording"].set_index(["recording", "datatype"])


def sidecar_qc(output: str) -> dict:
    """The QC record a per-recording output's sidecar holds (none for an excluded one)."""
    side = sidecar_path(output)
    qc = json.loads(side.read_text()).get("qc", {}) if side.exists() else {}
    return {k: ";".join(map(str, v)) if isinstance(v, list) else v for k, v in qc.items()}


def entry(key: str, datatype: str, qc: dict, **files) -> Recording:
    row = status.loc[(key, datatype)] if (key, datatype) in status.index else None
    return Recording(key, datatype, qc=qc, **files, **(
        {k: row[k] for k in ("status", "reason", "message")} if row is not None else {}))


recordings = [entry(key, "eeg", sidecar_qc(epochs), psd_figure=figure) for key, epochs, figure
              in zip(snakemake.params.eeg_keys, snakemake.input.eeg_epochs,
                     snakemake.input.eeg_figures, strict=True)]
confounds = list(snakemake.input.fmri_confounds) or [None] * len(snakemake.params.fmri_keys)
recordings += [entry(key, "func", sidecar_qc(relmat), timeseries=series, relmat=relmat,
                     confounds=conf)
               for key, relmat, series, conf in zip(
                   snakemake.params.fmri_keys, snakemake.input.fmri_relmats,
                   snakemake.input.fmri_series, confounds, strict=True)]
thresholds = QcThresholds.from_config(snakemake.params.thresholds)
for participant, page in zip(snakemake.params.participants, snakemake.output.pages,
                             strict=True):
    participant_page(participant, [r for r in recordings if r.key.split("_")[0] == participant],
                     page, thresholds=thresholds)
group_page(ledger, qc_table(recordings, "eeg"), qc_table(recordings, "func"),
           {p: f"{p}.html" for p in snakemake.params.participants}, snakemake.output.group,
           thresholds=thresholds)
