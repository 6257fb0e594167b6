from brainrep.fmri import (
    CovarianceRows,
    GroupSettings,
    connectivity_figure,
    edge_table,
    mean_connectivity,
    parcel_coverage,
    qc_fc,
    select_runs,
    stack_crops,
)
from brainrep.io import log_to_file, write_tsv

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
# one cohort-sized table in memory at a time: the covariances are written before the edges
covariances.table(participants).to_parquet(snakemake.output.covariances, index=False)
edges = edge_table(relmats, participants, parcels)
write_tsv(edges, snakemake.output.features, na_rep="n/a")
included = qc[~qc["excluded"]]
qcfc = qc_fc(edges, included.groupby("recording")["mean_fd_mm"].mean()) \
    if "mean_fd_mm" in qc and len(kept) > 2 else None
(qcfc if qcfc is not None else edges.iloc[:0, :0]).to_csv(snakemake.output.qcfc, sep="\t",
                                                         index=False)
connectivity_figure(mean_connectivity(edges, parcels), qcfc, snakemake.output.figure)
