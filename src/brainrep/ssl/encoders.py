"""Encoders over multichannel time series: input (batch, channels, time), output (batch, dim)."""

from __future__ import annotations

import torch
from torch import nn


def _block(n_in: int, n_out: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(n_in, n_out, kernel_size=7, dilation=dilation, padding=3 * dilation),
        nn.BatchNorm1d(n_out),
        nn.GELU(),
    )


class ConvEncoder(nn.Module):
    """Dilated temporal convolutions (receptive field 37 samples), mean-pooled, then linear.

    Serves EEG windows (channels = electrodes) and parcel time series (channels = parcels).
    ``features`` keeps the time axis (batch, width, time) for generative objectives.
    """

    def __init__(self, n_channels: int, width: int = 32, embedding_dim: int = 32):
        super().__init__()
        self.width = width
        self.trunk = nn.Sequential(_block(n_channels, width, 1), _block(width, width, 2),
                                   _block(width, width, 4))
        self.head = nn.Linear(width, embedding_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=-1))


ENCODERS: dict[str, type[nn.Module]] = {"conv": ConvEncoder}


def build_encoder(name: str, n_channels: int, width: int, embedding_dim: int) -> nn.Module:
    """Encoder from the registry by name."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    return ENCODERS[name](n_channels, width=width, embedding_dim=embedding_dim)
