"""Published EEG foundation models through braindecode: built with their published
hyper-parameters, loaded from a local weights file checked by SHA-256, fed windows as in their
pretraining, frozen or fine-tuned inside training folds. The weights are saved from randomly
initialised models of the same classes (no network)."""

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("braindecode", reason="needs braindecode (envs/ssl.post-deploy.sh)")

from brainrep.io import sha256  # noqa: E402
from brainrep.ssl.finetune import finetune_scores  # noqa: E402
from brainrep.ssl.foundation import (  # noqa: E402
    FoundationEncoder,
    batched_outputs,
    foundation_embeddings,
    foundation_finetuned,
    load_foundation,
    match_channels,
    prepare_windows,
)
from brainrep.ssl.probe import probe_splits  # noqa: E402
from brainrep.ssl.settings import FinetuneSettings, FoundationSettings  # noqa: E402

CHANNELS = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "T3", "Pz", "O1", "X1"]


def _windows(n: int, n_channels: int, seed: int = 0) -> np.ndarray:
    """EEG-like windows in µV at 100 Hz, 2 s."""
    return (np.random.default_rng(seed).standard_normal((n, n_channels, 200)) * 20).astype(
        np.float32)


@pytest.fixture(scope="module", params=["Labram", "CBraMod"])
def published(request, tmp_path_factory):
    """A model of the class saved as if published: (settings, channel names, n_times, the
    saved model)."""
    model = request.param
    _, names = match_channels(model, CHANNELS)
    torch.manual_seed(1)
    saved = FoundationEncoder(model, names, 400).eval()
    folder = tmp_path_factory.mktemp(model)
    if model == "CBraMod":  # both formats the loader reads
        from safetensors.torch import save_file

        path = folder / "weights.safetensors"
        save_file(saved.net.state_dict(), str(path))
    else:
        path = folder / "weights.pt"
        torch.save({"state_dict": saved.net.state_dict()}, path)
    return FoundationSettings(model=model, weights=str(path), sha256=sha256(path)), names, \
        saved


def test_published_weights_load_exactly_and_are_checked(published, tmp_path):
    settings, names, saved = published
    picks, _ = match_channels(settings.model, CHANNELS)
    windows = prepare_windows(_windows(6, len(CHANNELS)), 100.0, settings.model, picks)
    loaded = load_foundation(settings, names, windows.shape[-1])
    assert np.allclose(batched_outputs(loaded, windows), batched_outputs(saved, windows),
                       atol=1e-5)
    with pytest.raises(ValueError, match="ssl.foundation.sha256"):
        load_foundation(FoundationSettings(model=settings.model, weights=settings.weights,
                                           sha256="0" * 64), names, windows.shape[-1])
    other = "CBraMod" if settings.model == "Labram" else "Labram"
    with pytest.raises(ValueError, match=f"does not fit {other}"):
        load_foundation(FoundationSettings(model=other, weights=settings.weights,
                                           sha256=settings.sha256),
                        match_channels(other, CHANNELS)[1], windows.shape[-1])


def test_channels_map_onto_the_models_montage():
    picks, names = match_channels("Labram", CHANNELS)
    assert picks == list(range(9))  # X1 has no LaBraM embedding: left out
    assert names[0].upper() == "FP1" and names[6].upper() in ("T3", "T7")
    assert match_channels("CBraMod", CHANNELS) == (list(range(10)), CHANNELS)  # any montage
    with pytest.raises(ValueError, match="none of the EEG channels"):
        match_channels("Labram", ["X1", "X2"])


def test_windows_are_resampled_to_whole_patches_in_the_models_unit():
    time = np.arange(250) / 100.0  # 2.5 s at 100 Hz: two whole 1-s patches at 200 Hz
    windows = (50 * np.sin(2 * np.pi * 10 * time))[None, None, :].repeat(3, axis=1)
    prepared = prepare_windows(windows, 100.0, "CBraMod", [0, 2])
    assert prepared.shape == (1, 2, 400) and prepared.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(prepared[0, 0]))
    assert np.fft.rfftfreq(400, 1 / 200.0)[spectrum.argmax()] == 10.0
    assert abs(prepared[0, 0, 50:350].max() - 0.5) < 0.02  # 50 µV in units of 100 µV
    with pytest.raises(ValueError, match="Lengthen eeg.window_s"):
        prepare_windows(windows[..., :80], 100.0, "CBraMod", [0])


def test_fine_tuning_learns_a_planted_label_inside_training_folds(published):
    """Windows of label b carry a 10 Hz rhythm of ten times the amplitude: fine-tuned on the
    training participants of each split, the model separates them in the test participants;
    the weights are loaded afresh for each split."""
    settings, names, _ = published
    n_participants, per_participant = 12, 8
    rng = np.random.default_rng(0)
    labels = np.tile(["a", "b"], n_participants * per_participant // 2)
    windows = _windows(len(labels), len(CHANNELS))
    rhythm = 150 * np.sin(2 * np.pi * 10 * np.arange(200) / 100.0 + rng.uniform(
        0, 2 * np.pi, (len(labels), 1, 1)))
    windows[labels == "b"] += rhythm[labels == "b"].astype(np.float32)
    table = pd.DataFrame({"participant_id": np.repeat([f"sub-{i:02d}" for i in
                                                       range(n_participants)], per_participant),
                          "label": labels})
    picks, _ = match_channels(settings.model, CHANNELS)
    prepared = prepare_windows(windows, 100.0, settings.model, picks)
    halves = table["participant_id"].isin([f"sub-{i:02d}" for i in range(6)]).to_numpy()
    splits = [(np.flatnonzero(~halves), np.flatnonzero(halves)),
              (np.flatnonzero(halves), np.flatnonzero(~halves))]
    loads = []

    def load(split):
        loads.append(split)
        return load_foundation(settings, names, prepared.shape[-1])

    scores = finetune_scores(load, prepared, table, "label", splits,
                             settings=FinetuneSettings(epochs=6, batch_size=16,
                                                       learning_rate=3e-4, device="cpu"))
    assert loads == [0, 1] and scores.min() > 0.85, scores  # measured: 0.92 and 1.0


def test_a_time_embedding_saved_for_longer_windows_is_cut_to_these(tmp_path):
    """LaBraM's time embedding has one row per patch of the windows it was saved for
    (braindecode's published example: 1600 samples); shorter windows use its first rows,
    longer ones are refused."""
    _, names = match_channels("Labram", CHANNELS)
    torch.manual_seed(2)
    long = FoundationEncoder("Labram", names, 1600)
    path = tmp_path / "labram_1600.pt"
    torch.save(long.net.state_dict(), path)
    settings = FoundationSettings(model="Labram", weights=str(path), sha256=sha256(path))
    short = load_foundation(settings, names, 400)
    assert torch.equal(short.net.temporal_embedding, long.net.temporal_embedding[:, :3])
    assert torch.equal(short.net.cls_token, long.net.cls_token)
    with pytest.raises(ValueError, match="does not fit Labram"):
        load_foundation(settings, names, 2000)


def test_the_stage_embeds_frozen_fine_tunes_in_the_probes_splits_and_writes_a_card(published,
                                                                                   monkeypatch):
    settings, _, _ = published
    table = pd.DataFrame({"participant_id": np.repeat([f"sub-{i}" for i in range(4)], 4),
                          "label": np.tile(["a", "b"], 8)})
    store = {"channels": CHANNELS, "sfreq_hz": 100.0, "units": "uV"}
    windows = _windows(16, len(CHANNELS))
    per_window, per_participant, card = foundation_embeddings(windows, table, store,
                                                              settings=settings)
    assert len(per_window) == 16 and len(per_participant) == 4
    assert set(per_participant["pretraining"]) == {"published"}
    assert card["sha256"] == settings.sha256 and card["sfreq_hz"] == 200.0
    assert card["n_times"] == 400 and card["embedding_dim"] == per_window.filter(
        regex="^emb_").shape[1]
    assert card["channels_left_out"] == ([] if settings.model == "CBraMod" else ["X1"])
    quick = FinetuneSettings(epochs=1, seed=3, device="cpu")
    split_sets = []
    import brainrep.ssl.finetune as finetune

    original = finetune.finetune_scores

    def recording(load, prepared, rows, label, splits, *, settings):
        split_sets.append([sorted(set(rows["participant_id"].iloc[test])) for _, test in splits])
        return original(load, prepared, rows, label, splits, settings=settings)

    monkeypatch.setattr(finetune, "finetune_scores", recording)
    finetuned = foundation_finetuned(windows, table, store, settings=settings, finetuning=quick,
                                     label="label", n_splits=2)
    assert finetuned[["encoder", "n_folds", "n_participants", "pretraining"]].values.tolist() \
        == [["foundation_finetuned", 2, 4, "published"]]
    probe_rows = per_window.assign(label=table["label"])
    assert split_sets[0] == [sorted(set(probe_rows["participant_id"].iloc[test])) for _, test
                             in probe_splits(probe_rows, "label", 2, 3)]  # the linear probe's
    with pytest.raises(ValueError, match="not µV"):
        foundation_embeddings(windows[:2], table.iloc[:2], store | {"units": "V"},
                              settings=quick)
