"""Embeddings of every window and participant, from a trained or a random-init encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from brainrep.ssl.checkpoints import load_weights
from brainrep.ssl.encoders import build_encoder
from brainrep.ssl.settings import PRETRAINING

ENCODER_STATES = {"ssl": "state", "random": "initial_state"}


def load_encoder(checkpoint: str | Path, which: str,
                 name: str = "encoder") -> tuple[torch.nn.Module, dict]:
    """Encoder ``name`` of a checkpoint, pretrained (``ssl``) or at its initial weights
    (``random``: same architecture, same seed, no training); and its checkpoint entry."""
    state = load_weights(checkpoint)
    entry = state["encoders"][name]
    spec = dict(entry["spec"])
    encoder = build_encoder(spec.pop("encoder"), spec.pop("n_channels"), spec.pop("n_times"),
                            **spec)
    encoder.load_state_dict(entry[ENCODER_STATES[which]])
    return encoder.eval(), entry


@torch.no_grad()
def embed_windows(checkpoint: str | Path, windows: np.ndarray, table: pd.DataFrame, which: str,
                  name: str = "encoder", batch_size: int = 256,
                  pretraining: str = "transductive") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-window and per-participant (mean) embeddings with the window metadata; ``windows``
    (n, channels, times; may be memory-mapped) are standardized a batch at a time.

    Columns ``emb_000``...; ``encoder`` is ``ssl`` or ``random``; ``pretraining`` says which
    participants the encoder saw (``transductive``: all of them, test participants included).
    """
    encoder, entry = load_encoder(checkpoint, which, name)
    mean, std = entry["mean"].numpy(), entry["std"].numpy()
    vectors = np.concatenate([
        encoder(torch.from_numpy(((windows[i:i + batch_size] - mean) / std)
                                 .astype(np.float32))).numpy()
        for i in range(0, len(windows), batch_size)])
    return embedding_tables(vectors, table, which, pretraining)


def embedding_tables(vectors: np.ndarray, table: pd.DataFrame, encoder: str,
                     pretraining: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-window and per-participant (mean) tables of window embeddings ``vectors``
    (n_windows, dim), rows as in ``table``: its columns, ``emb_000``..., ``encoder`` and
    ``pretraining``."""
    columns = [f"emb_{i:03d}" for i in range(vectors.shape[1])]
    per_window = pd.concat([table.reset_index(drop=True),
                            pd.DataFrame(vectors, columns=columns)], axis=1)
    per_window["encoder"] = encoder
    per_window["pretraining"] = pretraining
    per_participant = per_window.groupby("participant_id", sort=True)[columns].mean()
    per_participant = per_participant.reset_index()
    per_participant["encoder"] = encoder
    per_participant["pretraining"] = pretraining
    return per_window, per_participant


def embed_folds(checkpoints: list[str], pretrain: list[str], windows: np.ndarray,
                table: pd.DataFrame, encoder: str,
                modality: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Embeddings of every window by each checkpoint (``pretrain``: ``corpus``, ``all``, or
    ``fold<k>`` for an encoder pretrained without the test participants of outer fold k).

    ``encoder``: ``ssl`` or ``random`` (a unimodal checkpoint), or ``crossmodal`` (the
    ``modality`` encoder of a cross-modal checkpoint). Per-fold rows carry ``encoder_fold``;
    the prediction harness scores fold k's test participants with fold k's rows only.
    """
    windows_out, participants_out = [], []
    for checkpoint, label in zip(checkpoints, pretrain, strict=True):
        per_window, per_participant = embed_windows(
            checkpoint, windows, table, "random" if encoder == "random" else "ssl",
            name=modality if encoder == "crossmodal" else "encoder",
            pretraining=PRETRAINING.get(label, "train_folds"))
        for frame, out in ((per_window, windows_out), (per_participant, participants_out)):
            frame["encoder"] = encoder
            if label.startswith("fold"):
                frame["encoder_fold"] = int(label.removeprefix("fold"))
            out.append(frame)
    return pd.concat(windows_out, ignore_index=True), pd.concat(participants_out,
                                                                ignore_index=True)
