"""A pretraining corpus kept apart from the evaluation cohort it transfers to.

An encoder pretrained on unlabelled recordings (the corpus) and evaluated on other
participants (the cohort) is only a transfer result when no cohort recording was in the
corpus. :func:`check_disjoint` refuses an overlap by participant identifier and by the
content of the recordings (a SHA-256 of each recording's windows, :func:`recording_hashes`,
which finds the same data under another identifier when both went through the same
preprocessing). :func:`read_corpus` reads the corpora's window stores for pretraining,
:func:`model_card` describes what an encoder saw, and :func:`check_cohort` refuses to embed
a cohort with an encoder that saw it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainrep.ssl.train import RECORDING_COLUMNS, pretraining_rows
from brainrep.storage import on_disk


class LeakageError(ValueError):
    """Evaluation participants or recordings found in a pretraining corpus."""


def recording_hashes(windows: np.ndarray, table: pd.DataFrame) -> dict[str, str]:
    """SHA-256 of each recording's windows (float32 bytes in window order), keyed by
    ``participant_id`` and the recording's entities that are set (``table``: one row per
    window), e.g. ``sub-01_rest``."""
    columns = [c for c in RECORDING_COLUMNS if c in table]
    codes, keys = pd.factorize(pd.Series(
        ["_".join(str(v) for v in row if pd.notna(v))
         for row in table[columns].itertuples(index=False)]))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(keys) + 1))
    return {key: hashlib.sha256(np.ascontiguousarray(
                windows[order[bounds[i]:bounds[i + 1]]], dtype=np.float32).tobytes()).hexdigest()
            for i, key in enumerate(keys)}


def check_disjoint(corpus_participants: list[str], corpus_hashes: dict[str, str],
                   cohort_participants: list[str], cohort_hashes: dict[str, str], *,
                   corpus: str, cohort: str) -> None:
    """Raise :class:`LeakageError` when a participant of the cohort (named ``cohort``, e.g.
    its window store) is in the corpus (named ``corpus``), by identifier or by a recording
    whose windows are byte-identical."""
    shared = sorted(set(corpus_participants) & set(cohort_participants))
    by_content = {h: k for k, h in corpus_hashes.items()}
    copies = sorted(f"{key} (as {by_content[h]})" for key, h in cohort_hashes.items()
                    if h in by_content)
    if shared or copies:
        found = ([f"participants {shared[:5]}" + (" ..." if len(shared) > 5 else "")]
                 if shared else []) + ([f"recordings {copies[:5]}"] if copies else [])
        raise LeakageError(
            f"{cohort}: {' and '.join(found)} are also in the pretraining corpus {corpus}, so "
            "the encoder has seen evaluation data and its scores would not measure transfer. "
            "Remove them from the corpus and pretrain again, or evaluate on participants the "
            "corpus lacks.")


@dataclass
class PretrainingData:
    """The windows (n, channels, times) an encoder pretrains on, their ``table`` (one row per
    window; participants of a corpus are named ``<corpus folder>:<participant_id>`` so two
    corpora never share one), the SHA-256 of each recording (:func:`recording_hashes`), the
    participants as [dataset, participant_id] pairs (labels mean something only within their
    dataset, :func:`brainrep.plan.dataset_identity`), their store's ``sidecar`` and a
    ``description``."""

    windows: np.ndarray
    table: pd.DataFrame
    hashes: dict[str, str]
    participants: list[list[str]]
    sidecar: dict
    description: str


def model_card(checkpoint: dict, data: PretrainingData) -> dict:
    """What an encoder saw and how it was trained, from its ``checkpoint`` (as
    :func:`~brainrep.ssl.pretrain` writes it) and its pretraining ``data``."""
    return {"pretraining_data": data.description,
            "objective": checkpoint["settings"].get("objective"),
            "window_shape": list(data.windows.shape[1:]),
            "channels": data.sidecar.get("channels"), "participants": data.participants,
            "n_participants": len(data.participants), "n_recordings": len(data.hashes),
            "n_windows": len(data.windows), "recording_sha256": data.hashes,
            "encoders": {name: entry["spec"] for name, entry in checkpoint["encoders"].items()},
            "settings": checkpoint["settings"], "fingerprint": checkpoint["fingerprint"],
            "best_epoch": checkpoint["best_epoch"], "loss_curve": checkpoint["history"],
            "determinism": checkpoint["determinism"], "labels_used": False}


#: a window store: its array (.npy), its table (.tsv) and its sidecar (.json)
Store = tuple[str, str, str]


def read_store(store: Store) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """A window store's windows (n, channels, times; memory-mapped), table and sidecar."""
    array, table, sidecar = store
    return (np.load(array, mmap_mode="r"), pd.read_csv(table, sep="\t"),
            json.loads(Path(sidecar).read_text()))


def read_corpus(stores: list[Store], datasets: list[str]) -> PretrainingData:
    """Every corpus window store of ``stores`` (each in ``results/<folder>/group/...``, of
    the dataset named in ``datasets``), memory-mapped (several: joined in a scratch file,
    :func:`~brainrep.storage.on_disk`); each must have the first one's window
    shape and channels (EEG channels, fMRI parcels: an encoder reads windows of one
    layout)."""
    arrays, tables, hashes, participants, first = [], [], {}, [], None
    for store, dataset in zip(stores, datasets, strict=True):
        windows, table, sidecar = read_store(store)
        if first is None:
            first = (store[0], windows.shape[1:], sidecar)
        elif (windows.shape[1:], sidecar.get("channels")) != (first[1], first[2].get("channels")):
            raise ValueError(f"{store[0]}: windows of shape {windows.shape[1:]} and channels "
                             f"{sidecar.get('channels')} differ from {first[0]}'s "
                             f"{first[1]} and {first[2].get('channels')}: an encoder reads "
                             "windows of one layout. Leave one of them out of ssl.corpus.")
        folder = Path(store[0]).parents[2].name
        hashes |= {f"{folder}:{key}": value
                   for key, value in recording_hashes(windows, table).items()}
        participants += [[dataset, p] for p in table["participant_id"].unique()]
        arrays.append(windows)
        tables.append(table.assign(participant_id=folder + ":" + table["participant_id"]))
    windows = arrays[0] if len(arrays) == 1 else on_disk(arrays)  # one store: mapped
    return PretrainingData(windows, pd.concat(tables, ignore_index=True), hashes,
                           participants, first[2], f"corpus {[store[0] for store in stores]}")


def check_cohort(card: dict, card_path: str, cohort: Store, dataset: str) -> None:
    """Refuse to embed the ``cohort`` window store (of ``dataset``) with the encoder of
    ``card`` (its model card, read from ``card_path``) when the cohort's windows have another
    layout, or one of its recordings was pretrained on (identical windows, whatever their
    label), or one of its participants was (the same label in the same dataset)."""
    windows, table, sidecar = read_store(cohort)
    if (list(windows.shape[1:]) != card["window_shape"]
            or sidecar.get("channels") != card["channels"]):
        raise ValueError(f"{cohort[0]}: windows of shape {list(windows.shape[1:])} and channels "
                         f"{sidecar.get('channels')}, but the encoder of {card_path} was "
                         f"pretrained on {card['window_shape']} and {card['channels']}. Give "
                         "the corpus the cohort's channels (EEG) or parcels (fMRI) and "
                         "preprocessing, or pretrain on the cohort (ssl.corpus: []).")
    corpus_hashes = {key.split(":", 1)[-1] + f" in {key.split(':', 1)[0]}": value
                     for key, value in card["recording_sha256"].items()}
    check_disjoint([p for d, p in card["participants"] if d == dataset], corpus_hashes,
                   table["participant_id"].unique().tolist(), recording_hashes(windows, table),
                   corpus=card["pretraining_data"], cohort=cohort[0])


def check_encoder_cohort(card_path: str, encoder: str, modality: str, cohort: Store,
                         dataset: str) -> None:
    """:func:`check_cohort` with the model card at ``card_path`` of a corpus encoder:
    ``ssl``/``random`` (a unimodal card) or ``crossmodal`` (its ``modality`` part)."""
    card = json.loads(Path(card_path).read_text())
    check_cohort(card[modality] if encoder == "crossmodal" else card, card_path, cohort,
                 dataset)


def pretraining_windows(pretrain: str, cohort: Store | None, corpus_files: list[str],
                        folds: pd.DataFrame | None, datasets: list[str]) -> PretrainingData:
    """What an encoder pretrains on for ``pretrain``: ``corpus`` (the stores whose array,
    table and sidecar follow each other in ``corpus_files``, :func:`read_corpus`), ``all``
    (every window of the ``cohort`` store, transductive) or ``fold<k>`` (the cohort's
    windows but those of outer fold k's test participants in ``folds``); ``datasets`` names
    the dataset of each store (the cohort's: one)."""
    if pretrain == "corpus":
        return read_corpus([tuple(corpus_files[i:i + 3])
                            for i in range(0, len(corpus_files), 3)], datasets)
    windows, table, sidecar = read_store(cohort)
    rows = pretraining_rows(table, pretrain, folds)
    if not rows.all():  # these rows copied to a scratch file; else the store stays mapped
        windows, table = on_disk([windows], rows), table[rows].reset_index(drop=True)
    seen = ("every participant (transductive)" if pretrain == "all" else
            f"all but the test participants of outer fold {pretrain.removeprefix('fold')}")
    return PretrainingData(windows, table, recording_hashes(windows, table),
                           [[datasets[0], p] for p in table["participant_id"].unique()], sidecar,
                           f"the cohort {cohort[0]}: {seen}")
