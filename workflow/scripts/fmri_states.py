import pandas as pd

from brainrep.io import log_to_file
from brainrep.subtype import StatesSettings, state_features

log_to_file(snakemake.log[0])
status = pd.read_csv(snakemake.input.runs, sep="\t", keep_default_na=False)["status"]
kept = [i for i, value in enumerate(status) if value == "included"]
parcels = pd.read_csv(snakemake.input.parcels, sep="\t", keep_default_na=False)
kept_parcels = parcels.loc[parcels["kept"].astype(str) == "True", "parcel"].astype(str).tolist()


def series(path: str) -> pd.DataFrame:
    """A run's parcel series over the kept parcels (a parcel it lacks: 0, its z-scored mean)."""
    table = pd.read_csv(path, sep="\t")
    table.columns = table.columns.astype(str)
    return table.reindex(columns=kept_parcels, fill_value=0.0)


runs = [series(snakemake.input.timeseries[i]).to_numpy(dtype=float) for i in kept]
settings = StatesSettings.from_config(snakemake.params.settings)
state_features(runs, [snakemake.params.participants[i] for i in kept], settings=settings,
               seed=snakemake.params.seed,
               folds=pd.read_csv(snakemake.input.folds, sep="\t")).to_csv(
    snakemake.output[0], sep="\t", index=False)
