"""Encoders over multichannel windows: input (batch, channels, time), output (batch, dim).

Registry (``ssl.<modality>.encoder``):

* ``conv``: dilated temporal convolutions, for EEG windows (channels = electrodes) and parcel
  time series (channels = parcels);
* ``transformer``: a small transformer over patches of ``patch_size`` samples (all channels);
* ``connectome``: the window's parcel correlation matrix (Fisher z, upper triangle) into an MLP;
* ``braindecode:<Model>``: any braindecode model taking ``n_chans``, ``n_outputs``, ``n_times``
  (e.g. ``braindecode:ShallowFBCSPNet``); needs braindecode and its torchaudio.

Encoders with a time axis expose ``features(x)`` of shape (batch, width, tokens) and
``token_size`` (samples per token) for the generative objectives; the others have
``token_size = None``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from brainrep.config import registering


def _block(n_in: int, n_out: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(n_in, n_out, kernel_size=7, dilation=dilation, padding=3 * dilation),
        nn.BatchNorm1d(n_out),
        nn.GELU(),
    )


#: name -> encoder class ``(n_channels, n_times, **sizes)`` mapping windows to embeddings;
#: ``ssl.<modality>.encoder`` names one and :func:`register_encoder` adds one.
ENCODERS: dict[str, type[nn.Module]] = {}


def register_encoder(name: str):
    """Class decorator adding an encoder to :data:`ENCODERS` under ``name``."""
    return registering(ENCODERS, name)


@register_encoder("conv")
class ConvEncoder(nn.Module):
    """Dilated temporal convolutions (receptive field 37 samples), mean-pooled, then linear."""

    token_size = 1

    def __init__(self, n_channels: int, n_times: int, width: int = 32, embedding_dim: int = 32,
                 **_):
        super().__init__()
        self.width = width
        self.trunk = nn.Sequential(_block(n_channels, width, 1), _block(width, width, 2),
                                   _block(width, width, 4))
        self.head = nn.Linear(width, embedding_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=-1))


@register_encoder("transformer")
class PatchTransformerEncoder(nn.Module):
    """Pre-norm transformer over non-overlapping patches (all channels x ``patch_size``)."""

    def __init__(self, n_channels: int, n_times: int, width: int = 32, embedding_dim: int = 32,
                 depth: int = 2, patch_size: int = 20, heads: int = 4, **_):
        super().__init__()
        if width % heads:
            raise ValueError(f"transformer width {width} must be a multiple of {heads} heads")
        self.width, self.token_size = width, patch_size
        self.n_tokens = math.ceil(n_times / patch_size)
        self.embed = nn.Linear(n_channels * patch_size, width)
        self.position = nn.Parameter(torch.randn(1, self.n_tokens, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, embedding_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, times = x.shape
        x = nn.functional.pad(x, (0, self.n_tokens * self.token_size - times))
        patches = x.reshape(batch, channels, self.n_tokens, self.token_size)
        patches = patches.permute(0, 2, 1, 3).reshape(batch, self.n_tokens, -1)
        tokens = self.transformer(self.embed(patches) + self.position)
        return self.norm(tokens).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=-1))


@register_encoder("connectome")
class ConnectomeEncoder(nn.Module):
    """Correlation matrix of the window (Fisher z, upper triangle) through a two-layer MLP."""

    token_size = None

    def __init__(self, n_channels: int, n_times: int, width: int = 32, embedding_dim: int = 32,
                 **_):
        super().__init__()
        self.width = width
        rows, cols = torch.triu_indices(n_channels, n_channels, offset=1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(len(rows), 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width), nn.GELU(),
                                 nn.Linear(width, embedding_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centered = x - x.mean(dim=-1, keepdim=True)
        unit = centered / (centered.norm(dim=-1, keepdim=True) + 1e-6)
        correlation = (unit @ unit.transpose(1, 2)).clamp(-0.999, 0.999)
        return self.mlp(torch.atanh(correlation[:, self.rows, self.cols]))


class BraindecodeEncoder(nn.Module):
    """A braindecode model whose ``n_outputs`` is the embedding size."""

    token_size = None

    def __init__(self, model: str, n_channels: int, n_times: int, embedding_dim: int = 32,
                 width: int = 32, **_):
        super().__init__()
        try:
            import braindecode.models
        except ImportError as err:
            raise ImportError(
                f"encoder 'braindecode:{model}' needs braindecode: pip install braindecode "
                "with a torchaudio build that matches torch") from err
        if not hasattr(braindecode.models, model):
            raise ValueError(f"braindecode has no model {model!r}")
        self.width = width
        self.net = getattr(braindecode.models, model)(n_chans=n_channels, n_outputs=embedding_dim,
                                                      n_times=n_times)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_encoder(name: str, n_channels: int, n_times: int, **sizes) -> nn.Module:
    """Encoder by registry name (or ``braindecode:<Model>``) for windows (channels, times).

    ``sizes``: ``width``, ``embedding_dim`` and, for the transformer, ``depth`` and
    ``patch_size``.
    """
    if name.startswith("braindecode:"):
        return BraindecodeEncoder(name.split(":", 1)[1], n_channels, n_times, **sizes)
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)} "
                         "or braindecode:<Model>")
    return ENCODERS[name](n_channels, n_times, **sizes)
