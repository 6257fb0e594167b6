from brainrep.eeg import eeg_psd_figure, stack_windows
from brainrep.exclusions import included, ledger
from brainrep.io import collect_qc, log_to_file

log_to_file(snakemake.log[0])
ledger(snakemake.params.recordings, list(snakemake.input), "eeg").to_csv(
    snakemake.output.exclusions, sep="\t", index=False)
keys, epochs = included(snakemake.params.recordings, list(snakemake.input))
stack_windows(epochs, keys, snakemake.output.array, snakemake.output.table)
collect_qc(epochs, keys).to_csv(snakemake.output.qc, sep="\t", index=False)
eeg_psd_figure(snakemake.output.array, snakemake.output.table, snakemake.output.psd)
