from brainrep.atlases import load_atlas
from brainrep.exclusions import excluding
from brainrep.fmri import ParcellateSettings, run_recording
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
image, labels = (list(snakemake.input.atlas) + [None, None])[:2]
with excluding(snakemake.input.bold, list(snakemake.output), "fmri_parcellate",
               snakemake.config["on_error"]):
    run_recording(snakemake.input.bold, snakemake.input.confounds,
                  load_atlas(dict(snakemake.params.atlas), image, labels),
                  snakemake.output.timeseries, snakemake.output.relmat,
                  settings=ParcellateSettings.from_config(snakemake.params.settings))
