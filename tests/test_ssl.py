import tracemalloc
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from brainrep.ssl import embed_windows, linear_probe, pretrain, pretrain_crossmodal, train
from brainrep.ssl.augment import (
    SensorRotation,
    build_augmentations,
    frequency_shift,
    ft_surrogate,
    temporal_crop,
    time_mask,
)
from brainrep.ssl.embed import load_encoder
from brainrep.ssl.objectives import nt_xent
from brainrep.ssl.settings import CrossModalSettings, SSLSettings

SETTINGS = SSLSettings(embedding_dim=8, width=8, depth=1, patch_size=8, epochs=4,
                       batch_size=16, tau_neg=3, device="cpu",
                       augmentations=["time_mask", "channel_dropout", "gaussian_noise"])


def _data(n_participants=8, per=6, seed=0):
    rng = np.random.default_rng(seed)
    windows = rng.standard_normal((n_participants * per, 3, 64)).astype(np.float32)
    table = pd.DataFrame({"participant_id": np.repeat([f"sub-{i}" for i in range(n_participants)],
                                                      per),
                          "window": np.tile(np.arange(per), n_participants)})
    return windows, table


def test_nt_xent_rewards_matching_views():
    z = torch.randn(8, 4)
    assert nt_xent(z, z, 0.1) < nt_xent(z, torch.randn(8, 4), 0.1)


def test_augmentations_do_what_they_say():
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(200) / 100.0  # 2 s at 100 Hz
    sine = torch.sin(2 * torch.pi * 10 * t).repeat(4, 2, 1)
    surrogate = ft_surrogate(sine, generator)
    assert not torch.allclose(surrogate, sine, atol=1e-2)
    assert torch.allclose(torch.fft.rfft(surrogate).abs(), torch.fft.rfft(sine).abs(), atol=1e-3)
    shifted = frequency_shift(sine, generator)  # up to 0.02 x 100 Hz = 2 Hz
    peaks = torch.fft.rfft(shifted).abs().argmax(-1) / 2.0  # 0.5-Hz bins
    assert ((peaks - 10).abs() <= 2.5).all() and (peaks != 10).any()
    masked = time_mask(torch.ones(4, 2, 200), generator)
    zeros = (masked[:, 0] == 0).sum(-1)
    assert ((zeros >= 19) & (zeros <= 41)).all() and (masked[:, 0] == masked[:, 1]).all()
    ramp = torch.linspace(0, 1, 100).repeat(3, 1, 1)
    cropped = temporal_crop(ramp, generator)
    assert (cropped.diff(dim=-1) >= -1e-6).all()  # still a ramp, stretched
    assert ((cropped[..., -1] - cropped[..., 0]) >= 0.59).all()


def test_sensor_rotation_moves_a_spatial_pattern_with_the_head():
    """A field equal to each electrode's x coordinate, rotated by 15 degrees about the vertical
    axis, reads as the x coordinate of the rotated electrodes."""
    import mne

    montage = mne.channels.make_standard_montage("standard_1005")
    names = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7",
             "P3", "Pz", "P4", "P8", "O1", "O2", "AF3", "AF4", "FC1", "FC2", "CP1", "CP2",
             "PO3", "PO4", "FC5", "FC6", "CP5", "CP6"]
    positions = np.array([montage.get_positions()["ch_pos"][n] for n in names])
    rotation = SensorRotation(positions, max_degrees=15, n_angles=3)
    centered = positions - positions.mean(axis=0)
    field = torch.tensor(centered[:, 0], dtype=torch.float32).view(1, -1, 1)
    identity = rotation.matrices[1] @ field[0]
    assert torch.allclose(identity, field[0], atol=2e-3)
    angle = np.deg2rad(15)
    expected = np.cos(angle) * centered[:, 0] - np.sin(angle) * centered[:, 1]
    rotated = (rotation.matrices[2] @ field[0]).squeeze().numpy()
    central = np.abs(centered[:, 2] - centered[:, 2].min()) > 0.03  # away from the rim
    assert np.corrcoef(rotated[central], expected[central])[0, 1] > 0.97
    # without positions it is left out with a warning, and the other augmentations stay
    kept = build_augmentations(["time_mask", "sensor_rotation"], None)
    assert len(kept) == 1 and not isinstance(kept[0], SensorRotation)


@pytest.mark.parametrize(("objective", "encoder"), [
    ("contrastive", "conv"), ("contrastive", "transformer"), ("contrastive", "connectome"),
    ("relative_positioning", "conv"), ("temporal_shuffling", "conv"), ("masked", "conv"),
    ("masked", "transformer"),
    ("generative_contrastive", "conv"), ("generative_contrastive", "transformer")])
def test_pretrain_writes_checkpoint_and_embeddings(tmp_path, objective, encoder):
    windows, table = _data()
    settings = replace(SETTINGS, objective=objective, encoder=encoder)
    history = pretrain(windows, table, tmp_path / "model.pt", settings=settings)
    assert list(history["epoch"]) == [0, 1, 2, 3]
    assert np.isfinite(history[["train_loss", "val_loss"]].to_numpy()).all()
    assert (history["windows_per_s"] > 0).all()
    assert not (tmp_path / "model.pt.partial").exists()
    trained, per_participant = embed_windows(tmp_path / "model.pt", windows, table, "ssl")
    random, _ = embed_windows(tmp_path / "model.pt", windows, table, "random")
    emb = [c for c in trained if c.startswith("emb_")]
    assert len(emb) == 8 and len(per_participant) == 8
    assert set(per_participant["pretraining"]) == {"transductive"}
    assert not np.allclose(trained[emb].to_numpy(), random[emb].to_numpy())
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert state["determinism"]["torch_deterministic_algorithms"]
    assert state["determinism"]["device"] == "cpu"


def test_masked_objective_learns_to_fill_in_structured_signals(tmp_path):
    """Windows made of three shared sinusoids: masked reconstruction error falls well below
    its first epoch."""
    rng = np.random.default_rng(1)
    t = np.arange(64) / 32
    sources = np.stack([np.sin(2 * np.pi * f * t) for f in (2, 5, 9)])
    windows = np.stack([rng.standard_normal((3, 3)) @ np.roll(sources, rng.integers(64), axis=1)
                        for _ in range(96)]).astype(np.float32)
    table = pd.DataFrame({"participant_id": np.repeat([f"sub-{i}" for i in range(8)], 12),
                          "window": np.tile(np.arange(12), 8)})
    history = pretrain(windows, table, tmp_path / "m.pt", settings=replace(
        SETTINGS, objective="masked", epochs=15, learning_rate=3e-3))
    assert history["val_loss"].min() < 0.5 * history["val_loss"].iloc[0]


def test_objectives_refuse_what_they_cannot_do(tmp_path):
    windows, table = _data()
    with pytest.raises(ValueError, match="time axis"):
        pretrain(windows, table, tmp_path / "a.pt",
                 settings=replace(SETTINGS, objective="masked", encoder="connectome"))
    with pytest.raises(ValueError, match="tau_neg"):
        pretrain(windows, table, tmp_path / "b.pt",
                 settings=replace(SETTINGS, objective="relative_positioning", tau_neg=9))
    with pytest.raises(ValueError, match="unknown encoder"):
        pretrain(windows, table, tmp_path / "c.pt", settings=replace(SETTINGS, encoder="lstm"))


def _pool_with_two_runs_and_a_gap():
    """Participant sub-0: run 1 with windows at 0-9 s and a gap of rejected windows (10-29 s)
    before 30-39 s; run 2 at 0-9 s. Windows are 1 s long."""
    onsets = np.r_[np.arange(10), np.arange(30, 40), np.arange(10)].astype(float)
    table = pd.DataFrame({"participant_id": "sub-0", "run": ["1"] * 20 + ["2"] * 10,
                          "window": np.r_[np.arange(20), np.arange(10)], "onset_s": onsets})
    windows = np.random.default_rng(0).standard_normal((30, 2, 16)).astype(np.float32)
    return train.window_pool(windows, table)[0], table


def test_relative_positioning_pairs_respect_runs_and_gaps():
    pool, table = _pool_with_two_runs_and_a_gap()
    assert pool.position[10] == 30.0  # the gap keeps its length
    objective = train.build_objective(replace(SETTINGS, objective="relative_positioning",
                                              tau_neg=5), 2, 16)
    generator = torch.Generator().manual_seed(0)
    anchors, partners, labels = objective.pairs(pool, torch.arange(30).repeat(20), generator)
    assert len(labels) > 500
    assert (pool.recording[anchors] == pool.recording[partners]).all()  # never across runs
    distance = np.abs(pool.position[anchors] - pool.position[partners])
    assert (distance[labels == 1] <= 1).all() and (distance[labels == 0] >= 5).all()
    # windows 9 and 10 are neighbours by index but 21 s apart: never a positive pair
    across_gap = ((anchors == 9) & (partners == 10)) | ((anchors == 10) & (partners == 9))
    assert not (across_gap & (labels == 1)).any()


def test_jittered_event_onsets_keep_their_typical_spacing():
    """Event-locked epochs 2 s apart on average (jittered), in a recording that also has two
    events 10 ms apart: positions are in that recording's median step, so neighbours stay
    close and positive pairs exist."""
    rng = np.random.default_rng(0)
    onsets = np.r_[np.cumsum(rng.uniform(1.7, 2.3, 30)), 100.0, 100.01]
    table = pd.DataFrame({"participant_id": "sub-0", "window": np.arange(32),
                          "onset_s": onsets})
    windows = rng.standard_normal((32, 2, 16)).astype(np.float32)
    pool = train.window_pool(windows, table)[0]
    assert 0.8 < np.median(np.diff(pool.position[:30])) < 1.2
    objective = train.build_objective(replace(SETTINGS, objective="relative_positioning",
                                              tau_pos=1, tau_neg=5), 2, 16)
    _, _, labels = objective.pairs(pool, torch.arange(30).repeat(10),
                                   torch.Generator().manual_seed(0))
    assert 0.3 < labels.float().mean() < 0.7


def test_temporal_shuffling_triplets_are_ordered_or_far():
    pool, _ = _pool_with_two_runs_and_a_gap()
    objective = train.build_objective(replace(SETTINGS, objective="temporal_shuffling",
                                              tau_neg=5), 2, 16)
    generator = torch.Generator().manual_seed(0)
    first, middle, last, labels = objective.triplets(pool, torch.arange(30).repeat(20),
                                                     generator)
    assert len(labels) > 300 and 0.3 < labels.mean() < 0.7
    rec = pool.recording
    assert (rec[first] == rec[middle]).all() and (rec[middle] == rec[last]).all()
    a, m, b = pool.position[first], pool.position[middle], pool.position[last]
    ordered = labels.numpy() == 1
    assert ((a[ordered] < m[ordered]) & (m[ordered] < b[ordered])).all()
    assert (np.minimum(np.abs(m - a), np.abs(m - b))[~ordered] >= 5).all()
    assert (b - a <= 2).all()  # tau_pos = 1: anchors 2 steps apart, no gap inside


def test_training_is_deterministic(tmp_path):
    windows, table = _data()
    first = pretrain(windows, table, tmp_path / "a.pt", settings=SETTINGS)
    second = pretrain(windows, table, tmp_path / "b.pt", settings=SETTINGS)
    assert np.allclose(first["train_loss"], second["train_loss"])


@pytest.mark.parametrize("objective", ["contrastive", "masked", "relative_positioning",
                                       "temporal_shuffling", "generative_contrastive",
                                       "crossmodal"])
def test_loader_workers_read_a_memory_mapped_store_without_changing_the_training(tmp_path,
                                                                                 objective):
    """Windows memory-mapped from disk, read by a data-loader worker process, train the same
    weights as the same windows in memory read by the training process, and leave torch's
    global random state as it does."""
    windows, table = _data()
    np.save(tmp_path / "windows.npy", windows)
    stored = np.load(tmp_path / "windows.npy", mmap_mode="r")
    settings = replace(SETTINGS, objective=objective, epochs=1)
    states, rng = {}, {}
    for name, data, workers in (("memory", windows, 0), ("disk", stored, 1)):
        if objective == "crossmodal":
            cross = CrossModalSettings(epochs=1, batch_size=16, device="cpu", eeg=settings,
                                       fmri=replace(settings, objective="masked"))
            pretrain_crossmodal((data, table), (data, table), tmp_path / f"{name}.pt",
                                settings=cross, workers=workers)
        else:
            pretrain(data, table, tmp_path / f"{name}.pt", settings=settings, workers=workers)
        rng[name] = torch.get_rng_state()
        states[name] = torch.load(tmp_path / f"{name}.pt", weights_only=True)["encoders"]
    assert torch.equal(rng["memory"], rng["disk"])
    for encoder, memory in states["memory"].items():
        disk = states["disk"][encoder]
        assert all(torch.equal(memory["state"][k], disk["state"][k]) for k in memory["state"])
        assert not all(torch.equal(memory["state"][k], memory["initial_state"][k])
                       for k in memory["state"])  # it trained


def test_a_memory_mapped_store_is_standardized_without_holding_it_in_memory(tmp_path):
    windows = np.random.default_rng(0).standard_normal((4000, 8, 64)).astype(np.float32) * 3
    np.save(tmp_path / "windows.npy", windows)  # 8 MiB
    table = pd.DataFrame({"participant_id": np.repeat([f"sub-{i}" for i in range(40)], 100),
                          "window": np.tile(np.arange(100), 40)})
    stored = np.load(tmp_path / "windows.npy", mmap_mode="r")
    tracemalloc.start()
    pool, scaling = train.window_pool(stored, table)
    batch = pool.read(np.array([3999, 5, 17]))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20  # well under the store's 8 MiB
    assert np.array_equal(scaling["std"], windows.std(axis=(0, 2), keepdims=True) + 1e-6)
    expected = (windows[[3999, 5, 17]] - scaling["mean"]) / scaling["std"]
    assert torch.equal(batch, torch.from_numpy(expected))


def test_interrupted_training_resumes_from_checkpoint(tmp_path, monkeypatch):
    """Kill training midway, rerun: it resumes at the next epoch and ends where an
    uninterrupted run ends."""
    windows, table = _data()
    reference = pretrain(windows, table, tmp_path / "reference.pt", settings=SETTINGS)

    calls = {"n": 0}
    batches = train._batches

    def dies_in_third_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # epochs 0 and 1 each call it twice (train, validation)
            raise KeyboardInterrupt
        return batches(*args, **kwargs)

    monkeypatch.setattr(train, "_batches", dies_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        pretrain(windows, table, tmp_path / "model.pt", settings=SETTINGS)
    assert (tmp_path / "model.pt.partial").exists() and not (tmp_path / "model.pt").exists()
    monkeypatch.setattr(train, "_batches", batches)

    resumed_from = []
    monkeypatch.setattr(train.log, "info", lambda msg, *a: resumed_from.append(a))
    history = pretrain(windows, table, tmp_path / "model.pt", settings=SETTINGS)
    assert resumed_from and resumed_from[0][1] == 2  # resumed at epoch 2
    assert np.allclose(history["train_loss"], reference["train_loss"])
    trained, _ = embed_windows(tmp_path / "model.pt", windows, table, "ssl")
    uninterrupted, _ = embed_windows(tmp_path / "reference.pt", windows, table, "ssl")
    emb = [c for c in trained if c.startswith("emb_")]
    assert np.allclose(trained[emb], uninterrupted[emb], atol=1e-5)


def interrupt_in_second_epoch(monkeypatch, windows, table, checkpoint) -> None:
    """Run :func:`pretrain` and kill it during its second epoch, leaving its partial."""
    batches = train._batches
    calls = {"n": 0}

    def dies_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # epoch 0 calls it twice (train, validation)
            raise KeyboardInterrupt
        return batches(*args, **kwargs)

    monkeypatch.setattr(train, "_batches", dies_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        pretrain(windows, table, checkpoint, settings=SETTINGS)
    monkeypatch.setattr(train, "_batches", batches)


def test_partial_checkpoint_of_other_data_is_not_resumed(tmp_path, monkeypatch):
    windows, table = _data()
    interrupt_in_second_epoch(monkeypatch, windows, table, tmp_path / "m.pt")
    assert (tmp_path / "m.pt.partial").exists()

    other, _ = _data(seed=1)
    history = pretrain(other, table, tmp_path / "m.pt", settings=SETTINGS)
    fresh = pretrain(other, table, tmp_path / "fresh.pt", settings=SETTINGS)
    assert list(history["epoch"]) == [0, 1, 2, 3]
    assert np.allclose(history["train_loss"], fresh["train_loss"])


def test_transfer_from_a_local_checkpoint(tmp_path):
    """Weights saved to disk (a brainrep checkpoint, or a bare state_dict as foundation models
    ship) start the encoder; without fine-tuning the embeddings are exactly the saved model's."""
    windows, table = _data()
    pretrain(windows, table, tmp_path / "source.pt", settings=SETTINGS)
    source, _ = load_encoder(tmp_path / "source.pt", "ssl")
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    other, _ = _data(seed=3)
    for init in ("source.pt", "weights.pt"):
        settings = replace(SETTINGS, init_checkpoint=str(tmp_path / init), fine_tune=False)
        history = pretrain(other, table, tmp_path / f"from-{init}", settings=settings)
        assert history.empty
        loaded, _ = load_encoder(tmp_path / f"from-{init}", "ssl")
        for key, value in source.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
    tuned = pretrain(other, table, tmp_path / "tuned.pt",
                     settings=replace(SETTINGS, init_checkpoint=str(tmp_path / "weights.pt")))
    assert len(tuned) == 4
    state = torch.load(tmp_path / "tuned.pt", weights_only=True)
    assert state["transfer"]["loaded"] == len(source.state_dict())
    with pytest.raises(ValueError, match="less than half"):
        pretrain(other, table, tmp_path / "bad.pt", settings=replace(
            SETTINGS, init_checkpoint=str(tmp_path / "weights.pt"), encoder="transformer"))


def test_crossmodal_training_aligns_the_two_modalities(tmp_path):
    """EEG and fMRI windows driven by one participant trait; two participants have EEG only.
    After training, each participant's EEG embedding correlates more with its own fMRI
    embedding than with other participants' (by more than at random init)."""
    rng = np.random.default_rng(0)
    n, per = 16, 8
    trait = rng.standard_normal((n, 2))

    def modality(channels, times, participants, loading):
        windows, rows = [], []
        for i in participants:
            for w in range(per):
                signal = rng.standard_normal((channels, times))
                signal[:2] *= 1 + 2 * np.abs(trait[i])[:, None] * loading
                windows.append(signal)
                rows.append({"participant_id": f"sub-{i:02d}", "window": w})
        return np.stack(windows).astype(np.float32), pd.DataFrame(rows)

    eeg = modality(4, 64, range(n), 1.0)
    fmri = modality(6, 32, range(n - 2), 1.0)
    settings = CrossModalSettings(
        seed=SETTINGS.seed, device=SETTINGS.device, batch_size=SETTINGS.batch_size,
        learning_rate=SETTINGS.learning_rate, temperature=SETTINGS.temperature, epochs=12,
        patience=20, weight=1.0,
        eeg=replace(SETTINGS, augmentations=["time_mask", "gaussian_noise"]),
        fmri=replace(SETTINGS, augmentations=["gaussian_noise", "temporal_crop"]))
    history = pretrain_crossmodal(eeg, fmri, tmp_path / "cross.pt", settings=settings)
    assert np.isfinite(history["train_loss"]).all()

    def matching(which):
        pooled = {m: embed_windows(tmp_path / "cross.pt", *data, which, name=m)[1]
                  for m, data in (("eeg", eeg), ("fmri", fmri))}
        both = pooled["eeg"].merge(pooled["fmri"], on="participant_id", suffixes=("_e", "_f"))
        e = both.filter(regex="_e$").filter(like="emb").to_numpy()
        f = both.filter(regex="_f$").filter(like="emb").to_numpy()
        similarity = np.corrcoef(e, f)[:len(e), len(e):]
        own = np.diag(similarity)
        others = (similarity.sum(axis=1) - own) / (len(e) - 1)
        return (own - others).mean(), len(pooled["eeg"])

    trained, n_eeg = matching("ssl")
    random, _ = matching("random")
    assert n_eeg == n  # EEG-only participants have embeddings too
    assert trained > random + 0.1, (trained, random)  # measured 0.27 vs 0.00


def test_linear_probe_groups_by_participant():
    """Windows carry a participant fingerprint but no label signal: the grouped probe is at
    chance. A real label signal is found."""
    rng = np.random.default_rng(0)
    participants = np.repeat([f"sub-{i}" for i in range(20)], 10)
    label = np.repeat(np.tile(["a", "b"], 10), 10)
    fingerprint = np.repeat(rng.standard_normal((20, 4)) * 3, 10, axis=0)
    noise = rng.standard_normal((200, 4))
    table = pd.DataFrame(fingerprint + noise, columns=[f"emb_{i:03d}" for i in range(4)])
    table["participant_id"], table["label"] = participants, label
    assert abs(linear_probe(table, "label").mean() - 0.5) < 0.2
    table["emb_000"] += (label == "a") * 8.0
    assert linear_probe(table, "label").mean() > 0.9


def test_fewer_labels_keep_a_stratified_subset_the_same_for_every_table():
    """A quarter of each split's training participants keep their label, both classes
    among them; the test set is untouched; the subset follows the participants, not the
    order of a table's rows; the probe table has a row per encoder and fraction."""
    from brainrep.ssl.probe import fewer_labels, probe_splits, probe_table

    rng = np.random.default_rng(3)
    participants = np.repeat([f"sub-{i:02d}" for i in range(24)], 5)
    label = np.repeat(np.tile(["a", "b"], 12), 5)
    table = pd.DataFrame(rng.standard_normal((120, 3)), columns=["emb_0", "emb_1", "emb_2"])
    table["emb_0"] += (label == "a") * 1.0
    table["participant_id"], table["label"], table["pretraining"] = participants, label, "x"
    train, test = probe_splits(table, "label", 4, 0)[1]
    kept = fewer_labels(table, "label", train, 1, 0.25, 0)
    people = table["participant_id"].iloc[kept]
    assert people.nunique() == round(0.25 * table["participant_id"].iloc[train].nunique())
    assert set(table["label"].iloc[kept]) == {"a", "b"} and set(kept) <= set(train)
    assert (people.value_counts() == 5).all()  # whole participants
    shuffled = table.sample(frac=1, random_state=1).reset_index(drop=True)
    positions = np.flatnonzero(shuffled["participant_id"].isin(
        table["participant_id"].iloc[train]))
    assert set(shuffled["participant_id"].iloc[fewer_labels(shuffled, "label", positions, 1,
                                                            0.25, 0)]) == set(people)
    assert (fewer_labels(table, "label", train, 1, 1.0, 0) == train).all()
    curve = probe_table({"enc": table}, "label", 4, 0, fractions=(0.25, 1.0))
    assert curve[["encoder", "fraction"]].values.tolist() == [["enc", 0.25], ["enc", 1.0]]
    assert curve["mean"].iloc[1] > 0.6  # measured 0.68


def test_too_few_windows_for_a_batch_keep_the_initial_weights_and_say_so(tmp_path, caplog):
    windows, table = _data(n_participants=1, per=2)  # one to train on, one to validate
    history = pretrain(windows, table, tmp_path / "tiny.pt", settings=replace(SETTINGS, epochs=1))
    assert np.isnan(history["train_loss"]).all()
    assert "make no batch of 2" in caplog.text


def test_classical_window_features_find_a_band_power_difference_per_window():
    """Band power and log-covariance features of each window, probed like an encoder's
    embeddings: a 10-Hz rhythm in half the participants' windows is found by both, and the
    probe uses the encoders' splits (one row per window, the window table's columns kept)."""
    from brainrep.ssl.probe import eeg_window_features, per_fold

    rng = np.random.default_rng(0)
    sfreq, n = 100.0, 160
    t = np.arange(200) / sfreq
    participants = np.repeat([f"sub-{i:02d}" for i in range(16)], 10)
    alpha = np.repeat(np.tile([True, False], 8), 10)
    windows = rng.standard_normal((n, 4, 200))
    windows[alpha, :2] += 2 * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6, (alpha.sum(), 1, 1)))
    table = pd.DataFrame({"participant_id": participants, "window": np.tile(range(10), 16),
                          "label": np.where(alpha, "alpha", "none")})
    features = eeg_window_features(windows, table, sfreq, {"theta": [4, 8], "alpha": [8, 13]})
    assert list(features) == ["bandpower", "riemann"]
    assert features["bandpower"].filter(like="emb_").shape == (n, 8)  # 4 channels x 2 bands
    assert features["riemann"].filter(like="emb_").shape == (n, 10)  # upper triangle of 4 x 4
    assert (features["bandpower"]["window"] == table["window"]).all()
    for table_ in features.values():
        assert np.isfinite(table_.filter(like="emb_").to_numpy()).all()
        assert linear_probe(table_, "label").mean() > 0.9
    folds = pd.DataFrame({"participant_id": np.unique(participants), "fold": np.arange(16) % 4})
    assert sorted(per_fold(features["bandpower"], folds)["encoder_fold"].unique()) == [0, 1, 2, 3]
    assert linear_probe(per_fold(features["bandpower"], folds), "label", folds=folds).mean() > 0.9
