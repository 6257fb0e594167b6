"""Self-supervised objectives: contrastive (SimCLR / NT-Xent) and generative (masked)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random view of standardized (batch, channels, time) signals.

    Circular time shift (up to 10 %), amplitude scaling (0.8-1.2), Gaussian noise (sd 0.1),
    channel dropout (p = 0.2) and one masked time block (10-20 % of the window).
    """
    batch, channels, times = x.shape
    opts = {"generator": generator, "device": x.device}
    shift = int(torch.randint(-times // 10, times // 10 + 1, (1,), generator=generator))
    view = torch.roll(x, shifts=shift, dims=-1)
    view = view * (0.8 + 0.4 * torch.rand(batch, 1, 1, **opts))
    view = view + 0.1 * torch.randn(view.shape, **opts)
    view = view * (torch.rand(batch, channels, 1, **opts) > 0.2)
    length = int(times * (0.1 + 0.1 * float(torch.rand(1, generator=generator))))
    start = int(torch.randint(0, times - length + 1, (1,), generator=generator))
    view[..., start:start + length] = 0
    return view


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalized-temperature cross-entropy of SimCLR for paired views (batch, dim)."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    n = len(z1)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(similarity, targets)


class Contrastive(nn.Module):
    """SimCLR: two augmented views of each window, NT-Xent on a projection of the embedding."""

    def __init__(self, encoder: nn.Module, embedding_dim: int, temperature: float, **_):
        super().__init__()
        self.encoder = encoder
        self.temperature = temperature
        self.projector = nn.Sequential(nn.Linear(embedding_dim, embedding_dim), nn.GELU(),
                                       nn.Linear(embedding_dim, embedding_dim))

    def loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        z1 = self.projector(self.encoder(augment(x, generator)))
        z2 = self.projector(self.encoder(augment(x, generator)))
        return nt_xent(z1, z2, self.temperature)


class MaskedReconstruction(nn.Module):
    """MAE-style: hide random time patches of every channel, reconstruct them from context."""

    def __init__(self, encoder: nn.Module, n_channels: int, mask_ratio: float,
                 n_patches: int = 10, **_):
        super().__init__()
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.n_patches = n_patches
        self.decoder = nn.Conv1d(encoder.width, n_channels, kernel_size=1)

    def loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        batch, _, times = x.shape
        patch = max(times // self.n_patches, 1)
        n_patches = -(-times // patch)
        hidden = torch.rand(batch, 1, n_patches, generator=generator,
                            device=x.device) < self.mask_ratio
        mask = hidden.repeat_interleave(patch, dim=-1)[..., :times].float()
        reconstruction = self.decoder(self.encoder.features(x * (1 - mask)))
        error = ((reconstruction - x) ** 2) * mask
        return error.sum() / (mask.sum() * x.shape[1]).clamp(min=1)


OBJECTIVES: dict[str, type[nn.Module]] = {"contrastive": Contrastive,
                                          "masked": MaskedReconstruction}
