"""Fine-tuning an encoder with a label inside each training split, the way SSL transfer is
evaluated (e.g. Banville et al. 2021; Yang et al. 2023, LaBraM): the encoder plus a linear
head, trained with AdamW and early stopping on an inner validation split of the training
participants, then scored on the split's test rows, on which nothing is fitted.

Used for published foundation models (:mod:`brainrep.ssl.foundation`) and for brainrep's
own encoders (``benchmarks/transfer.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupShuffleSplit
from torch import nn

from brainrep.ssl.settings import FinetuneSettings
from brainrep.ssl.train import choose_device, determinism


@torch.no_grad()
def batched_outputs(encoder: nn.Module, windows: np.ndarray, batch_size: int = 64,
                    device: torch.device | str = "cpu") -> np.ndarray:
    """The outputs (n_windows, ...) of ``encoder`` (embeddings, or a head's logits) for
    windows as it reads them, in batches, without gradients."""
    encoder.eval()
    return np.concatenate([encoder(torch.from_numpy(windows[i:i + batch_size]).to(device))
                           .float().cpu().numpy() for i in range(0, len(windows), batch_size)])


def _fit(encoder: nn.Module, head: nn.Linear, X: np.ndarray, y: np.ndarray,
         groups: np.ndarray, settings: FinetuneSettings, generator: torch.Generator,
         device: torch.device) -> None:
    """Fine-tune ``encoder`` and ``head`` on (X, y) with AdamW, keeping the weights of the
    epoch with the lowest loss on a held-out fifth of the participants (``groups``)."""
    fit, validation = next(GroupShuffleSplit(1, test_size=0.2, random_state=settings.seed)
                           .split(X, y, groups))
    model = nn.Sequential(encoder, head).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    X_t, y_t = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    best, best_loss, waited = copy.deepcopy(model.state_dict()), np.inf, 0
    for _ in range(settings.epochs):
        model.train()
        order = fit[torch.randperm(len(fit), generator=generator).numpy()]
        for start in range(0, len(order), settings.batch_size):
            batch = order[start:start + settings.batch_size]
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(X_t[batch]), y_t[batch]).backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            loss = nn.functional.cross_entropy(model(X_t[validation]), y_t[validation]).item()
        if loss < best_loss:
            best, best_loss, waited = copy.deepcopy(model.state_dict()), loss, 0
        elif (waited := waited + 1) >= settings.patience:
            break
    model.load_state_dict(best)


def finetune_probabilities(load: Callable[[], nn.Module], windows: np.ndarray, y: np.ndarray,
                           groups: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], *,
                           settings: FinetuneSettings) -> np.ndarray:
    """Class probabilities (n_windows, n_classes) of each split's test rows, from the model
    fine-tuned on that split's training rows: ``load()`` gives the pretrained encoder afresh
    for every split (windows as it reads them), a linear head is added, and
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
    for train, test in splits:
        encoder = load().to(device)
        with torch.no_grad():
            dim = encoder(torch.from_numpy(windows[:1]).to(device)).shape[1]
        head = nn.Linear(dim, n_classes)
        _fit(encoder, head, windows[train], y[train], groups[train], settings, generator,
             device)
        logits = batched_outputs(nn.Sequential(encoder, head), windows[test], 256, device)
        probabilities[test] = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    return probabilities


def finetune_scores(load: Callable[[], nn.Module], windows: np.ndarray, table: pd.DataFrame,
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
