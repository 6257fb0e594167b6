from brainrep.fmri import run_recording
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
run_recording(snakemake.input.bold, snakemake.input.confounds, snakemake.input.atlas,
              snakemake.input.labels, snakemake.output.timeseries, snakemake.output.relmat,
              dict(snakemake.params.settings))
