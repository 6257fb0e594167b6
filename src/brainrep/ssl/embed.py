"""Embeddings of every window and participant, from a trained or a random-init encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from brainrep.ssl.encoders import build_encoder

ENCODER_STATES = {"ssl": "encoder_state", "random": "initial_state"}


def load_encoder(checkpoint: str | Path, which: str) -> tuple[torch.nn.Module, dict]:
    """The pretrained (``ssl``) or the same architecture at its initial weights (``random``)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    settings = state["settings"]
    encoder = build_encoder(settings["encoder"], state["n_channels"], settings["width"],
                            settings["embedding_dim"])
    encoder.load_state_dict(state[ENCODER_STATES[which]])
    return encoder.eval(), state


@torch.no_grad()
def embed_windows(checkpoint: str | Path, windows: np.ndarray, table: pd.DataFrame,
                  which: str, batch_size: int = 256) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-window and per-participant (mean) embeddings with the window metadata.

    Columns ``emb_000``...; ``encoder`` is ``ssl`` or ``random``; ``pretraining`` records that
    the encoder saw every participant (transductive).
    """
    encoder, state = load_encoder(checkpoint, which)
    data = ((windows - state["mean"]) / state["std"]).astype(np.float32)
    vectors = np.concatenate([encoder(torch.from_numpy(data[i:i + batch_size])).numpy()
                              for i in range(0, len(data), batch_size)])
    columns = [f"emb_{i:03d}" for i in range(vectors.shape[1])]
    per_window = pd.concat([table.reset_index(drop=True),
                            pd.DataFrame(vectors, columns=columns)], axis=1)
    per_window["encoder"] = which
    per_window["pretraining"] = "transductive"
    per_participant = per_window.groupby("participant_id", sort=True)[columns].mean()
    per_participant = per_participant.reset_index()
    per_participant["encoder"] = which
    per_participant["pretraining"] = "transductive"
    return per_window, per_participant
