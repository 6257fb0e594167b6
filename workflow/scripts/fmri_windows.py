from brainrep.fmri import covariance_table, edge_table, flag_exclusions, qc_fc, stack_crops
from brainrep.io import collect_qc, log_to_file
from brainrep.plots import connectivity_figure

log_to_file(snakemake.log[0])
participants = snakemake.params.participants
qc = flag_exclusions(collect_qc(list(snakemake.input.relmat), participants),
                     snakemake.params.qc_thresholds)
qc.to_csv(snakemake.output.qc, sep="\t", index=False, na_rep="n/a")
kept = [i for i in range(len(qc)) if not qc["excluded"].iloc[i]]
kept_participants = [participants[i] for i in kept]
relmats = [snakemake.input.relmat[i] for i in kept]
stack_crops([snakemake.input.timeseries[i] for i in kept], kept_participants,
            snakemake.params.length, snakemake.params.step, snakemake.output.array,
            snakemake.output.table)
edges = edge_table(relmats, kept_participants)
edges.to_csv(snakemake.output.features, sep="\t", index=False)
covariance_table([snakemake.input.timeseries[i] for i in kept], kept_participants).to_parquet(
    snakemake.output.covariances, index=False)
qcfc = qc_fc(edges, qc.iloc[kept].groupby("recording")["mean_fd_mm"].mean()) \
    if "mean_fd_mm" in qc and len(kept) > 2 else None
(qcfc if qcfc is not None else edges.iloc[:0, :0]).to_csv(snakemake.output.qcfc, sep="\t",
                                                         index=False)
connectivity_figure(relmats, qcfc, snakemake.output.figure)
