"""SSL transfer on real data: pretrain on unlabelled participants, evaluate on others.

EEGMAT (rest vs mental arithmetic, 10 participants): for each of ``--repeats`` random
splits, an encoder is pretrained on every window of 6 participants (the corpus, no labels)
and the task is predicted for the other 4 (the cohort), leave one participant out, from
window embeddings. ABIDE (ASD vs TD, 4 sites): for each site, an encoder is pretrained on the
windows of the other three sites (no labels) and diagnosis is predicted inside the held-out
site (stratified 5-fold over participants) from each participant's mean embedding.

Rows, all on the same splits:
  transfer_frozen     corpus encoder, frozen, + logistic regression
  transfer_finetuned  corpus encoder + linear head fine-tuned with the label in each training
                      fold (inner validation split of the training participants)
  scratch_frozen      the same SSL pretrained, in each fold, on the cohort's training
                      participants only (no labels), + logistic regression
  random              the corpus encoder's initial weights (same architecture, untrained)
  bandpower, riemann  EEGMAT: log band power and log-Euclidean channel covariance per window
  edges               ABIDE: the workflow's Fisher-z correlation edges of each participant
                      (<windows>/../features/fmri_connectivity.tsv; an edge of a parcel
                      without signal in all of a participant's runs is NaN, imputed by the
                      training fold's mean)
  <row>_centred       EEGMAT: features centred per participant (label-free, but it uses
                      each test participant's own unlabelled windows)

Logistic regressions are standardized and tuned (C in 1e-3..10, inner participant-grouped
CV). AUROC and balanced accuracy are pooled over each split's test predictions and averaged
over repeats (EEGMAT) or sites (ABIDE); intervals are 95 % percentile bootstraps over
participants (one draw shared by the repeats, conditional on the fitted models); p-values
come from refitting on relabelled data (EEGMAT: each participant's two task labels swapped at
random, the same swap in every repeat; ABIDE: diagnosis permuted within each outer test fold
of each site, so that every fold keeps the class counts its stratified split was made for).
The fine-tuned row gets a p-value from ``--finetune-permutations`` relabellings (default 0:
none), each of which fine-tunes a network per split.

Inputs are the window stores of the example configurations:
  snakemake --cores 2 --configfile config/examples/eegmat.yaml results/eegmat/group/eeg/windows.npy
  snakemake --cores 2 --configfile config/examples/abide.yaml results/abide/group/fmri/windows.npy
Usage: python benchmarks/transfer.py {eegmat,abide} [--objective O] [--width W] ...
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from brainrep.ssl import check_disjoint, embed_windows, model_card, pretrain, recording_hashes
from brainrep.ssl.augment import sidecar_positions
from brainrep.ssl.checkpoints import load_weights
from brainrep.ssl.corpus import PretrainingData
from brainrep.ssl.embed import load_encoder
from brainrep.ssl.finetune import finetune_probabilities
from brainrep.ssl.settings import FinetuneSettings, SSLSettings

Splits = list[tuple[np.ndarray, np.ndarray]]


def fit_probe(X: np.ndarray, y: np.ndarray, groups: np.ndarray, impute: bool = False):
    """Standardized logistic regression, C tuned by participant-grouped inner CV; features with
    gaps (the edges of parcels without signal) are mean-imputed first, and no other
    feature may have one (``impute``: the feature set has gaps, in any row)."""
    inner = StratifiedGroupKFold(min(3, len(np.unique(groups))), shuffle=True, random_state=0)
    model = LogisticRegressionCV(Cs=np.logspace(-3, 1, 5), cv=list(inner.split(X, y, groups)),
                                 max_iter=3000, scoring="roc_auc", l1_ratios=(0,),
                                 use_legacy_attributes=False)
    steps = [SimpleImputer(keep_empty_features=True)] if impute else []
    return make_pipeline(*steps, StandardScaler(), model).fit(X, y)


def probe_probabilities(X: np.ndarray, y: np.ndarray, groups: np.ndarray,
                        splits: Splits) -> np.ndarray:
    """P(class 1) of every split's test rows from a probe fitted on its training rows."""
    p = np.full(len(y), np.nan)
    for train, test in splits:
        fitted = fit_probe(X[train], y[train], groups[train], impute=bool(np.isnan(X).any()))
        p[test] = fitted.predict_proba(X[test])[:, 1]
    return p


def pooled(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(AUROC, balanced accuracy) of predictions ``p`` of the rows that have one."""
    rows = ~np.isnan(p)
    return (roc_auc_score(y[rows], p[rows]),
            balanced_accuracy_score(y[rows], p[rows] > 0.5))


def summarise(name: str, units: list[dict], null: list[float] | None,
              n_boot: int = 1000) -> dict:
    """One table row from per-unit (repeat or site) predictions: mean AUROC and balanced
    accuracy over units, a 95 % bootstrap interval of the mean AUROC (participants drawn with
    replacement once per draw, shared by every unit; conditional on the fitted models), the
    permutation p-value and the null's mean AUROC (cross-validated probes of small samples
    can sit below 0.5 under the null: the p-value compares with that null, not with 0.5)."""
    aurocs, baccs = zip(*(pooled(u["y"], u["p"]) for u in units), strict=True)
    people = np.unique(np.concatenate([u["groups"] for u in units]))
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(n_boot):
        counts = dict(zip(people, rng.multinomial(len(people), np.full(len(people),
                                                                        1 / len(people))),
                          strict=True))
        values = []
        for u in units:
            tested = ~np.isnan(u["p"])
            weight = np.array([counts[g] for g in u["groups"][tested]], dtype=float)
            if len(np.unique(u["y"][tested][weight > 0])) == 2:
                values.append(roc_auc_score(u["y"][tested], u["p"][tested],
                                            sample_weight=weight))
        if values:
            boots.append(np.mean(values))
    observed = float(np.mean(aurocs))
    p_value = (1 + sum(v >= observed for v in null)) / (1 + len(null)) if null else np.nan
    return {"row": name, "auroc": observed, "ci_low": np.percentile(boots, 2.5),
            "ci_high": np.percentile(boots, 97.5), "balanced_accuracy": float(np.mean(baccs)),
            "p_value": p_value, "null_mean": float(np.mean(null)) if null else np.nan,
            "n_permutations": len(null or [])}


def corpus_encoder(windows: np.ndarray, table: pd.DataFrame, rows: np.ndarray,
                   cohort_rows: np.ndarray, settings: SSLSettings, positions, path: Path,
                   name: str) -> Path:
    """Pretrain on ``rows`` after checking the cohort is not in them; write the model card."""
    corpus = PretrainingData(windows[rows], table[rows].reset_index(drop=True),
                             recording_hashes(windows[rows], table[rows]),
                             table.participant_id[rows].unique().tolist(), {}, name)
    check_disjoint(corpus.participants, corpus.hashes,
                   table.participant_id[cohort_rows].unique().tolist(),
                   recording_hashes(windows[cohort_rows], table[cohort_rows]),
                   corpus=name, cohort=f"{name} (cohort)")
    pretrain(corpus.windows, corpus.table, path, positions, settings=settings)
    card = model_card(load_weights(path), corpus)
    path.with_suffix(".card.json").write_text(json.dumps(card, indent=1, default=str))
    return path


def embeddings(checkpoint: Path, windows: np.ndarray, table: pd.DataFrame,
               which: str) -> np.ndarray:
    frame, _ = embed_windows(checkpoint, windows, table, which)
    X = frame.filter(regex=r"^emb_").to_numpy()
    if not np.isfinite(X).all():
        raise FloatingPointError(f"{checkpoint} ({which}) gives non-finite embeddings")
    return X


def finetuned(checkpoint: Path, windows: np.ndarray, y: np.ndarray, groups: np.ndarray,
              splits: Splits, settings: FinetuneSettings) -> np.ndarray:
    """P(class 1) per test row of the corpus encoder fine-tuned in each training fold."""
    _, entry = load_encoder(checkpoint, "ssl")
    prepared = ((windows - entry["mean"].numpy()) / entry["std"].numpy()).astype(np.float32)
    return finetune_probabilities(lambda _: load_encoder(checkpoint, "ssl")[0], prepared, y,
                                  groups, splits, settings=settings)[:, 1]


def finetuned_by_person(checkpoint: Path, windows: np.ndarray, person: np.ndarray,
                        groups: np.ndarray, splits: Splits, settings: FinetuneSettings,
                        y: np.ndarray) -> np.ndarray:
    """P(class 1) per participant (``y``: one label each; ``person``: each window's index
    into ``y``): the mean over its windows of :func:`finetuned`'s."""
    window_p = finetuned(checkpoint, windows, y[person], groups, splits, settings)
    return np.array([window_p[person == i].mean() for i in range(len(y))])


def scratch(windows: np.ndarray, table: pd.DataFrame, splits: Splits, settings: SSLSettings,
            positions, folder: Path, reduce) -> list[np.ndarray]:
    """Per split: features of all rows from SSL pretrained on the split's training rows."""
    out = []
    for k, (train, _) in enumerate(splits):
        path = folder / f"scratch{k}.pt"
        pretrain(windows[train], table.iloc[train].reset_index(drop=True), path, positions,
                 settings=settings)
        out.append(reduce(embeddings(path, windows, table, "ssl")))
    return out


def per_split_probe(features: list[np.ndarray], y, groups, splits: Splits) -> np.ndarray:
    p = np.full(len(y), np.nan)
    for X, (train, test) in zip(features, splits, strict=True):
        p[test] = probe_probabilities(X, y, groups, [(train, test)])[test]
    return p


def centred(X: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = X.astype(float).copy()
    for g in np.unique(groups):
        out[groups == g] -= out[groups == g].mean(axis=0)
    return out


def eegmat(args, folder: Path) -> list[dict]:
    from brainrep.ssl.probe import eeg_window_features

    store = Path(args.windows or "results/eegmat/group/eeg")
    windows = np.load(store / "windows.npy")
    table = pd.read_csv(store / "windows.tsv", sep="\t")
    positions = sidecar_positions(store / "windows.json")
    sfreq = json.loads((store / "windows.json").read_text())["sfreq_hz"]
    y_all = (table["label"] == "arithmetic").to_numpy(int)
    people = np.array(sorted(table.participant_id.unique()))
    bands = {"delta": [1, 4], "theta": [4, 8], "alpha": [8, 13], "beta": [13, 30],
             "gamma": [30, 40]}
    classical = {n: f.filter(regex=r"^emb_").to_numpy() for n, f in
                 eeg_window_features(windows, table, sfreq, bands).items()}
    units, features = [], {}
    for r in range(args.repeats):
        order = np.random.default_rng(args.seed + r).permutation(people)
        corpus = table.participant_id.isin(order[:6]).to_numpy()
        cohort = ~corpus
        w, t = windows[cohort], table[cohort].reset_index(drop=True)
        y, groups = y_all[cohort], t.participant_id.to_numpy()
        splits = list(LeaveOneGroupOut().split(w, y, groups))
        path = corpus_encoder(windows, table, corpus, cohort, args.settings, positions,
                              folder / f"eegmat_repeat{r}.pt", f"EEGMAT {sorted(order[:6])}")
        f = {"transfer_frozen": embeddings(path, w, t, "ssl"),
             "random": embeddings(path, w, t, "random"),
             "bandpower": classical["bandpower"][cohort], "riemann": classical["riemann"][cohort]}
        for name in list(f):
            f[f"{name}_centred"] = centred(f[name], groups)
        f["scratch_frozen"] = scratch(w, t, splits, args.settings, positions, folder,
                                      lambda X: X)
        features[r] = f
        unit = {"y": y, "groups": groups, "splits": splits, "p": {}}
        for name, X in f.items():
            unit["p"][name] = (per_split_probe(X, y, groups, splits) if isinstance(X, list)
                               else probe_probabilities(X, y, groups, splits))
        f["transfer_finetuned"] = partial(finetuned, path, w, groups=groups, splits=splits,
                                          settings=args.finetune)
        unit["p"]["transfer_finetuned"] = f["transfer_finetuned"](y)
        units.append(unit)
        print(f"repeat {r}: " + ", ".join(f"{n} {pooled(y, p)[0]:.2f}"
                                         for n, p in unit["p"].items()), flush=True)
    swap = np.random.default_rng(args.seed)

    def relabel() -> list[np.ndarray]:  # each participant's two task labels swapped, or not,
        flip = dict(zip(people, swap.random(len(people)) < 0.5, strict=True))  # in every repeat
        return [np.where([flip[g] for g in u["groups"]], 1 - u["y"], u["y"]) for u in units]

    return table_rows(units, features, relabel, args.permutations, args.jobs,
                      args.finetune_permutations)


def abide(args, folder: Path) -> list[dict]:
    store = Path(args.windows or "results/abide/group/fmri")
    windows = np.load(store / "windows.npy")
    table = pd.read_csv(store / "windows.tsv", sep="\t")
    participants = pd.read_csv(args.participants, sep="\t").set_index("participant_id")
    people = np.array(sorted(table.participant_id.unique()))
    site = participants.loc[people, "site"].to_numpy()
    y_people = (participants.loc[people, "diagnosis"] == "ASD").to_numpy(int)
    edges = (pd.read_csv(store.parent / "features" / "fmri_connectivity.tsv", sep="\t")
             .set_index("participant_id").loc[people].to_numpy(float))
    index = {p: i for i, p in enumerate(people)}
    window_person = table.participant_id.map(index).to_numpy()

    def mean_by_person(X: np.ndarray, person: np.ndarray, n: int) -> np.ndarray:
        return np.stack([X[person == i].mean(axis=0) for i in range(n)])

    units, features = [], {}
    for s in np.unique(site):
        cohort_people = np.flatnonzero(site == s)
        cohort = np.isin(window_person, cohort_people)
        w, t = windows[cohort], table[cohort].reset_index(drop=True)
        local = np.searchsorted(cohort_people, window_person[cohort])  # person index in site
        y, groups = y_people[cohort_people], people[cohort_people]
        splits = list(StratifiedKFold(5, shuffle=True, random_state=args.seed)
                      .split(groups, y))
        path = corpus_encoder(windows, table, ~cohort, cohort, args.settings, None,
                              folder / f"abide_without_{s}.pt", f"ABIDE without {s}")
        n = len(cohort_people)
        f = {"transfer_frozen": mean_by_person(embeddings(path, w, t, "ssl"), local, n),
             "random": mean_by_person(embeddings(path, w, t, "random"), local, n),
             "edges": edges[cohort_people]}
        window_splits = [(np.flatnonzero(np.isin(local, tr)), np.flatnonzero(np.isin(local, te)))
                         for tr, te in splits]
        f["scratch_frozen"] = [mean_by_person(X, local, n) for X in scratch(
            w, t, window_splits, args.settings, None, folder, lambda X: X)]
        features[s] = f
        unit = {"y": y, "groups": groups, "splits": splits, "p": {}}
        for name, X in f.items():
            unit["p"][name] = (per_split_probe(X, y, groups, splits) if isinstance(X, list)
                               else probe_probabilities(X, y, groups, splits))
        f["transfer_finetuned"] = partial(finetuned_by_person, path, w, local,
                                          t.participant_id.to_numpy(), window_splits,
                                          args.finetune)
        unit["p"]["transfer_finetuned"] = f["transfer_finetuned"](y)
        units.append(unit)
        print(f"site {s}: " + ", ".join(f"{k} {pooled(y, p)[0]:.2f}"
                                        for k, p in unit["p"].items()), flush=True)
    rng = np.random.default_rng(args.seed)
    return table_rows(units, features, lambda: within_test_folds(units, rng),
                      args.permutations, args.jobs, args.finetune_permutations)


def within_test_folds(units: list[dict], rng: np.random.Generator) -> list[np.ndarray]:
    """One relabelling of every unit: labels permuted within each outer test fold. The
    splits were stratified on the true labels, so every fold keeps its class counts under
    the null (permuting across all folds unbalances them, and the pooled AUROC of a
    cross-validated probe then falls below 0.5 with no signal at all)."""
    permuted = []
    for u in units:
        y = u["y"].copy()
        for _, test in u["splits"]:
            y[test] = rng.permutation(y[test])
        permuted.append(y)
    return permuted


def table_rows(units: list[dict], features: dict, relabel, n_permutations: int,
               n_jobs: int, n_finetune_permutations: int = 0) -> list[dict]:
    """Summary rows; linear-probe rows get permutation p-values (``relabel()`` gives one
    relabelling of every unit per permutation; the features stay: pretraining saw no label),
    the fine-tuned row from its first ``n_finetune_permutations`` (a network fine-tuned per
    relabelling). The permutations run in ``n_jobs`` processes; their relabellings are drawn
    first, so the result does not depend on ``n_jobs``."""
    names = [name for name in units[0]["p"] if name != "transfer_finetuned"]
    relabellings = [relabel() for _ in range(max(n_permutations, n_finetune_permutations))]
    tasks = ([(names, r) for r in relabellings[:n_permutations]]
             + [(["transfer_finetuned"], r) for r in relabellings[:n_finetune_permutations]])
    null_rows = Parallel(n_jobs=n_jobs)(  # each task is sent the features it refits only
        delayed(null_scores)(units, {unit: {n: f[n] for n in which}
                                     for unit, f in features.items()}, which, r)
        for which, r in tasks)
    nulls = {name: [row[name] for row in null_rows if name in row]
             for name in [*names, "transfer_finetuned"]}
    return [summarise(name, [{"y": u["y"], "groups": u["groups"], "p": u["p"][name]}
                             for u in units], nulls.get(name)) for name in units[0]["p"]]


def null_scores(units: list[dict], features: dict, names: list[str],
                relabelled: list[np.ndarray]) -> dict[str, float]:
    """Mean AUROC over units of each probe row refitted on one relabelling."""
    scores = {}
    for name in names:
        values = []
        for u, y, f in zip(units, relabelled, features.values(), strict=True):
            X = f[name]
            if callable(X):  # a model fitted with the label: refitted on the relabelling
                p = X(y)
            elif isinstance(X, list):
                p = per_split_probe(X, y, u["groups"], u["splits"])
            else:
                p = probe_probabilities(X, y, u["groups"], u["splits"])
            values.append(pooled(y, p)[0])
        scores[name] = float(np.mean(values))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["eegmat", "abide"])
    parser.add_argument("--windows", help="window store folder (default: the example's); "
                        "ABIDE's edges are read from <windows>/../features")
    parser.add_argument("--participants", default="../shared/data/abide-cc200/participants.tsv")
    parser.add_argument("--objective", help="SSL objective (default: the example config's)")
    parser.add_argument("--encoder", default="conv")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--finetune-epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5, help="EEGMAT 6/4 splits")
    parser.add_argument("--permutations", type=int, default=100)
    parser.add_argument("--finetune-permutations", type=int, default=0,
                        help="relabellings refitted for the fine-tuned row's p-value (each "
                             "fine-tunes a network per split: use a GPU)")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the permutations")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="TSV of the table (default: print only)")
    args = parser.parse_args()
    objective = args.objective or {"eegmat": "contrastive", "abide": "masked"}[args.dataset]
    args.settings = SSLSettings(
        objective=objective, encoder=args.encoder, width=args.width, depth=args.depth,
        embedding_dim=args.embedding_dim, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, device=args.device).for_modality(
            "eeg" if args.dataset == "eegmat" else "fmri")
    args.finetune = replace(FinetuneSettings(), epochs=args.finetune_epochs, seed=args.seed,
                            device=args.device)
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        rows = (eegmat if args.dataset == "eegmat" else abide)(args, Path(folder))
    result = pd.DataFrame(rows).assign(dataset=args.dataset, objective=objective,
                                       encoder=f"{args.encoder} w{args.width} d{args.depth} "
                                               f"e{args.embedding_dim}", epochs=args.epochs)
    if args.out:
        result.to_csv(args.out, sep="\t", index=False)
    print(result.to_markdown(index=False, floatfmt=".3f"))
    print(f"{time.perf_counter() - tic:.0f} s")


if __name__ == "__main__":
    main()
