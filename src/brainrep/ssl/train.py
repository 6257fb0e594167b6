"""Deterministic, resumable SSL pretraining with early stopping on held-out participants.

:func:`pretrain` trains one modality's encoder; :func:`pretrain_crossmodal` trains the EEG and
fMRI encoders together. Both write a checkpoint holding, per encoder, its architecture, the
standardization of its input, the best weights (lowest held-out loss) and the initial
weights (the random-init baseline of the same architecture).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from brainrep.io import check_sha256
from brainrep.ssl.augment import build_augmentations
from brainrep.ssl.checkpoints import atomic_save, code_version, load_pretrained, read_partial
from brainrep.ssl.encoders import build_encoder
from brainrep.ssl.objectives import OBJECTIVES, CrossModal
from brainrep.ssl.pools import Batch, PairedPool, WindowPool, resident
from brainrep.ssl.settings import CrossModalSettings, SSLSettings
from brainrep.storage import scratch_array

log = logging.getLogger(__name__)

RECORDING_COLUMNS = ("participant_id", "recording", "session", "task", "run")
ONSET_COLUMNS = ("onset_s", "onset_vol")
SPEC_KEYS = ("encoder", "width", "embedding_dim", "depth", "patch_size")
HASH_CHUNK = 4096  # windows hashed at a time


def choose_device(requested: str) -> torch.device:
    """``auto`` takes CUDA when available, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("ssl.device is 'cuda' but no CUDA device is visible. Use 'auto'.")
    return torch.device(requested)


def determinism(seed: int, device: torch.device) -> dict:
    """Make the run repeatable and return the settings to record with the checkpoint."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    return {"seed": seed, "torch_deterministic_algorithms": True, "cudnn_benchmark": False,
            "torch": str(torch.__version__), "device": str(device),
            "python": platform.python_version()}


def fingerprint(arrays: list[np.ndarray], participants: list[np.ndarray],
                settings: SSLSettings | CrossModalSettings) -> str:
    """Hash of the training data, the settings, the code version and any initial
    checkpoint."""
    digest = hashlib.sha256(json.dumps(settings.to_dict(), sort_keys=True,
                                       default=str).encode())
    digest.update(code_version().encode())
    for windows, ids in zip(arrays, participants, strict=True):
        digest.update(str(windows.shape).encode())
        for start in range(0, len(windows), HASH_CHUNK):  # bounded memory, same digest
            digest.update(np.ascontiguousarray(windows[start:start + HASH_CHUNK]))
        digest.update("|".join(map(str, ids)).encode())
    if getattr(settings, "init_checkpoint", None):
        digest.update(Path(settings.init_checkpoint).read_bytes())
    return digest.hexdigest()[:16]


def held_out_participants(participants: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Participants kept out of the gradient steps to decide early stopping."""
    unique = np.unique(participants)
    n_held = max(1, int(round(fraction * len(unique))))
    return np.random.default_rng(seed).choice(unique, n_held, replace=False)


def window_positions(table: pd.DataFrame, recording: np.ndarray) -> np.ndarray:
    """Onset of each window in its recording, in that recording's window steps (the median
    onset difference, so a gap left by rejected windows keeps its length and jittered
    event onsets keep their typical spacing), from ``onset_s`` or ``onset_vol``. Without
    onsets, the window index."""
    column = next((c for c in ONSET_COLUMNS if c in table), None)
    if column is None:
        return table["window"].to_numpy(dtype=float)
    onset = table[column].to_numpy(dtype=float)
    positions = np.empty(len(onset))
    for r in np.unique(recording):
        rows = recording == r
        steps = np.diff(np.sort(onset[rows]))
        step = np.median(steps[steps > 0]) if (steps > 0).any() else 1.0
        positions[rows] = np.round(onset[rows] / step, 3)
    return positions


def channel_scaling(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each channel over windows and time, (1, channels, 1),
    in numpy's own steps for ``mean`` and ``std`` (so the same bits) but with the squared
    deviations, as large as ``windows``, in a :func:`~brainrep.storage.scratch_array` on disk."""
    n = windows.shape[0] * windows.shape[2]
    mean = np.add.reduce(windows, axis=(0, 2), keepdims=True)
    mean = np.true_divide(mean, n, out=mean, casting="unsafe")
    deviations = np.subtract(windows, mean, out=scratch_array(
        windows.shape, np.result_type(windows.dtype, mean.dtype)))
    np.multiply(deviations, deviations, out=deviations)
    variance = np.add.reduce(deviations, axis=(0, 2), keepdims=True)
    del deviations  # frees the scratch file
    variance = np.true_divide(variance, n, out=variance, casting="unsafe")
    return np.asarray(mean), np.sqrt(variance, out=variance)


def window_pool(windows: np.ndarray, table: pd.DataFrame) -> tuple[WindowPool, dict]:
    """``windows`` (n, channels, times; in memory or memory-mapped, never copied into memory)
    as a pool standardized per channel (:func:`channel_scaling`) as batches are read, with
    their recordings and onsets in them (:func:`window_positions`); the scaling used."""
    mean, std = channel_scaling(windows)
    std = std + 1e-6
    columns = [c for c in RECORDING_COLUMNS if c in table]
    recording = table.groupby(columns, dropna=False, sort=False).ngroup().to_numpy()
    pool = WindowPool(windows, np.arange(len(windows)), mean, std, recording,
                      window_positions(table, recording), table["participant_id"].to_numpy())
    return pool, {"mean": mean, "std": std}


def pretraining_rows(table: pd.DataFrame, pretrain: str,
                     folds: pd.DataFrame | None) -> np.ndarray:
    """Rows of ``table`` an encoder may train on: all of them for ``pretrain='all'``, or
    those of participants outside the test set of outer fold k for ``'fold<k>'``."""
    if pretrain == "all":
        return np.ones(len(table), dtype=bool)
    fold = int(pretrain.removeprefix("fold"))
    tested = folds.loc[folds["fold"] == fold, "participant_id"]
    return ~table["participant_id"].isin(tested).to_numpy()


class _EpochBatches(torch.utils.data.Dataset):
    """Batch k of an epoch: the standardized windows at pool positions ``batches[k]``."""

    def __init__(self, pool: WindowPool, batches: list[torch.Tensor]):
        self.pool, self.batches = pool, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int) -> torch.Tensor:
        return self.pool.read(self.batches[k].numpy())


def loaded(pool: WindowPool | PairedPool, batches: list[torch.Tensor], workers: int,
           device: torch.device) -> Iterator[Batch]:
    """Each of ``batches`` (positions in ``pool.anchors``) with its windows on ``device``.

    A torch ``DataLoader`` reads and standardizes each batch's windows from host memory or a
    memory-mapped store: with ``workers`` forked processes, the next batches while the current
    one trains, into pinned memory on CUDA; with 0, in the training process as each batch
    comes. Windows an objective adds to a batch (relative positioning's partners, the
    cross-modal fMRI windows) are read when it asks (``pool.batch``). A pool held on the GPU
    (:func:`.pools.resident`) is gathered there. The windows, and so the training, do not depend on
    ``workers``.
    """
    anchors = pool.anchors
    if anchors.resident is not None:
        yield from (Batch(index, anchors.batch(index, device)) for index in batches)
        return
    loader = torch.utils.data.DataLoader(
        _EpochBatches(anchors, batches), batch_size=None, num_workers=workers,
        # fork: workers share the mapped store instead of a pickled copy each
        multiprocessing_context="fork" if workers else None,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0))  # not the global RNG the model may use
    for index, x in zip(batches, loader, strict=True):
        yield Batch(index, x.to(device, non_blocking=True))


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)
            if len(order[i:i + batch_size]) > 1]


def build_objective(settings: SSLSettings, n_channels: int, n_times: int,
                    positions: np.ndarray | None = None) -> torch.nn.Module:
    """Encoder plus the heads of ``settings.objective``, initialized from the seed."""
    if settings.objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {settings.objective!r}; "
                         f"choose one of {sorted(OBJECTIVES)}")
    torch.manual_seed(settings.seed)
    encoder = build_encoder(settings.encoder, n_channels, n_times,
                            **{k: getattr(settings, k) for k in SPEC_KEYS[1:]})
    objective = OBJECTIVES[settings.objective]
    augmentations = (build_augmentations(list(settings.augmentations), positions)
                     if objective.uses_augmentations else [])
    return objective(encoder, n_channels, settings, augmentations)


def _states(model: torch.nn.Module) -> dict[str, dict]:
    return {name: {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
            for name, encoder in model.encoders().items()}


def _fit(model, train_pool, val_pool, settings: SSLSettings | CrossModalSettings, label: str,
         partial: Path, key: str, device: torch.device,
         workers: int) -> tuple[list[dict], dict]:
    """Epoch loop with AdamW (a step on the mean gradient of ``accumulate_batches``
    batches; bfloat16 autocast and GPU-held windows, :func:`.pools.resident`, on CUDA),
    windows read ahead by ``workers`` data-loader processes (:func:`loaded`), a checkpoint
    every epoch and early stopping on ``val_pool``; resumes from ``partial`` when its
    fingerprint is ``key``. ``label`` names the objective in the progress bar."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate)
    start, history, best = 0, [], {"loss": float("inf"), "states": _states(model), "epoch": -1}
    state = read_partial(partial, device)
    if state is not None:
        if state["fingerprint"] == key:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start, history, best = state["epoch"] + 1, state["history"], state["best"]
            log.info("resuming from %s at epoch %d", partial, start)
        else:
            log.info("ignoring %s: it was trained on other data or settings", partial)
    amp, accumulate = device.type == "cuda", settings.accumulate_batches
    train_pool, val_pool = resident(train_pool, device), resident(val_pool, device)
    progress = tqdm(range(start, settings.epochs), file=sys.stderr, mininterval=5,
                    desc=f"ssl {label}", initial=start, total=settings.epochs)
    for epoch in progress:
        generator = torch.Generator().manual_seed(settings.seed * 100_003 + epoch)
        model.train()
        tic, losses = time.perf_counter(), []
        batches = _batches(len(train_pool), settings.batch_size, generator)
        for step, batch in enumerate(loaded(train_pool, batches, workers, device), start=1):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = model.loss(train_pool, batch, generator)
            group = min(accumulate, len(batches) - (step - 1) // accumulate * accumulate)
            (loss / group if group > 1 else loss).backward()
            if step % accumulate == 0 or step == len(batches):
                optimizer.step()
                optimizer.zero_grad()
            losses.append(loss.detach())  # no host sync per batch (GPU)
        if not losses:
            log.warning("%d training windows make no batch of 2: the encoder keeps its "
                        "initial weights", len(train_pool))
        # one host synchronisation per epoch (training and validation)
        train_loss = _mean(losses)
        seconds = time.perf_counter() - tic
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            val_generator = torch.Generator().manual_seed(settings.seed)
            val_batches = _batches(len(val_pool), settings.batch_size, val_generator)
            val = _mean([model.loss(val_pool, b, val_generator)
                         for b in loaded(val_pool, val_batches, 0, device)])
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val,
                        "windows_per_s": len(train_pool) / seconds})
        progress.set_postfix(train=history[-1]["train_loss"], val=val)
        if val < best["loss"]:
            best = {"loss": val, "epoch": epoch, "states": _states(model)}
        atomic_save({"fingerprint": key, "epoch": epoch, "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(), "history": history, "best": best},
                    partial)
        if epoch - best["epoch"] >= settings.patience:
            log.info("early stop at epoch %d (best %d)", epoch, best["epoch"])
            break
    return history, best


def _mean(losses: list[torch.Tensor]) -> float:
    """Mean of scalar loss tensors (NaN for none), read from the device once."""
    return float(torch.stack(losses).double().mean()) if losses else float("nan")


def _encoder_entry(settings: SSLSettings, n_channels: int, n_times: int, scaling: dict,
                   state: dict, initial: dict) -> dict:
    spec = {k: getattr(settings, k) for k in SPEC_KEYS}
    tensors = {name: torch.from_numpy(np.ascontiguousarray(value))
               for name, value in scaling.items()}
    return {"spec": spec | {"n_channels": n_channels, "n_times": n_times}, **tensors,
            "state": state, "initial_state": initial}


def pretrain(windows: np.ndarray, table: pd.DataFrame, checkpoint: str | Path,
             positions: np.ndarray | None = None, *, settings: SSLSettings,
             workers: int = 0) -> pd.DataFrame:
    """Train ``settings.objective`` on ``windows`` (n, channels, time); write ``checkpoint``.

    ``table`` has one row per window (``participant_id``, optional session/task/run, and
    ``window``, its position in the recording); ``windows`` may be memory-mapped, and
    ``workers`` data-loader processes read its batches (:func:`loaded`). With
    ``init_checkpoint`` the encoder starts from those weights and, unless ``fine_tune``, is
    not trained further. Every epoch writes
    ``<checkpoint>.partial``; a rerun with the same data and settings resumes from it.
    Returns the loss history.
    """
    checkpoint = Path(checkpoint)
    device = choose_device(settings.device)
    record = determinism(settings.seed, device)
    participants = table["participant_id"].to_numpy()
    key = fingerprint([windows], [participants], settings)
    pool, scaling = window_pool(windows, table)
    held = np.isin(participants, held_out_participants(participants, 0.15, settings.seed))
    if held.all():  # one participant: its last windows decide early stopping
        held = np.arange(len(held)) >= len(held) - max(1, round(0.15 * len(held)))

    model = build_objective(settings, windows.shape[1], windows.shape[2], positions)
    initial = _states(model)
    transfer = None
    if settings.init_checkpoint:
        check_sha256(settings.init_checkpoint, settings.init_checkpoint_sha256,
                     "init_checkpoint_sha256")
        transfer = load_pretrained(model.encoder, settings.init_checkpoint)
    model.to(device)
    if transfer and not settings.fine_tune:
        history, best = [], {"epoch": -1, "states": _states(model)}
    else:
        history, best = _fit(model, pool.subset(~held), pool.subset(held), settings,
                             settings.objective,
                             checkpoint.with_name(checkpoint.name + ".partial"), key, device,
                             workers)
    encoders = {"encoder": _encoder_entry(settings, windows.shape[1], windows.shape[2], scaling,
                                          best["states"]["encoder"], initial["encoder"])}
    _save(checkpoint, key, settings, encoders, best, history, record, participants, transfer)
    return pd.DataFrame(history, columns=["epoch", "train_loss", "val_loss", "windows_per_s"])


def pretrain_crossmodal(eeg: tuple[np.ndarray, pd.DataFrame], fmri: tuple[np.ndarray,
                        pd.DataFrame], checkpoint: str | Path,
                        eeg_positions: np.ndarray | None = None, *,
                        settings: CrossModalSettings, workers: int = 0) -> pd.DataFrame:
    """Train an EEG and an fMRI encoder together (:class:`CrossModal`).

    ``eeg`` and ``fmri`` are (windows, table) pairs; ``workers`` data-loader processes read the
    EEG batches (:func:`loaded`). Writes ``checkpoint`` with encoders
    ``eeg`` and ``fmri``; returns the loss history.
    """
    checkpoint = Path(checkpoint)
    if settings.eeg.embedding_dim != settings.fmri.embedding_dim:
        raise ValueError("cross-modal training needs ssl.eeg.embedding_dim == "
                         "ssl.fmri.embedding_dim")
    device = choose_device(settings.device)
    record = determinism(settings.seed, device)
    ids = {m: table["participant_id"].to_numpy() for m, (_, table) in
           (("eeg", eeg), ("fmri", fmri))}
    key = fingerprint([eeg[0], fmri[0]], [ids["eeg"], ids["fmri"]], settings)
    everyone = np.union1d(ids["eeg"], ids["fmri"])
    held_ids = held_out_participants(everyone, 0.15, settings.seed)

    branches, pools, scalings, shapes = {}, {}, {}, {}
    for modality, (windows, table), positions in (("eeg", eeg, eeg_positions),
                                                  ("fmri", fmri, None)):
        branch = replace(getattr(settings, modality), objective="contrastive",
                         seed=settings.seed, temperature=settings.temperature)
        branches[modality] = build_objective(branch, windows.shape[1], windows.shape[2],
                                             positions)
        pools[modality], scalings[modality] = window_pool(windows, table)
        shapes[modality] = windows.shape[1:]
    model = CrossModal(branches["eeg"], branches["fmri"], settings.temperature,
                       settings.weight)
    initial = _states(model)
    model.to(device)
    split = {m: np.isin(ids[m], held_ids) for m in ids}
    train = PairedPool(pools["eeg"].subset(~split["eeg"]), pools["fmri"].subset(~split["fmri"]))
    val = PairedPool(pools["eeg"].subset(split["eeg"]), pools["fmri"].subset(split["fmri"]))
    history, best = _fit(model, train, val, settings, "crossmodal",
                         checkpoint.with_name(checkpoint.name + ".partial"), key, device,
                         workers)
    encoders = {m: _encoder_entry(getattr(settings, m), *shapes[m], scalings[m],
                                  best["states"][m], initial[m]) for m in ("eeg", "fmri")}
    _save(checkpoint, key, settings, encoders, best, history, record, everyone, None)
    return pd.DataFrame(history, columns=["epoch", "train_loss", "val_loss", "windows_per_s"])


def _save(checkpoint: Path, key: str, settings: SSLSettings | CrossModalSettings,
          encoders: dict, best: dict,
          history: list[dict], record: dict, participants: np.ndarray,
          transfer: dict | None) -> None:
    atomic_save({"fingerprint": key, "settings": settings.to_dict(), "encoders": encoders,
                 "best_epoch": best["epoch"], "history": history, "determinism": record,
                 "transfer": transfer,
                 "pretraining_participants": sorted(set(participants.tolist()))}, checkpoint)
    checkpoint.with_name(checkpoint.name + ".partial").unlink(missing_ok=True)
