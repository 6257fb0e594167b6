from brainrep.exclusions import excluding
from brainrep.fmri import connectivity_from_timeseries
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
for timeseries, relmat in zip(snakemake.input, snakemake.output, strict=True):
    with excluding(timeseries, [relmat], "fmri_connectivity", snakemake.config["on_error"]):
        connectivity_from_timeseries(timeseries, relmat, snakemake.params.kind)
