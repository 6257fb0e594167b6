"""The windows an objective trains on: a pool of one modality's windows (in memory, memory-mapped
or held on the training device), a pair of pools for cross-modal training, and one step's batch."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import torch

log = logging.getLogger(__name__)


@dataclass
class WindowPool:
    """Windows of one modality, read and standardized per channel a batch at a time, and
    where each comes from.

    ``source``: (n_stored, channels, times) windows as stored, in memory or memory-mapped
    (only a batch's rows are read); ``rows``: (n,) the rows of ``source`` in the pool;
    ``mean``, ``std``: (1, channels, 1) the scaling; ``recording``: (n,) index of the
    recording (one run of one participant); ``position``: (n,) onset of the window in its
    recording, in window steps (a gap left by rejected windows keeps its length);
    ``participant``: (n,) labels. ``resident``: the pool's standardized windows (n, channels,
    times) float32 on a device (:meth:`to`), where batches are then gathered; else None.
    """

    source: np.ndarray
    rows: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    recording: np.ndarray
    position: np.ndarray
    participant: np.ndarray
    resident: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, keep: np.ndarray) -> WindowPool:
        resident = None if self.resident is None else self.resident[torch.from_numpy(keep)]
        return WindowPool(self.source, self.rows[keep], self.mean, self.std,
                          self.recording[keep], self.position[keep], self.participant[keep],
                          resident)

    def read(self, index: np.ndarray) -> torch.Tensor:
        """Standardized float32 windows (len(index), channels, times) at pool positions
        ``index``, read from ``source`` on the host."""
        rows = self.rows[index]
        order = np.argsort(rows, kind="stable")  # a mapped store is read in file order
        raw = np.empty((len(rows), *self.source.shape[1:]), self.source.dtype)
        raw[order] = self.source[rows[order]]
        return torch.from_numpy(((raw - self.mean) / self.std).astype(np.float32, copy=False))

    def batch(self, index: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Standardized windows at pool positions ``index``, on ``device``."""
        if self.resident is not None:
            return self.resident[index.to(self.resident.device)].to(device)
        return self.read(index.numpy()).to(device)

    def to(self, device: torch.device, chunk: int = 4096) -> WindowPool:
        """This pool with its standardized windows held on ``device`` (read ``chunk``
        windows at a time)."""
        resident = torch.empty((len(self), *self.source.shape[1:]), dtype=torch.float32,
                               device=device)
        for start in range(0, len(self), chunk):
            stop = min(start + chunk, len(self))
            resident[start:stop] = self.read(np.arange(start, stop)).to(device)
        return replace(self, resident=resident)

    @property
    def anchors(self) -> WindowPool:
        """The pool whose positions a batch's index holds."""
        return self

    @property
    def nbytes(self) -> int:
        """Bytes of the pool's standardized float32 windows."""
        return 4 * len(self) * int(np.prod(self.source.shape[1:]))


@dataclass
class PairedPool:
    """EEG and fMRI windows for cross-modal training; an epoch walks the EEG windows."""

    eeg: WindowPool
    fmri: WindowPool

    def __len__(self) -> int:
        return len(self.eeg)

    def to(self, device: torch.device) -> PairedPool:
        return PairedPool(self.eeg.to(device), self.fmri.to(device))

    @property
    def anchors(self) -> WindowPool:
        return self.eeg

    @property
    def nbytes(self) -> int:
        return self.eeg.nbytes + self.fmri.nbytes


@dataclass
class Batch:
    """One training step's windows: their positions ``index`` (n,) in the pool's
    :attr:`~WindowPool.anchors` and the windows ``x`` (n, channels, times), standardized, on
    the training device (read ahead by the data loader's workers, :func:`.train.loaded`)."""

    index: torch.Tensor
    x: torch.Tensor

    def take(self, rows: torch.Tensor) -> torch.Tensor:
        """The windows at pool positions ``rows`` (each one of this batch's)."""
        where = {i: k for k, i in enumerate(self.index.tolist())}
        return self.x[torch.tensor([where[r] for r in rows.tolist()], dtype=torch.long,
                                   device=self.x.device)]


def resident(pool: WindowPool | PairedPool, device: torch.device,
             share: float = 0.5) -> WindowPool | PairedPool:
    """``pool`` moved onto a CUDA ``device`` when it takes less than ``share`` of the free
    GPU memory, so batches are gathered there without a host copy per step; else as is
    (batches are read from host memory or disk by the data loader)."""
    if device.type != "cuda":
        return pool
    free, _ = torch.cuda.mem_get_info(device)
    if pool.nbytes > share * free:
        log.info("windows (%.1f GiB) stay in host memory: more than %.0f%% of the GPU's free "
                 "%.1f GiB", pool.nbytes / 2**30, 100 * share, free / 2**30)
        return pool
    return pool.to(device)
