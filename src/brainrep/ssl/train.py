"""Deterministic, resumable SSL pretraining with early stopping on held-out participants."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from brainrep.ssl.encoders import build_encoder
from brainrep.ssl.objectives import OBJECTIVES

log = logging.getLogger(__name__)


def choose_device(requested: str) -> torch.device:
    """``auto`` takes CUDA when available, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("ssl.device is 'cuda' but no CUDA device is visible. Use 'auto'.")
    return torch.device(requested)


def fingerprint(windows: np.ndarray, participants: np.ndarray, settings: dict) -> str:
    """Hash of the training data and settings; a checkpoint is reused only when it matches."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(str(windows.shape).encode())
    digest.update(np.ascontiguousarray(windows).tobytes())
    digest.update("|".join(map(str, participants)).encode())
    return digest.hexdigest()[:16]


def held_out_participants(participants: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Participants kept out of the gradient steps to decide early stopping."""
    unique = np.unique(participants)
    n_held = max(1, int(round(fraction * len(unique))))
    return np.random.default_rng(seed).choice(unique, n_held, replace=False)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)
            if len(order[i:i + batch_size]) > 1]


def build_model(settings: dict, n_channels: int) -> torch.nn.Module:
    """Encoder plus its objective head, initialized from ``settings['seed']``."""
    torch.manual_seed(settings["seed"])
    encoder = build_encoder(settings["encoder"], n_channels, settings["width"],
                            settings["embedding_dim"])
    return OBJECTIVES[settings["objective"]](encoder, n_channels=n_channels, **{
        k: settings[k] for k in ("embedding_dim", "temperature", "mask_ratio")})


def pretrain(windows: np.ndarray, participants: np.ndarray, settings: dict,
             checkpoint: str | Path) -> pd.DataFrame:
    """Train ``settings['objective']`` on ``windows`` (n, channels, time); write ``checkpoint``.

    Every epoch writes ``<checkpoint>.partial``; a rerun with the same data and settings
    resumes from it. Returns the loss history (one row per epoch).
    """
    checkpoint = Path(checkpoint)
    partial = checkpoint.with_name(checkpoint.name + ".partial")
    device = choose_device(settings["device"])
    torch.use_deterministic_algorithms(True, warn_only=True)
    key = fingerprint(windows, participants, settings)

    mean = windows.mean(axis=(0, 2), keepdims=True)
    std = windows.std(axis=(0, 2), keepdims=True) + 1e-6
    data = torch.from_numpy(((windows - mean) / std).astype(np.float32))
    held = np.isin(participants, held_out_participants(participants, 0.15, settings["seed"]))
    train_data, val_data = data[~held], data[held]

    model = build_model(settings, windows.shape[1])
    initial_state = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["learning_rate"])
    start, history, best = 0, [], {"loss": float("inf"), "state": None, "epoch": -1}
    if partial.exists():
        state = torch.load(partial, map_location=device, weights_only=False)
        if state["fingerprint"] == key:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start, history, best = state["epoch"] + 1, state["history"], state["best"]
            log.info("resuming from %s at epoch %d", partial, start)
        else:
            log.info("ignoring %s: it was trained on other data or settings", partial)

    amp = device.type == "cuda"
    progress = tqdm(range(start, settings["epochs"]), file=sys.stderr, mininterval=5,
                    desc=f"ssl {settings['objective']}", initial=start, total=settings["epochs"])
    for epoch in progress:
        generator = torch.Generator().manual_seed(settings["seed"] * 100_003 + epoch)
        model.train()
        tic, losses = time.perf_counter(), []
        for batch in _batches(len(train_data), settings["batch_size"], generator):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = model.loss(train_data[batch].to(device), generator)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        seconds = time.perf_counter() - tic
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            val_generator = torch.Generator().manual_seed(settings["seed"])
            val = float(np.mean([model.loss(val_data[b].to(device), val_generator).item()
                                 for b in _batches(len(val_data), settings["batch_size"],
                                                   val_generator)] or [np.nan]))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val,
                        "windows_per_s": len(train_data) / seconds})
        progress.set_postfix(train=history[-1]["train_loss"], val=val)
        if val < best["loss"]:
            best = {"loss": val, "epoch": epoch,
                    "state": {k: v.detach().cpu().clone()
                              for k, v in model.encoder.state_dict().items()}}
        torch.save({"fingerprint": key, "epoch": epoch, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "history": history, "best": best},
                   partial)
        if epoch - best["epoch"] >= settings["patience"]:
            log.info("early stop at epoch %d (best %d)", epoch, best["epoch"])
            break

    torch.save({"fingerprint": key, "settings": settings, "n_channels": windows.shape[1],
                "mean": mean, "std": std, "encoder_state": best["state"],
                "initial_state": initial_state, "best_epoch": best["epoch"],
                "history": history, "device": str(device),
                "determinism": {"torch_deterministic": True, "seed": settings["seed"]},
                "pretraining_participants": sorted(set(participants))}, checkpoint)
    partial.unlink(missing_ok=True)
    return pd.DataFrame(history)
