import pandas as pd

from brainrep.fmri import (
    CovarianceRows,
    GroupSettings,
    connectivity_figure,
    parcel_coverage,
    select_runs,
    stack_crops,
    write_edge_table,
)
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
settings = GroupSettings.from_config(snakemake.params.settings)
qc, runs, kept = select_runs(list(snakemake.input.relmat), snakemake.params.recordings,
                             settings=settings)
qc.to_csv(snakemake.output.qc, sep="\t", index=False, na_rep="n/a")
runs.to_csv(snakemake.output.exclusions, sep="\t", index=False)
recordings = [snakemake.params.recordings[i] for i in kept]
participants = [key.split("_")[0] for key in recordings]
series = [snakemake.input.timeseries[i] for i in kept]
relmats = [snakemake.input.relmat[i] for i in kept]
coverage = parcel_coverage(relmats, settings.max_fraction_runs_missing_parcel)
coverage.to_csv(snakemake.output.parcels, sep="\t", index=False)
parcels = coverage.loc[coverage["kept"], "parcel"].tolist()
covariances = CovarianceRows(parcels, len(series))  # each run parsed once, for both
stack_crops(series, recordings, parcels, snakemake.output.array, snakemake.output.table,
            settings=settings, each_series=covariances.add)
# the group tables gather participants_per_chunk participants at a time, the rest on disk
covariances.write_parquet(participants, snakemake.output.covariances,
                          participants_per_chunk=settings.participants_per_chunk)
del covariances  # and the temporary file of its rows
included = qc[~qc["excluded"]]
motion = included.groupby("recording")["mean_fd_mm"].mean() \
    if "mean_fd_mm" in qc and len(kept) > 2 else None
mean, qcfc = write_edge_table(relmats, participants, parcels, snakemake.output.features,
                              participants_per_chunk=settings.participants_per_chunk,
                              motion=motion)
(qcfc if qcfc is not None else pd.DataFrame()).to_csv(snakemake.output.qcfc, sep="\t",
                                                     index=False)
connectivity_figure(mean, qcfc, snakemake.output.figure)
