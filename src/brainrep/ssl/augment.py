"""Signal augmentations for contrastive views of standardized (batch, channels, time) windows.

Each augmentation is a callable ``(x, generator) -> x`` acting on a batch, drawing its random
numbers from ``generator`` so that training is reproducible. EEG: time masking, channel
dropout, frequency shift, Fourier-transform surrogate and sensor rotation (Rommel et al. 2022,
J Neural Eng 19:066020, the set braindecode ships); fMRI: temporal crops, ROI (channel)
dropout and Gaussian noise.

Strengths are the published defaults of braindecode 1.8's transforms, not values tuned on any
label: channel dropout p = 0.2 (``ChannelsDropout``; Saeed et al. 2020, arXiv:2010.13694),
frequency shift up to 2 Hz at brainrep's default 100 Hz (``FrequencyShift``; brainrep shifts by
up to 0.02 of the sampling rate), Fourier-transform surrogates with fully random
phases (``FTSurrogate``, phase noise magnitude 1; Schwabedal et al. 2018, arXiv:1806.08675),
sensor rotation up to 15 degrees (``SensorsZRotation``; Krell & Kim 2017, EMBC) and Gaussian
noise of SD 0.1 in standardized units (``GaussianNoise``; Cheng et al. 2020,
arXiv:2007.04871; Mohsenvand et al. 2020, PMLR 136). Two are brainrep's own, with no
published default to follow: the time mask (10-20 % of the window; braindecode's
``SmoothTimeMask`` takes a fixed 100 samples, half of a 2-s window at 100 Hz) and the fMRI
temporal crop (60-100 % of the window). Each is applied with probability 0.5
(:func:`random_view`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

# An augmentation teaches invariance to what it changes. frequency_shift is left out of the
# EEG defaults: it makes embeddings blind to peak frequencies (e.g. a slowed alpha peak), and
# on the demo it cut the subtype probe from 0.99 to 0.93 (random init: 0.91).
DEFAULTS = {"eeg": ["time_mask", "channel_dropout", "ft_surrogate", "sensor_rotation"],
            "fmri": ["temporal_crop", "channel_dropout", "gaussian_noise"]}


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator,
             device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator).to(device)


def time_mask(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Zero one block of 10-20 % of the window, at a random start per window."""
    batch, _, times = x.shape
    length = _uniform((batch, 1, 1), 0.1, 0.2, generator, x.device) * times
    start = _uniform((batch, 1, 1), 0, 1, generator, x.device) * (times - length)
    t = torch.arange(times, device=x.device).view(1, 1, -1)
    return x * ~((t >= start) & (t < start + length))


def channel_dropout(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Zero each channel (EEG electrode, fMRI ROI) with probability 0.2."""
    keep = torch.rand(x.shape[:2], generator=generator).to(x.device) > 0.2
    return x * keep.unsqueeze(-1)


def gaussian_noise(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Add white noise of standard deviation 0.1 (the data are standardized)."""
    return x + 0.1 * torch.randn(x.shape, generator=generator).to(x.device)


def temporal_crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Keep a contiguous 60-100 % of the window, stretched back to full length (linear)."""
    batch, channels, times = x.shape
    fraction = _uniform((batch,), 0.6, 1.0, generator, x.device)
    start = _uniform((batch,), 0, 1, generator, x.device) * (1 - fraction) * (times - 1)
    grid = start[:, None] + torch.linspace(0, 1, times, device=x.device)[None] \
        * fraction[:, None] * (times - 1)
    low = grid.floor().long().clamp(max=times - 2)
    weight = (grid - low).unsqueeze(1)
    index = low.unsqueeze(1).expand(batch, channels, times)
    return torch.gather(x, 2, index) * (1 - weight) + torch.gather(x, 2, index + 1) * weight


def frequency_shift(x: torch.Tensor, generator: torch.Generator,
                    max_shift: float = 0.02) -> torch.Tensor:
    """Shift every frequency by up to ``max_shift`` of the sampling rate (2 Hz at 100 Hz).

    The analytic signal (Hilbert transform by FFT) is multiplied by a complex exponential.
    """
    batch, _, times = x.shape
    spectrum = torch.fft.fft(x.float(), dim=-1)
    step = torch.zeros(times, device=x.device)
    step[0] = 1
    step[1:(times + 1) // 2] = 2
    if times % 2 == 0:
        step[times // 2] = 1
    analytic = torch.fft.ifft(spectrum * step, dim=-1)
    shift = _uniform((batch, 1, 1), -max_shift, max_shift, generator, x.device)
    t = torch.arange(times, device=x.device).view(1, 1, -1)
    return (analytic * torch.exp(2j * math.pi * shift * t)).real.to(x.dtype)


def ft_surrogate(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Fourier-transform surrogate: random phases shared across channels, same spectrum."""
    batch, _, times = x.shape
    spectrum = torch.fft.rfft(x.float(), dim=-1)
    phase = _uniform((batch, 1, spectrum.shape[-1]), 0, 2 * math.pi, generator, x.device)
    phase[..., 0] = 0
    if times % 2 == 0:
        phase[..., -1] = 0
    return torch.fft.irfft(spectrum * torch.exp(1j * phase), n=times, dim=-1).to(x.dtype)


class SensorRotation:
    """Rotate the electrode layout about the vertical axis by up to ``max_degrees``.

    The signals at the rotated positions come from spherical-spline interpolation (MNE);
    the matrices are precomputed for ``n_angles`` angles, one drawn per window.
    """

    def __init__(self, positions: np.ndarray, max_degrees: float = 15.0, n_angles: int = 13):
        from mne.channels.interpolation import _make_interpolation_matrix

        design = np.column_stack([2 * positions, np.ones(len(positions))])
        center = np.linalg.lstsq(design, (positions ** 2).sum(axis=1), rcond=None)[0][:3]
        positions = positions - center  # rotate about the fitted head sphere's vertical axis
        matrices = []
        for angle in np.deg2rad(np.linspace(-max_degrees, max_degrees, n_angles)):
            rotation = np.array([[np.cos(angle), -np.sin(angle), 0],
                                 [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
            matrices.append(_make_interpolation_matrix(positions, positions @ rotation.T))
        self.matrices = torch.tensor(np.stack(matrices), dtype=torch.float32)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        pick = torch.randint(len(self.matrices), (len(x),), generator=generator)
        return torch.einsum("bij,bjt->bit", self.matrices[pick].to(x.device, x.dtype), x)


SIMPLE: dict[str, Augmentation] = {
    "time_mask": time_mask, "channel_dropout": channel_dropout,
    "gaussian_noise": gaussian_noise, "temporal_crop": temporal_crop,
    "frequency_shift": frequency_shift, "ft_surrogate": ft_surrogate}
NAMES = sorted([*SIMPLE, "sensor_rotation"])


def sidecar_positions(sidecar: str | Path) -> np.ndarray | None:
    """Channel positions (n_channels, 3) in m from a window store's JSON sidecar, in its
    channel order; None when any channel has no position."""
    content = json.loads(Path(sidecar).read_text())
    positions = content.get("positions_m") or {}
    rows = [positions.get(ch) for ch in content.get("channels", [])]
    if not rows or any(r is None for r in rows):
        return None
    return np.asarray(rows, dtype=float)


def build_augmentations(names: Sequence[str],
                        positions: np.ndarray | None = None) -> list[Augmentation]:
    """Augmentations by name; ``sensor_rotation`` needs channel positions (n_channels, 3) in
    m, and is left out with a warning when a channel has none."""
    chosen = []
    for name in names:
        if name == "sensor_rotation":
            if positions is None or not np.isfinite(positions).all():
                logging.getLogger(__name__).warning(
                    "augmentation 'sensor_rotation' left out: some channels have no position. "
                    "Give electrodes.tsv or set eeg.montage to use it.")
                continue
            chosen.append(SensorRotation(positions))
        elif name in SIMPLE:
            chosen.append(SIMPLE[name])
        else:
            raise ValueError(f"unknown augmentation {name!r}; choose from {NAMES}")
    return chosen


def random_view(x: torch.Tensor, augmentations: Sequence[Augmentation],
                generator: torch.Generator, probability: float = 0.5) -> torch.Tensor:
    """Apply each augmentation, in order, to each window with ``probability``."""
    for augmentation in augmentations:
        use = torch.rand(len(x), generator=generator).to(x.device).view(-1, 1, 1) < probability
        x = torch.where(use, augmentation(x, generator), x)
    return x
