"""Fine-tuning an encoder with a label inside each training split, the way SSL transfer is
evaluated (e.g. Banville et al. 2021; Yang et al. 2023, LaBraM): the encoder plus a linear
head, trained with AdamW and early stopping on an inner validation split of the training
participants, then scored on the split's test rows, on which nothing is fitted.

Used for published foundation models (:mod:`brainrep.ssl.foundation`) and for brainrep's
own encoders: in the window-level probe (:func:`encoder_finetuned`, its ``<encoder>_finetuned``
rows), and for each prediction target (:func:`finetuned_embeddings`, the participant-level
feature sets ``<encoder>_<modality>_finetuned``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn

from brainrep.ssl.settings import FinetuneSettings, finetuned_pretraining
from brainrep.ssl.train import choose_device, determinism


@torch.no_grad()
def batched_outputs(encoder: nn.Module, windows: np.ndarray, batch_size: int = 64,
                    device: torch.device | str = "cpu") -> np.ndarray:
    """The outputs (n_windows, ...) of ``encoder`` (embeddings, or a head's logits) for
    windows as it reads them, in batches, without gradients."""
    encoder.eval()
    return np.concatenate([
        encoder(torch.from_numpy(np.array(windows[i:i + batch_size], dtype=np.float32))
                .to(device)).float().cpu().numpy()
        for i in range(0, len(windows), batch_size)])


#: participants with each label below which fine-tuning holds none out: it trains every epoch
#: on all of them and keeps the last weights
MIN_PARTICIPANTS_PER_CLASS = 5


def validation_split(y: np.ndarray, groups: np.ndarray,
                     seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(fit, validation) positions for early stopping: a fifth of the participants
    (``groups``), stratified on ``y`` (StratifiedGroupKFold), every class on both sides; all
    positions and None where a class has fewer than :data:`MIN_PARTICIPANTS_PER_CLASS`
    participants."""
    everyone = np.arange(len(y))
    if pd.Series(groups).groupby(y).nunique().min() < MIN_PARTICIPANTS_PER_CLASS:
        return everyone, None
    fit, validation = next(StratifiedGroupKFold(5, shuffle=True, random_state=seed)
                           .split(everyone, y, groups))
    if set(y[fit]) == set(y[validation]) == set(y):
        return fit, validation
    return everyone, None


def _fit(encoder: nn.Module, head: nn.Linear, X: np.ndarray, y: np.ndarray,
         groups: np.ndarray, settings: FinetuneSettings, generator: torch.Generator,
         device: torch.device, strata: np.ndarray | None = None) -> None:
    """Fine-tune ``encoder`` and ``head`` on (X, y) with AdamW, keeping the weights of the
    epoch with the lowest loss on held-out participants (``groups``,
    :func:`validation_split` stratified on ``strata``, by default ``y``), or those of the last
    epoch where too few are labelled. Integer ``y`` are class indices (cross-entropy); float
    ``y`` are standardised values of a continuous target (squared error of the head's one
    output)."""
    fit, validation = validation_split(y if strata is None else strata, groups, settings.seed)
    model = nn.Sequential(encoder, head).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    X_t, y_t = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    if y_t.is_floating_point():
        def loss_of(rows):
            return nn.functional.mse_loss(model(X_t[rows])[:, 0], y_t[rows])
    else:
        def loss_of(rows):
            return nn.functional.cross_entropy(model(X_t[rows]), y_t[rows])
    best, best_loss, waited = copy.deepcopy(model.state_dict()), np.inf, 0
    for _ in range(settings.epochs):
        model.train()
        order = fit[torch.randperm(len(fit), generator=generator).numpy()]
        for start in range(0, len(order), settings.batch_size):
            optimiser.zero_grad()
            loss_of(order[start:start + settings.batch_size]).backward()
            optimiser.step()
        if validation is None:
            continue
        model.eval()
        with torch.no_grad():
            loss = loss_of(validation).item()
        if loss < best_loss:
            best, best_loss, waited = copy.deepcopy(model.state_dict()), loss, 0
        elif (waited := waited + 1) >= settings.patience:
            break
    if validation is not None:
        model.load_state_dict(best)


def finetune_probabilities(load: Callable[[int], nn.Module], windows: np.ndarray,
                           y: np.ndarray, groups: np.ndarray,
                           splits: list[tuple[np.ndarray, np.ndarray]], *,
                           settings: FinetuneSettings) -> np.ndarray:
    """Class probabilities (n_windows, n_classes) of each split's test rows, from the model
    fine-tuned on that split's training rows: ``load(k)`` gives split k's pretrained encoder
    afresh (windows as it reads them), a linear head is added, and
    ``groups`` (participants) choose the inner validation split. ``y`` holds class indices
    0..n_classes-1. Rows in no test set are NaN. On the settings' ``device``, with its
    ``seed``."""
    windows = np.asarray(windows, dtype=np.float32)
    device = choose_device(settings.device)
    determinism(settings.seed, device)
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    n_classes = int(y.max()) + 1
    probabilities = np.full((len(windows), n_classes), np.nan)
    for k, (train, test) in enumerate(splits):
        encoder = load(k).to(device)
        with torch.no_grad():
            dim = encoder(torch.from_numpy(windows[:1]).to(device)).shape[1]
        head = nn.Linear(dim, n_classes)
        _fit(encoder, head, windows[train], y[train], groups[train], settings, generator,
             device)
        logits = batched_outputs(nn.Sequential(encoder, head), windows[test], 256, device)
        probabilities[test] = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    return probabilities


def finetune_scores(load: Callable[[int], nn.Module], windows: np.ndarray, table: pd.DataFrame,
                    label: str, splits: list[tuple[np.ndarray, np.ndarray]], *,
                    settings: FinetuneSettings) -> np.ndarray:
    """Balanced accuracy per split of the model fine-tuned with ``label`` (a column of
    ``table``, one row per window) on each split's training rows
    (:func:`finetune_probabilities`)."""
    _, y = np.unique(table[label].astype(str).to_numpy(), return_inverse=True)
    probabilities = finetune_probabilities(load, windows, y, table["participant_id"].to_numpy(),
                                           splits, settings=settings)
    return np.array([balanced_accuracy_score(y[test], probabilities[test].argmax(1))
                     for _, test in splits])


class Standardised(nn.Module):
    """``encoder`` reading windows standardised by ``mean`` and ``std`` (the per-channel
    statistics a brainrep checkpoint was pretrained with, broadcast over windows)."""

    def __init__(self, encoder: nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.encoder((windows - self.mean) / self.std)


def encoder_finetuned(checkpoints: dict[str, str | Path], windows: np.ndarray,
                      table: pd.DataFrame, encoder: str, modality: str, *, label: str,
                      n_splits: int = 5, folds: pd.DataFrame | None = None,
                      fractions: tuple[float, ...] = (1.0,),
                      settings: FinetuneSettings) -> pd.DataFrame:
    """The window-level probe's row ``<encoder>_finetuned``: brainrep's ``encoder`` (``ssl``,
    ``random``: its initial weights, so trained with the label from scratch, pretraining
    ``none``; or ``crossmodal``: the
    ``modality`` encoder of a cross-modal checkpoint) and a linear head fine-tuned with
    ``label`` (a column of ``table``, one row per window of ``windows``) inside each probe
    split, scored on its test participants. The splits are the linear probe's
    (:func:`~brainrep.ssl.probe.probe_splits`: ``n_splits`` drawn with the settings' ``seed``,
    or the outer ``folds``). ``checkpoints`` maps ``ssl_pretrain``'s {pretrain} to the
    checkpoint: one of ``corpus`` or ``all``, or ``fold<k>`` for each outer fold k, whose
    encoder is fine-tuned in split k only. One row per labelled fraction of the training
    participants (``fractions``: the probe's subsets, :func:`~brainrep.ssl.probe.fewer_labels`).
    """
    from brainrep.ssl.probe import labelled, probe_splits

    if len(table) != len(windows):
        raise ValueError(f"{len(table)} table rows for {len(windows)} windows: give one row "
                         "per window, in order")
    rows = labelled(table.reset_index(drop=True).assign(
        pretraining=finetuned_pretraining(encoder, sorted(checkpoints))), label)
    splits = probe_splits(rows.reset_index(drop=True), label, n_splits, settings.seed, folds)
    return finetuned_rows(f"{encoder}_finetuned",
                          encoder_loader(checkpoints, encoder, modality, folds, len(splits)),
                          np.asarray(windows)[rows.index], rows.reset_index(drop=True), label,
                          splits, fractions, settings)


def encoder_loader(checkpoints: dict[str, str | Path], encoder: str, modality: str,
                   folds: pd.DataFrame | None, n_splits: int) -> Callable[[int], nn.Module]:
    """``load(i)``: brainrep's ``encoder`` (``ssl``; ``random``, its initial weights;
    ``crossmodal``, the ``modality`` encoder of a cross-modal checkpoint), afresh and reading
    windows as they are stored, for split i of ``n_splits``. ``checkpoints`` maps
    ``ssl_pretrain``'s {pretrain} to the checkpoint: one of ``corpus`` or ``all``, used in
    every split, or ``fold<k>`` for each outer fold k of ``folds``: split i is the i-th fold
    in sorted order, and gets that fold's checkpoint only."""
    from brainrep.ssl.embed import load_encoder

    pretrain = sorted(checkpoints)
    if pretrain[0].startswith("fold"):
        if folds is None:
            raise ValueError(f"checkpoints of {pretrain} need the outer folds they were "
                             "pretrained on (group/predict/folds.tsv)")
        names = [f"fold{k}" for k in sorted(folds["fold"].unique())]
        if sorted(names) != pretrain:
            raise ValueError(f"checkpoints of {pretrain}, but the outer folds are {names}")
    elif len(pretrain) == 1:
        names = pretrain * n_splits
    else:
        raise ValueError(f"one corpus or transductive checkpoint, not {pretrain}")

    def load(k: int) -> nn.Module:
        module, entry = load_encoder(checkpoints[names[k]],
                                     "random" if encoder == "random" else "ssl",
                                     modality if encoder == "crossmodal" else "encoder")
        return Standardised(module, entry["mean"], entry["std"])

    return load


def finetuned_embeddings(load: Callable[[int], nn.Module], windows: np.ndarray,
                         table: pd.DataFrame, labels: pd.Series, folds: pd.DataFrame, *,
                         settings: FinetuneSettings, encoder: str,
                         pretraining: str) -> pd.DataFrame:
    """Participant embeddings from an encoder fine-tuned with a prediction target inside each
    outer fold: the participant-level feature table ``<encoder>_<modality>_finetuned``.

    ``folds`` (``participant_id``, ``fold``; :func:`~brainrep.predict.participant_folds`)
    are taken in sorted fold order; for the i-th fold k, ``load(i)`` gives the pretrained
    encoder, which is fine-tuned with a linear head (:func:`_fit`: AdamW, early stopping on
    held-out training participants, :func:`validation_split`) on the windows of the
    participants outside fold k that have a label in ``labels`` (participants.tsv's target
    column, indexed by ``participant_id``; each window carries its participant's label; a
    continuous target is standardised over those windows and fitted by squared error). Each
    fold's draws start from the settings' ``seed`` plus k, so nothing of another fold's
    training reaches it. The head is dropped and every window of ``windows`` (n_windows,
    channels, times; rows of ``table``; read a batch at a time) is embedded: fold k's test
    participants are seen only then. Returns one row per participant and fold: the mean
    embedding ``emb_000``..., ``encoder`` (``<encoder>_finetuned``), ``pretraining`` and
    ``encoder_fold`` (k): the prediction harness scores fold k's test participants with fold
    k's rows (:func:`~brainrep.predict.evaluate`).
    """
    from brainrep.predict.targets import class_labels, is_continuous, quantile_strata
    from brainrep.ssl.embed import embedding_tables

    if len(table) != len(windows):
        raise ValueError(f"{len(table)} table rows for {len(windows)} windows: give one row "
                         "per window, in order")
    participant = table["participant_id"].to_numpy()
    values = labels.dropna()
    continuous = is_continuous(values)
    if continuous:
        y_all = values.reindex(participant).to_numpy(dtype=float)
        known = ~np.isnan(y_all)
        n_outputs = 1
    else:
        classes = class_labels(values)
        class_names = np.array(sorted(classes.unique()))
        known = classes.reindex(participant).notna().to_numpy()
        y_all = np.searchsorted(class_names,
                                classes.reindex(participant).fillna(class_names[0]).to_numpy())
        n_outputs = len(class_names)
    fold_of = folds.set_index("participant_id")["fold"].reindex(participant).to_numpy()
    device = choose_device(settings.device)
    determinism(settings.seed, device)
    tables = []
    for i, k in enumerate(sorted(folds["fold"].unique())):
        train = np.flatnonzero(known & (fold_of != k))
        if continuous:
            y = y_all[train]
            y = ((y - y.mean()) / (y.std() or 1.0)).astype(np.float32)
            strata = quantile_strata(y)
        else:
            y, strata = y_all[train].astype(np.int64), None
            if len(np.unique(y)) < 2:
                raise ValueError(f"outer fold {k}: the training participants have one class "
                                 f"of {labels.name!r}; fine-tuning needs two or more")
        torch.manual_seed(settings.seed + int(k))
        generator = torch.Generator().manual_seed(settings.seed + int(k))
        module = load(i).to(device)
        with torch.no_grad():
            dim = module(torch.from_numpy(np.array(windows[:1], dtype=np.float32))
                         .to(device)).shape[1]
        head = nn.Linear(dim, n_outputs)
        _fit(module, head, np.asarray(windows[train], dtype=np.float32), y, participant[train],
             settings, generator, device, strata)
        _, per_participant = embedding_tables(batched_outputs(module, windows, 256, device),
                                              table, f"{encoder}_finetuned", pretraining)
        tables.append(per_participant.assign(encoder_fold=int(k)))
    return pd.concat(tables, ignore_index=True)


def finetuned_rows(name: str, load: Callable[[int], nn.Module], windows: np.ndarray,
                   rows: pd.DataFrame, label: str, splits: list[tuple[np.ndarray, np.ndarray]],
                   fractions: tuple[float, ...], settings: FinetuneSettings) -> pd.DataFrame:
    """The probe rows ``name`` of the model ``load`` gives, fine-tuned in each split with
    only a fraction of the training participants labelled (:func:`finetune_scores`), for
    each of ``fractions``; ``rows`` (labelled windows) are those of ``windows``."""
    from brainrep.ssl.probe import fewer_labels, probe_row

    return pd.DataFrame([probe_row(name, rows, label, finetune_scores(
        load, windows, rows, label,
        [(fewer_labels(rows, label, train, k, fraction, settings.seed), test)
         for k, (train, test) in enumerate(splits)], settings=settings), fraction)
        for fraction in fractions])
