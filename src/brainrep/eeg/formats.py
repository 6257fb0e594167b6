"""EEG file formats: one registry of readers, keyed by file extension.

The formats MNE-BIDS reads are listed with ``None``: ``read_raw_bids`` reads them with their
sidecars (channel types and bad channels from ``channels.tsv``, events, line frequency). A
format it does not read is one function ``(path) -> mne.io.BaseRaw`` (data in volts, as MNE
holds it) registered with :func:`register_reader`; brainrep then applies the recording's
``channels.tsv`` (types, bad channels) and ``PowerLineFrequency`` itself, but not its
``events.tsv``: the reader sets any annotations. The
BIDS index finds every registered extension. This module imports nothing heavy: planning
reads it.
"""

from __future__ import annotations

from collections.abc import Callable

from brainrep.config import registering

#: extension (with its dot) -> None (MNE-BIDS reads it) or a reader ``(path) -> Raw``
READERS: dict[str, Callable | None] = dict.fromkeys((".vhdr", ".edf", ".bdf", ".set", ".fif"))


def register_reader(extension: str):
    """Decorator adding a reader ``(path: pathlib.Path) -> mne.io.BaseRaw`` of the EEG files
    whose name ends in ``extension`` (e.g. ``".npz"``) to :data:`READERS`."""
    return registering(READERS, extension)
