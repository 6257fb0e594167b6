import pandas as pd
from joblib import Parallel, delayed, parallel_config

from brainrep.fmri import (
    GroupSettings,
    connectivity_figure,
    parcel_coverage,
    select_runs,
    write_edge_table,
    write_series_tables,
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
included = qc[~qc["excluded"]]
motion = included.groupby("recording")["mean_fd_mm"].mean() \
    if "mean_fd_mm" in qc and len(kept) > 2 else None
# the series' tables and the matrices' tables read different files: one process each, on
# one BLAS thread (as with threads: 1)
with parallel_config(backend="loky", inner_max_num_threads=1):
    _, (mean, qcfc) = Parallel(n_jobs=min(snakemake.threads, 2))([
        delayed(write_series_tables)(series, recordings, participants, parcels,
                                     snakemake.output.array, snakemake.output.table,
                                     snakemake.output.covariances, settings=settings),
        delayed(write_edge_table)(relmats, participants, parcels, snakemake.output.features,
                                  participants_per_chunk=settings.participants_per_chunk,
                                  motion=motion)])
(qcfc if qcfc is not None else pd.DataFrame()).to_csv(snakemake.output.qcfc, sep="\t",
                                                     index=False)
connectivity_figure(mean, qcfc, snakemake.output.figure)
