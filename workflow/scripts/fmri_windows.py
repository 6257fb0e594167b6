import pandas as pd

from brainrep.fmri import (
    GroupSettings,
    connectivity_figure,
    parcel_coverage,
    select_runs,
    write_group_tables,
)
from brainrep.io import log_to_file

log_to_file(snakemake.log[0])
settings = GroupSettings.from_config(snakemake.params.settings)
qc, runs, kept = select_runs(list(snakemake.input.relmat), snakemake.params.recordings,
                             settings=settings)
qc.to_csv(snakemake.output.qc, sep="\t", index=False, na_rep="n/a")
runs.to_csv(snakemake.output.exclusions, sep="\t", index=False)
relmats = [snakemake.input.relmat[i] for i in kept]
coverage = parcel_coverage(relmats, settings.max_fraction_runs_missing_parcel)
coverage.to_csv(snakemake.output.parcels, sep="\t", index=False)
included = qc[~qc["excluded"]]
motion = included.groupby("recording")["mean_fd_mm"].mean() \
    if "mean_fd_mm" in qc and len(kept) > 2 else None
mean, qcfc = write_group_tables(
    [snakemake.input.timeseries[i] for i in kept], relmats,
    [snakemake.params.recordings[i] for i in kept],
    coverage.loc[coverage["kept"], "parcel"].tolist(), out_array=snakemake.output.array,
    out_table=snakemake.output.table, out_covariances=snakemake.output.covariances,
    out_edges=snakemake.output.features, settings=settings, motion=motion,
    n_jobs=snakemake.threads)
(qcfc if qcfc is not None else pd.DataFrame()).to_csv(snakemake.output.qcfc, sep="\t",
                                                     index=False)
connectivity_figure(mean, qcfc, snakemake.output.figure)
