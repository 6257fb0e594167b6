from brainrep.eeg import PreprocessSettings, run_recording
from brainrep.exclusions import excluding
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
with excluding(snakemake.input[0], list(snakemake.output), "eeg_preprocess",
               snakemake.config["on_error"]):
    run_recording(snakemake.params.bids_root, snakemake.input[0], snakemake.output.raw,
                  snakemake.output.epochs,
                  settings=PreprocessSettings.from_config(snakemake.params.settings),
                  out_figure=snakemake.output.figure)
