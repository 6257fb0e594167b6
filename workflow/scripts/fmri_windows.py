from brainrep.fmri import edge_table, stack_crops
from brainrep.io import collect_qc, log_to_file
from brainrep.plots import connectivity_figure

log_to_file(snakemake.log[0])
participants = snakemake.params.participants
stack_crops(list(snakemake.input.timeseries), participants, snakemake.params.length,
            snakemake.params.step, snakemake.output.array, snakemake.output.table)
qc = collect_qc(list(snakemake.input.relmat), participants)
qc.to_csv(snakemake.output.qc, sep="\t", index=False)
edges = edge_table(list(snakemake.input.relmat), participants)
edges.to_csv(snakemake.output.features, sep="\t", index=False)
connectivity_figure(list(snakemake.input.relmat), qc, edges, snakemake.output.figure)
