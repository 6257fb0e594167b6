"""Published EEG foundation models (braindecode) as encoders of brainrep's EEG windows.

A model is a braindecode class built with its published hyper-parameters (the class's
defaults, which braindecode's published weights fit), loaded from a local weights file
checked against its SHA-256, and fed as in its pretraining: the recording's channels matched
to those it knows, each window resampled to its rate and cut to whole patches, amplitudes in
its unit. Frozen, it embeds every window (:func:`foundation_embeddings`); fine-tuned
(:func:`foundation_finetuned`, :mod:`brainrep.ssl.finetune`), it is trained with the label inside
each split of the window-level probe, early stopping on an inner validation split of the
training participants, and scored on the split's test participants only.

Published weights (download them once where a network exists, then name the file and its
SHA-256 in ``ssl.foundation``): LaBraM, https://huggingface.co/braindecode/labram-pretrained;
CBraMod, https://huggingface.co/braindecode/cbramod-pretrained.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from brainrep.config import registering
from brainrep.io import check_sha256
from brainrep.ssl.checkpoints import load_weights
from brainrep.ssl.finetune import batched_outputs, finetuned_embeddings, finetuned_rows
from brainrep.ssl.settings import FinetuneSettings, FoundationSettings
from brainrep.ssl.train import choose_device


@dataclass(frozen=True)
class FoundationModel:
    """How a braindecode class was pretrained: its sampling rate ``sfreq`` (Hz), its patch
    length ``patch_size`` (samples; windows are cut to whole patches), the amplitude of one
    input unit ``unit_uv`` (µV), ``channels``, a function returning the channel names it has
    embeddings for (None: any montage), and ``heads``, the modules that belong to pretraining
    or classification rather than to the encoder (left out: their weights are not loaded and
    the embedding is the mean of the tokens before them)."""

    sfreq: float
    patch_size: int
    unit_uv: float
    channels: Callable[[], list[str]] | None = None
    heads: tuple[str, ...] = ("final_layer",)


#: braindecode class name -> how it was pretrained; ``ssl.foundation.model`` names one
FOUNDATION_MODELS: dict[str, FoundationModel] = {}


def register_foundation_model(name: str):
    """Add the :class:`FoundationModel` of braindecode class ``name`` to
    :data:`FOUNDATION_MODELS` (call the result on it)."""
    return registering(FOUNDATION_MODELS, name)


def _labram_channels() -> list[str]:
    from braindecode.models.labram import LABRAM_CHANNEL_ORDER

    return list(LABRAM_CHANNEL_ORDER)


# LaBraM (Jiang et al., 2024, ICLR): 200 Hz, 1-s patches, amplitudes in units of 0.1 mV, one
# position embedding per electrode of the 10-20/10-10 systems; downstream, the mean of the
# patch tokens.
register_foundation_model("Labram")(FoundationModel(200.0, 200, 100.0, _labram_channels))
# CBraMod (Wang et al., 2025, ICLR): 200 Hz, 1-s patches, amplitudes in units of 100 µV, any
# montage (criss-cross attention over channels and patches); its reconstruction head
# (proj_out) is replaced for downstream use, as in its fine-tuning.
register_foundation_model("CBraMod")(FoundationModel(200.0, 200, 100.0,
                                                     heads=("final_layer", "proj_out")))


def match_channels(model: str, channels: list[str]) -> tuple[list[int], list[str]]:
    """The store's channels ``model`` takes, as indices into ``channels`` and as the model's
    names for them (matched case-insensitively, old 10-20 names as new ones: T3 -> T7)."""
    from brainrep.eeg.read import normalise_channel

    known = FOUNDATION_MODELS[model].channels
    if known is None:
        return list(range(len(channels))), list(channels)
    lookup = {name.upper(): name for name in known()}
    picks = [(i, lookup.get(ch.upper()) or lookup.get(normalise_channel(ch)))
             for i, ch in enumerate(channels)]
    picks = [(i, name) for i, name in picks if name]
    if not picks:
        raise ValueError(f"none of the EEG channels {channels} is one {model} was pretrained "
                         "on; rename them to 10-20/10-10 names in channels.tsv, or choose a "
                         "model for any montage (CBraMod)")
    return [i for i, _ in picks], [name for _, name in picks]


def prepare_windows(windows: np.ndarray, sfreq: float, model: str,
                    picks: list[int]) -> np.ndarray:
    """EEG windows (n_windows, channels, times) in µV at ``sfreq`` Hz, as ``model`` reads
    them: the ``picks`` channels, resampled to its rate, cut to whole patches, in its unit;
    float32 (n_windows, len(picks), n_times)."""
    import mne

    spec = FOUNDATION_MODELS[model]
    data = np.asarray(windows[:, picks], dtype=np.float64)
    if abs(sfreq - spec.sfreq) > 1e-6:
        data = mne.filter.resample(data, up=spec.sfreq, down=sfreq, axis=-1, verbose="error")
    n_times = data.shape[-1] // spec.patch_size * spec.patch_size
    if n_times == 0:
        raise ValueError(f"{model} reads patches of {spec.patch_size / spec.sfreq:g} s; the "
                         f"windows are {windows.shape[-1] / sfreq:g} s. Lengthen eeg.window_s.")
    return (data[..., :n_times] / spec.unit_uv).astype(np.float32)


class FoundationEncoder(nn.Module):
    """A braindecode foundation model as an encoder: (batch, channels, times) -> (batch,
    dim), the mean of its output tokens (patches, and channels where they are apart), its
    :attr:`FoundationModel.heads` but ``final_layer`` (never called) replaced by identities."""

    def __init__(self, model: str, ch_names: list[str], n_times: int):
        super().__init__()
        import braindecode.models

        spec = FOUNDATION_MODELS[model]
        self.net = getattr(braindecode.models, model)(
            n_chans=len(ch_names), n_times=n_times, n_outputs=1, sfreq=spec.sfreq)
        for head in spec.heads[1:]:
            setattr(self.net, head, nn.Identity())
        self.named = {"ch_names": list(ch_names)} if spec.channels is not None else {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, return_features=True, **self.named)["features"].flatten(
            1, -2).mean(dim=1)


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (``.safetensors``, or a ``.pt``/``.pth`` state dict read
    as data only), unwrapped from a ``state_dict``/``model`` entry and a ``module.`` prefix."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = load_weights(path)
    for key in ("state_dict", "model"):
        if isinstance(state.get(key), dict):
            state = state[key]
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_foundation(settings: FoundationSettings, ch_names: list[str],
                    n_times: int) -> FoundationEncoder:
    """The settings' ``model`` with the published weights of its ``weights`` file (its
    SHA-256, required, checked first). Its :attr:`FoundationModel.heads` are not loaded; a
    time embedding saved for longer windows is cut to these windows' patches (the model reads
    its first ones for a shorter input); any other missing, extra or differently shaped
    tensor is refused."""
    if settings.weights.startswith(("http://", "https://")):
        raise ValueError(f"ssl.foundation.weights is a URL ({settings.weights}) and jobs never "
                         "download: run `snakemake prefetch` where a network exists and set "
                         "cache.offline: true, or name the downloaded file")
    if not settings.sha256:
        raise ValueError("ssl.foundation.sha256 is not set: give the SHA-256 of the weights "
                         "file (sha256sum), checked before every load")
    path = Path(settings.weights.removeprefix("file://"))
    check_sha256(path, settings.sha256, "ssl.foundation.sha256")
    encoder = FoundationEncoder(settings.model, ch_names, n_times)
    heads = tuple(f"{head}." for head in FOUNDATION_MODELS[settings.model].heads)
    state = {k: v for k, v in _state_dict(path).items() if not k.startswith(heads)}
    fix = (f"Use the weights published for braindecode's {settings.model} (its default "
           "hyper-parameters), and windows no longer than it was saved for (eeg.window_s).")
    expected = encoder.net.state_dict()
    for key in ("temporal_embedding",):  # (1, 1 + patches, dim): the first ones are used
        if key in state and key in expected and state[key].shape[1] > expected[key].shape[1]:
            state[key] = state[key][:, :expected[key].shape[1]]
    try:
        missing, unexpected = encoder.net.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit {settings.model}: {err}. {fix}") from err
    missing = [k for k in missing if not k.startswith(heads)]
    if missing or unexpected:
        raise ValueError(f"{path} does not fit {settings.model}: {len(missing)} tensors "
                         f"missing ({missing[:3]}), {len(unexpected)} unexpected "
                         f"({unexpected[:3]}). {fix}")
    return encoder.eval()


def _prepared(windows: np.ndarray, store: dict, settings: FoundationSettings
              ) -> tuple[np.ndarray, FoundationEncoder, list[int]]:
    """The EEG window store (``windows`` in µV, ``store`` its sidecar: ``channels``,
    ``sfreq_hz``, ``units``) as the settings' model reads it, the loaded model and the
    store's channels it takes."""
    if store.get("units") != "uV":
        raise ValueError(f"the EEG window store is in {store.get('units')!r}, not µV; rerun "
                         "eeg_windows with this version of brainrep")
    picks, names = match_channels(settings.model, list(store["channels"]))
    prepared = prepare_windows(windows, float(store["sfreq_hz"]), settings.model, picks)
    return prepared, load_foundation(settings, names, prepared.shape[-1]), picks


def foundation_embeddings(windows: np.ndarray, table: pd.DataFrame, store: dict, *,
                          settings: FoundationSettings
                          ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The frozen model's per-window and per-participant embeddings of the EEG window store
    (see :func:`_prepared`; ``table`` its rows), encoder ``foundation``, pretraining
    ``published``; and its model card."""
    import braindecode

    from brainrep.ssl.embed import embedding_tables

    prepared, encoder, picks = _prepared(windows, store, settings)
    device = choose_device(settings.device)
    per_window, per_participant = embedding_tables(
        batched_outputs(encoder.to(device), prepared, device=device), table, "foundation",
        "published")
    spec = FOUNDATION_MODELS[settings.model]
    card = {"model": settings.model, "braindecode": braindecode.__version__,
            "weights": settings.weights, "sha256": settings.sha256,
            "pretraining_data": "as published with the weights (not this dataset)",
            "channels": [store["channels"][i] for i in picks],
            "channels_left_out": [c for i, c in enumerate(store["channels"]) if i not in picks],
            "sfreq_hz": spec.sfreq, "windows_sfreq_hz": float(store["sfreq_hz"]),
            "n_times": int(prepared.shape[-1]), "unit_uv": spec.unit_uv,
            "embedding_dim": int(per_window.filter(regex=r"^emb_").shape[1]),
            "n_windows": len(per_window), "n_participants": len(per_participant)}
    return per_window, per_participant, card


def foundation_finetuned(windows: np.ndarray, table: pd.DataFrame, store: dict, *,
                         settings: FoundationSettings, finetuning: FinetuneSettings, label: str,
                         n_splits: int = 5, folds: pd.DataFrame | None = None,
                         fractions: tuple[float, ...] = (1.0,)) -> pd.DataFrame:
    """The window-level probe's rows (``foundation_finetuned``) of the model fine-tuned with
    ``label`` (a column of ``table``) inside each probe split, as ``finetuning`` says: the
    splits of :func:`~brainrep.ssl.probe.probe_splits` (``n_splits`` drawn with its ``seed``,
    or the outer ``folds``), the linear probe's on the same windows, with each of the labelled
    ``fractions`` of the training participants."""
    from brainrep.ssl.probe import labelled, probe_splits

    if len(table) != len(windows):
        raise ValueError(f"{len(table)} table rows for {len(windows)} windows: give one row "
                         "per window, in order")
    prepared, encoder, _ = _prepared(windows, store, settings)
    rows = labelled(table.reset_index(drop=True).assign(pretraining="published"), label)
    splits = probe_splits(rows.reset_index(drop=True), label, n_splits, finetuning.seed, folds)
    return finetuned_rows("foundation_finetuned", lambda _: copy.deepcopy(encoder),
                          prepared[rows.index.to_numpy()], rows.reset_index(drop=True), label,
                          splits, fractions, finetuning)


def foundation_finetuned_embeddings(windows: np.ndarray, table: pd.DataFrame, store: dict,
                                    labels: pd.Series, folds: pd.DataFrame, *,
                                    settings: FoundationSettings,
                                    finetuning: FinetuneSettings) -> pd.DataFrame:
    """The participant-level feature table ``foundation_eeg_finetuned``: the model (see
    :func:`_prepared`) fine-tuned with a prediction target's ``labels`` inside each outer
    fold of ``folds``, as ``finetuning`` says
    (:func:`~brainrep.ssl.finetune.finetuned_embeddings`)."""
    prepared, encoder, _ = _prepared(windows, store, settings)
    return finetuned_embeddings(lambda _: copy.deepcopy(encoder), prepared, table, labels,
                                folds, settings=finetuning, encoder="foundation",
                                pretraining="published")
