import pandas as pd

from brainrep.bids import read_participants
from brainrep.io import log_to_file
from brainrep.predict import (
    PRIMARY,
    PredictionSettings,
    label_efficiency_figure,
    metrics_figure,
    predict_target,
    predictions_figure,
)

log_to_file(snakemake.log[0])
settings = PredictionSettings.from_config(snakemake.params.settings)
results = predict_target(dict(zip(snakemake.params.names, snakemake.input.features, strict=True)),
                         read_participants(snakemake.input.participants),
                         snakemake.wildcards.target, settings=settings,
                         folds=pd.read_csv(snakemake.input.folds, sep="\t"),
                         n_jobs=snakemake.threads, finetuned=snakemake.params.finetuned)
metrics = results.metrics
# which participants each encoder was pretrained on; n/a for features with no pretraining
metrics["pretraining"] = metrics["feature_set"].map(snakemake.params.pretraining).fillna("n/a")
for frame, path in ((metrics, snakemake.output.metrics),
                    (results.predictions, snakemake.output.predictions),
                    (results.splits, snakemake.output.splits),
                    (results.site_probe if settings.site_column else metrics.iloc[:0],
                     snakemake.output.site_probe)):
    frame.to_csv(path, sep="\t", index=False, na_rep="n/a")
results.label_efficiency.to_csv(snakemake.output.label_efficiency, sep="\t", index=False)
task = metrics["task"].iloc[0]
metrics_figure(metrics, PRIMARY[task], snakemake.output.figure)
positive = metrics["positive_class"].iloc[0]
predictions_figure(results.predictions, task, positive if task == "binary" else None,
                   snakemake.output.predictions_figure)
label_efficiency_figure(results.label_efficiency, snakemake.output.label_efficiency_figure)
