"""SSL transfer on EEGMAT: pretrain on every recording of 6 participants, probe rest vs mental
arithmetic on the other 4 (participant-grouped), against from-scratch SSL, random init and
the classical features of the same windows.

Run from the repository root, after the EEG stage of the EEGMAT example::

    snakemake --cores 2 eeg --configfile config/examples/eegmat.yaml
    python benchmarks/transfer_eegmat.py [--store results/eegmat/group/eeg] [--partitions 5]
                                         [--permutations 100] [--epochs 30]

For each of ``--partitions`` random 6/4 partitions of the participants (no labels are used
to choose them or to pretrain), every feature set of the 4 evaluation participants is probed
by a standardized logistic regression, leave-one-participant-out (the window-level probe's
splits):

* ``ssl_transfer``: the example's encoder (``ssl.eeg``: contrastive, conv) pretrained on the 6
  corpus participants, frozen; ``ssl_transfer_finetuned``: the same encoder fine-tuned with
  the label inside each training fold (AdamW 1e-4, early stopping on a held-out training
  participant), scored on the test participant;
* ``ssl_scratch``: the same encoder pretrained on the 4 evaluation participants themselves
  (label-free, transductive); ``random``: its random initialisation;
* ``bandpower`` and ``riemann``: log band power and log-Euclidean covariances per window.

Prints balanced accuracy per feature set: the mean over partitions with the range, and a
permutation p-value (window labels permuted within each participant, in every partition, the
probe refitted; the mean over partitions is compared). The fine-tuned encoder has no
permutation p-value (each permutation would fine-tune it again).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def _probe_scores(features: dict[str, pd.DataFrame], label: str) -> dict[str, float]:
    from brainrep.ssl.probe import linear_probe

    return {name: float(linear_probe(table, label, n_splits=4).mean())
            for name, table in features.items()}


def _within_participant(table: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """The label column with its values shuffled among each participant's windows."""
    labels = table["label"].to_numpy().copy()
    for rows in table.groupby("participant_id").indices.values():
        labels[rows] = rng.permutation(labels[rows])
    return labels


def partition_features(windows: np.ndarray, table: pd.DataFrame, sfreq: float,
                       positions: np.ndarray | None, bands: dict, corpus: list[str], settings,
                       folder: Path) -> tuple[dict[str, pd.DataFrame], float]:
    """The frozen feature sets of the evaluation participants (those not in ``corpus``) and
    the fine-tuned transfer's balanced accuracy."""
    from brainrep.ssl import embed_windows, pretrain
    from brainrep.ssl.embed import load_encoder
    from brainrep.ssl.foundation import finetune_scores
    from brainrep.ssl.probe import eeg_window_features, probe_splits
    from brainrep.ssl.settings import FoundationSettings

    in_corpus = table["participant_id"].isin(corpus).to_numpy()
    evaluation = table[~in_corpus].reset_index(drop=True)
    eval_windows = np.asarray(windows[~in_corpus])
    pretrain(np.asarray(windows[in_corpus]), table[in_corpus].reset_index(drop=True),
             folder / "corpus.pt", positions, settings=settings)
    pretrain(eval_windows, evaluation, folder / "scratch.pt", positions, settings=settings)
    features = {}
    for name, checkpoint, which in (("ssl_transfer", "corpus.pt", "ssl"),
                                    ("ssl_scratch", "scratch.pt", "ssl"),
                                    ("random", "corpus.pt", "random")):
        features[name], _ = embed_windows(folder / checkpoint, eval_windows, evaluation, which)
    features |= eeg_window_features(eval_windows, evaluation, sfreq, bands)
    _, entry = load_encoder(folder / "corpus.pt", "ssl")
    normalised = ((eval_windows - entry["mean"].numpy()) / entry["std"].numpy()).astype(
        np.float32)
    finetuned = finetune_scores(
        lambda: load_encoder(folder / "corpus.pt", "ssl")[0], normalised, evaluation, "label",
        probe_splits(evaluation, "label", n_splits=4),
        settings=FoundationSettings(seed=settings.seed))
    return features, float(finetuned.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="results/eegmat/group/eeg")
    parser.add_argument("--partitions", type=int, default=5)
    parser.add_argument("--permutations", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

    from brainrep.config import validate_config
    from brainrep.ssl.augment import sidecar_positions
    from brainrep.ssl.settings import SSLSettings

    store_dir = Path(args.store)
    windows = np.load(store_dir / "windows.npy", mmap_mode="r")
    table = pd.read_csv(store_dir / "windows.tsv", sep="\t")
    store = json.loads((store_dir / "windows.json").read_text())
    positions = sidecar_positions(store_dir / "windows.json")
    config = validate_config({"ssl": {"eeg": {"objective": "contrastive"}}},
                             "workflow/schemas/config.schema.yaml")
    settings = SSLSettings.from_config(config["ssl"]["eeg"] | {
        "epochs": args.epochs, "seed": 0, "device": "auto"}).for_modality("eeg")
    participants = sorted(table["participant_id"].unique())
    rng = np.random.default_rng(0)
    observed, permuted, finetuned = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.partitions):
            corpus = sorted(rng.choice(participants, size=6, replace=False))
            folder = Path(tmp) / f"partition{k}"
            folder.mkdir()
            features, tuned = partition_features(windows, table, store["sfreq_hz"], positions,
                                                 config["eeg"]["bands"], corpus, settings,
                                                 folder)
            observed.append(_probe_scores(features, "label"))
            finetuned.append(tuned)
            draws = np.random.default_rng(k)
            permuted.append([_probe_scores({n: f.assign(label=_within_participant(f, shuffle))
                                            for n, f in features.items()}, "label")
                             for shuffle in [np.random.default_rng(draws.integers(1 << 31))
                                             for _ in range(args.permutations)]])
            print(f"partition {k}: corpus {corpus}: "
                  + ", ".join(f"{n} {v:.3f}" for n, v in observed[-1].items())
                  + f", ssl_transfer_finetuned {tuned:.3f}", flush=True)
    rows = []
    for name in observed[0]:
        scores = np.array([o[name] for o in observed])
        null = np.array([[p[i][name] for p in permuted] for i in range(args.permutations)])
        p_value = (1 + (null.mean(axis=1) >= scores.mean()).sum()) / (1 + args.permutations)
        rows.append({"feature set": name, "balanced accuracy": scores.mean(),
                     "min": scores.min(), "max": scores.max(), "permutation p": p_value})
    tuned = np.array(finetuned)
    rows.append({"feature set": "ssl_transfer_finetuned", "balanced accuracy": tuned.mean(),
                 "min": tuned.min(), "max": tuned.max(), "permutation p": np.nan})
    print(f"\n{args.partitions} partitions (6 pretraining / 4 evaluation participants), "
          f"{args.permutations} permutations, {args.epochs} SSL epochs\n")
    print(pd.DataFrame(rows).to_string(index=False, float_format="{:.3f}".format))


if __name__ == "__main__":
    main()
