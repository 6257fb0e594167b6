from brainrep.eeg import stack_windows
from brainrep.io import collect_qc, log_to_file
from brainrep.plots import eeg_psd_figure

log_to_file(snakemake.log[0])
stack_windows(list(snakemake.input), snakemake.params.recordings, snakemake.output.array,
              snakemake.output.table)
collect_qc(list(snakemake.input), snakemake.params.recordings).to_csv(
    snakemake.output.qc, sep="\t", index=False)
eeg_psd_figure(snakemake.output.array, snakemake.output.table, snakemake.output.psd)
