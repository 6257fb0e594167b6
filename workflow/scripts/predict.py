import pandas as pd

from brainrep.bids import read_participants
from brainrep.io import log_to_file, read_features
from brainrep.predict import (
    PRIMARY,
    PredictionSettings,
    evaluate,
    label_efficiency,
    label_efficiency_figure,
    metrics_figure,
    predictions_figure,
    site_probe,
)

log_to_file(snakemake.log[0])
settings = PredictionSettings.from_config(snakemake.params.settings)
folds = pd.read_csv(snakemake.input.folds, sep="\t")
participants = read_participants(snakemake.input.participants)
features = {name: read_features(path)
            for name, path in zip(snakemake.params.names, snakemake.input.features, strict=True)}
metrics, predictions, splits = evaluate(features, participants, snakemake.wildcards.target,
                                       settings=settings, folds=folds, n_jobs=snakemake.threads)
# which participants each encoder was pretrained on; n/a for features with no pretraining
metrics["pretraining"] = metrics["feature_set"].map(snakemake.params.pretraining).fillna("n/a")
for frame, path in ((metrics, snakemake.output.metrics),
                    (predictions, snakemake.output.predictions),
                    (splits, snakemake.output.splits)):
    frame.to_csv(path, sep="\t", index=False, na_rep="n/a")
task = metrics["task"].iloc[0]
metrics_figure(metrics, PRIMARY[task], snakemake.output.figure)
positive = metrics["positive_class"].iloc[0]
predictions_figure(predictions, task, positive if task == "binary" else None,
                   snakemake.output.predictions_figure)
probe = (site_probe(features, participants, settings=settings, folds=folds,
                    n_jobs=snakemake.threads) if settings.site_column
         else metrics.iloc[:0])
probe.to_csv(snakemake.output.site_probe, sep="\t", index=False, na_rep="n/a")
curve = label_efficiency(features, participants, snakemake.wildcards.target, settings=settings,
                         folds=folds, n_jobs=snakemake.threads)
curve.to_csv(snakemake.output.label_efficiency, sep="\t", index=False)
label_efficiency_figure(curve, snakemake.output.label_efficiency_figure)
