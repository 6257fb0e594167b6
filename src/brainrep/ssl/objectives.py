"""Self-supervised objectives, chosen by name in ``ssl.<modality>.objective``.

* contrastive: SimCLR, NT-Xent between two augmented views of each window (Chen et al. 2020);
* relative_positioning: are two windows of one recording close in time or far apart?
  (Banville et al. 2021);
* temporal_shuffling: is a third window between two close windows, or far from both?
  (Banville et al. 2021);
* masked: hide random time patches, reconstruct them from the context (MAE style);
* generative_contrastive: one encoder trained on a weighted sum of contrastive and masked;
* cross-modal (:class:`CrossModal`): SimCLR within EEG and within fMRI plus a CLIP-style
  alignment of EEG and fMRI windows of the same participant.

Every objective takes a :class:`~brainrep.ssl.pools.WindowPool` and a
:class:`~brainrep.ssl.pools.Batch` of its windows, and returns a scalar loss; its encoders are
in ``encoders()``.

Defaults (``ssl.<modality>``) and where they come from, none tuned on a label: temperature
0.2, inside the 0.1-0.5 range SimCLR used (Chen et al. 2020, ICML); a mask ratio of 0.3 of the
time patches, below MAE's 0.75 for images (He et al. 2022) because a window holds only about
10 patches (LaBraM masks half of its patches, Jiang et al. 2024); relative positioning with
positives at most 1 window step apart and negatives at least 5, brainrep's own choice for
windows of seconds (Banville et al. 2021 chose these distances per dataset), keeping a gap
between the two; AdamW at 1e-3 on batches of 64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from brainrep.config import registering
from brainrep.ssl.augment import Augmentation, random_view
from brainrep.ssl.pools import Batch, PairedPool, WindowPool


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalized-temperature cross-entropy of SimCLR for paired views (batch, dim)."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    n = len(z1)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(similarity, targets)


class SimCLRHead(nn.Module):
    """Projection MLP and NT-Xent over two random views."""

    def __init__(self, embedding_dim: int, augmentations: Sequence[Augmentation],
                 temperature: float):
        super().__init__()
        self.augmentations = list(augmentations)
        if not self.augmentations:
            raise ValueError("contrastive objectives need at least one augmentation")
        self.temperature = temperature
        self.projector = nn.Sequential(nn.Linear(embedding_dim, embedding_dim), nn.GELU(),
                                       nn.Linear(embedding_dim, embedding_dim))

    def loss(self, encoder: nn.Module, x: torch.Tensor, generator: torch.Generator):
        z1 = self.projector(encoder(random_view(x, self.augmentations, generator)))
        z2 = self.projector(encoder(random_view(x, self.augmentations, generator)))
        return nt_xent(z1, z2, self.temperature)


class MaskedHead(nn.Module):
    """Linear decoder from each token's features back to its samples of every channel."""

    def __init__(self, encoder: nn.Module, n_channels: int, mask_ratio: float,
                 n_patches: int = 10):
        super().__init__()
        if getattr(encoder, "token_size", None) is None:
            raise ValueError(f"generative objectives need an encoder with a time axis (conv or "
                             f"transformer), not {type(encoder).__name__}")
        self.token_size, self.mask_ratio, self.n_patches = encoder.token_size, mask_ratio, n_patches
        self.decoder = nn.Linear(encoder.width, n_channels * encoder.token_size)

    def loss(self, encoder: nn.Module, x: torch.Tensor, generator: torch.Generator):
        batch, channels, times = x.shape
        patch = self.token_size * max(1, times // self.n_patches // self.token_size)
        n_patches = -(-times // patch)
        hidden = torch.rand(batch, 1, n_patches, generator=generator) < self.mask_ratio
        mask = hidden.repeat_interleave(patch, dim=-1)[..., :times].to(x.device, x.dtype)
        tokens = encoder.features(x * (1 - mask)).transpose(1, 2)
        decoded = self.decoder(tokens).reshape(batch, tokens.shape[1], channels, self.token_size)
        reconstruction = decoded.permute(0, 2, 1, 3).reshape(batch, channels, -1)[..., :times]
        error = ((reconstruction.float() - x.float()) ** 2) * mask
        return error.sum() / (mask.sum() * channels).clamp(min=1)


#: name -> objective class; ``ssl.<modality>.objective`` names one, :func:`register_objective`
#: adds one.
OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(name: str):
    """Class decorator adding an :class:`Objective` subclass to :data:`OBJECTIVES`. The class is
    built as ``cls(encoder, n_channels, settings, augmentations)`` (``settings``: the
    modality's :class:`~brainrep.ssl.settings.SSLSettings`) and defines
    ``loss(pool, batch, generator)``: a scalar tensor for the
    :class:`~brainrep.ssl.pools.Batch` ``batch`` (its windows ``batch.x``; any other window
    of the pool from ``pool.batch(index, device)``)."""
    return registering(OBJECTIVES, name)


class Objective(nn.Module):
    """An encoder and the heads of one self-supervised objective. ``uses_augmentations``:
    whether it receives the configured augmentations (views of a window)."""

    uses_augmentations = False

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def encoders(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


@register_objective("contrastive")
class Contrastive(Objective):
    uses_augmentations = True

    def __init__(self, encoder, n_channels, settings, augmentations):
        super().__init__(encoder)
        self.simclr = SimCLRHead(settings.embedding_dim, augmentations,
                                 settings.temperature)

    def loss(self, pool: WindowPool, batch: Batch, generator: torch.Generator):
        return self.simclr.loss(self.encoder, batch.x, generator)


@register_objective("masked")
class Masked(Objective):
    def __init__(self, encoder, n_channels, settings, augmentations):
        super().__init__(encoder)
        self.masked = MaskedHead(encoder, n_channels, settings.mask_ratio)

    def loss(self, pool: WindowPool, batch: Batch, generator: torch.Generator):
        return self.masked.loss(self.encoder, batch.x, generator)


@register_objective("generative_contrastive")
class GenerativeContrastive(Objective):
    """``w`` x contrastive + (1 - ``w``) x masked, ``w = contrastive_weight``, one encoder."""

    uses_augmentations = True

    def __init__(self, encoder, n_channels, settings, augmentations):
        super().__init__(encoder)
        self.weight = settings.contrastive_weight
        self.simclr = SimCLRHead(settings.embedding_dim, augmentations,
                                 settings.temperature)
        self.masked = MaskedHead(encoder, n_channels, settings.mask_ratio)

    def loss(self, pool: WindowPool, batch: Batch, generator: torch.Generator):
        x = batch.x
        return (self.weight * self.simclr.loss(self.encoder, x, generator)
                + (1 - self.weight) * self.masked.loss(self.encoder, x, generator))


@register_objective("relative_positioning")
class RelativePositioning(Objective):
    """Pairs of windows from one recording: positive when their onsets are at most
    ``tau_pos`` window steps apart, negative when at least ``tau_neg`` apart; a linear layer
    on |h1 - h2| tells them apart (binary cross-entropy). Half the pairs are positive. Pairs
    never join two recordings, and distances are onset times, so windows on both sides of a
    gap of rejected windows are not neighbours."""

    n_features = 1  # embeddings the classifier reads, side by side

    def __init__(self, encoder, n_channels, settings, augmentations):
        super().__init__(encoder)
        self.tau_pos, self.tau_neg = settings.tau_pos, settings.tau_neg
        self.classifier = nn.Linear(self.n_features * settings.embedding_dim, 1)

    def _check(self, pool: WindowPool) -> None:
        span = np.zeros(pool.recording.max() + 1)
        np.maximum.at(span, pool.recording, pool.position)
        first = np.full_like(span, np.inf)
        np.minimum.at(first, pool.recording, pool.position)
        if (span - first).max() < self.tau_neg:
            raise ValueError(f"{type(self).__name__} needs windows at least tau_neg="
                             f"{self.tau_neg} steps apart in one recording; the longest spans "
                             f"{(span - first).max():g} steps. Lower ssl.<modality>.tau_neg.")

    @staticmethod
    def _rng(generator: torch.Generator) -> np.random.Generator:
        return np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))

    def pairs(self, pool: WindowPool, index: torch.Tensor, generator: torch.Generator):
        self._check(pool)
        rng = self._rng(generator)
        anchors, partners, labels = [], [], []
        for anchor in index.tolist():
            same = np.flatnonzero(pool.recording == pool.recording[anchor])
            distance = np.abs(pool.position[same] - pool.position[anchor])
            positive = rng.random() < 0.5
            candidates = (same[(distance <= self.tau_pos) & (same != anchor)] if positive
                          else same[distance >= self.tau_neg])
            if len(candidates):
                anchors.append(anchor)
                partners.append(rng.choice(candidates))
                labels.append(float(positive))
        return torch.tensor(anchors), torch.tensor(partners), torch.tensor(labels)

    def loss(self, pool: WindowPool, batch: Batch, generator: torch.Generator):
        anchors, partners, labels = self.pairs(pool, batch.index, generator)
        h1 = self.encoder(batch.take(anchors))
        h2 = self.encoder(pool.batch(partners, self.device))
        logits = self.classifier((h1 - h2).abs()).squeeze(-1).float()
        return F.binary_cross_entropy_with_logits(logits, labels.to(self.device))


@register_objective("temporal_shuffling")
class TemporalShuffling(RelativePositioning):
    """Triplets of windows from one recording (Banville et al. 2021, J Neural Eng 18:046020):
    two anchors whose onsets are 2 to ``2 * tau_pos`` window steps apart, and a third window
    that lies strictly between them (label 1: the triplet is in temporal order) or at least
    ``tau_neg`` steps from both (label 0). A linear layer on
    [|h(a) - h(m)|, |h(m) - h(b)|] tells them apart. Half the triplets are ordered."""

    n_features = 2

    def triplets(self, pool: WindowPool, index: torch.Tensor, generator: torch.Generator):
        self._check(pool)
        rng = self._rng(generator)
        firsts, middles, lasts, labels = [], [], [], []
        reach = max(2, 2 * self.tau_pos)
        for anchor in index.tolist():
            same = np.flatnonzero(pool.recording == pool.recording[anchor])
            offset = pool.position[same] - pool.position[anchor]
            ends = same[(offset >= 2) & (offset <= reach)]
            if not len(ends):
                continue
            end = rng.choice(ends)
            start, stop = pool.position[anchor], pool.position[end]
            ordered = rng.random() < 0.5
            at = pool.position[same]
            candidates = (same[(at > start) & (at < stop)] if ordered else
                          same[(np.abs(at - start) >= self.tau_neg)
                               & (np.abs(at - stop) >= self.tau_neg)])
            if len(candidates):
                firsts.append(anchor)
                middles.append(rng.choice(candidates))
                lasts.append(end)
                labels.append(float(ordered))
        return (torch.tensor(firsts), torch.tensor(middles), torch.tensor(lasts),
                torch.tensor(labels))

    def loss(self, pool: WindowPool, batch: Batch, generator: torch.Generator):
        firsts, middles, lasts, labels = self.triplets(pool, batch.index, generator)
        if not len(labels):
            raise ValueError("temporal_shuffling found no triplet in this batch: recordings "
                             "need windows 2 steps apart and a window between them")
        h = [self.encoder(batch.take(firsts))] + [self.encoder(pool.batch(rows, self.device))
                                                  for rows in (middles, lasts)]
        features = torch.cat([(h[0] - h[1]).abs(), (h[1] - h[2]).abs()], dim=1)
        logits = self.classifier(features).squeeze(-1).float()
        return F.binary_cross_entropy_with_logits(logits, labels.to(self.device))


class CrossModal(nn.Module):
    """SimCLR within each modality, plus CLIP-style alignment across modalities.

    Participants with one modality still train that modality's encoder through its SimCLR
    term; participants with both add a symmetric InfoNCE term (weight ``weight``) between the
    embeddings of one EEG and one fMRI window of each of them in the batch, so that the two
    encoders embed into one space.
    """

    def __init__(self, eeg: Contrastive, fmri: Contrastive, temperature: float, weight: float):
        super().__init__()
        self.eeg, self.fmri = eeg, fmri
        self.temperature, self.weight = temperature, weight

    def encoders(self) -> dict[str, nn.Module]:
        return {"eeg": self.eeg.encoder, "fmri": self.fmri.encoder}

    def loss(self, pool: PairedPool, batch: Batch, generator: torch.Generator):
        index = batch.index
        fmri_index = torch.randint(len(pool.fmri), (len(index),), generator=generator)
        fmri_batch = Batch(fmri_index, pool.fmri.batch(fmri_index, batch.x.device))
        loss = (self.eeg.loss(pool.eeg, batch, generator)
                + self.fmri.loss(pool.fmri, fmri_batch, generator))
        rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
        eeg_rows, fmri_rows = [], []
        for participant in dict.fromkeys(pool.eeg.participant[index.numpy()]):
            fmri_windows = np.flatnonzero(pool.fmri.participant == participant)
            if len(fmri_windows):
                eeg_windows = index.numpy()[pool.eeg.participant[index.numpy()] == participant]
                eeg_rows.append(eeg_windows[0])
                fmri_rows.append(rng.choice(fmri_windows))
        if len(eeg_rows) < 2:
            return loss
        device = self.eeg.device
        z_eeg = F.normalize(self.eeg.encoder(batch.take(torch.tensor(eeg_rows))).float(), dim=1)
        z_fmri = F.normalize(self.fmri.encoder(
            pool.fmri.batch(torch.tensor(fmri_rows), device)).float(), dim=1)
        logits = z_eeg @ z_fmri.T / self.temperature
        targets = torch.arange(len(eeg_rows), device=device)
        alignment = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
        return loss + self.weight * alignment
