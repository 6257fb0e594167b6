import numpy as np
import pandas as pd
import pytest
import torch

from brainrep.ssl import embed_windows, pretrain, train
from brainrep.ssl.objectives import nt_xent

SETTINGS = {"objective": "contrastive", "encoder": "conv", "embedding_dim": 8, "width": 8,
            "epochs": 4, "patience": 10, "batch_size": 16, "learning_rate": 1e-3,
            "temperature": 0.2, "mask_ratio": 0.3, "seed": 0, "device": "cpu"}


def _data(n_participants=8, per=6, seed=0):
    rng = np.random.default_rng(seed)
    windows = rng.standard_normal((n_participants * per, 3, 64)).astype(np.float32)
    participants = np.repeat([f"sub-{i}" for i in range(n_participants)], per)
    return windows, participants


def test_nt_xent_rewards_matching_views():
    z = torch.randn(8, 4)
    assert nt_xent(z, z, 0.1) < nt_xent(z, torch.randn(8, 4), 0.1)


@pytest.mark.parametrize("objective", ["contrastive", "masked"])
def test_pretrain_writes_checkpoint_and_embeddings(tmp_path, objective):
    windows, participants = _data()
    settings = SETTINGS | {"objective": objective}
    history = pretrain(windows, participants, settings, tmp_path / "model.pt")
    assert list(history["epoch"]) == [0, 1, 2, 3]
    assert np.isfinite(history[["train_loss", "val_loss"]].to_numpy()).all()
    assert (history["windows_per_s"] > 0).all()
    assert not (tmp_path / "model.pt.partial").exists()
    table = pd.DataFrame({"participant_id": participants, "window": np.arange(len(windows))})
    trained, per_participant = embed_windows(tmp_path / "model.pt", windows, table, "ssl")
    random, _ = embed_windows(tmp_path / "model.pt", windows, table, "random")
    emb = [c for c in trained if c.startswith("emb_")]
    assert len(emb) == 8 and len(per_participant) == 8
    assert set(per_participant["pretraining"]) == {"transductive"}
    assert not np.allclose(trained[emb].to_numpy(), random[emb].to_numpy())


def test_training_is_deterministic(tmp_path):
    windows, participants = _data()
    first = pretrain(windows, participants, SETTINGS, tmp_path / "a.pt")
    second = pretrain(windows, participants, SETTINGS, tmp_path / "b.pt")
    assert np.allclose(first["train_loss"], second["train_loss"])


def test_interrupted_training_resumes_from_checkpoint(tmp_path, monkeypatch):
    """Kill training midway, rerun: it resumes at the next epoch and ends where an
    uninterrupted run ends."""
    windows, participants = _data()
    reference = pretrain(windows, participants, SETTINGS, tmp_path / "reference.pt")

    calls = {"n": 0}
    batches = train._batches

    def dies_in_third_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # epochs 0 and 1 each call it twice (train, validation)
            raise KeyboardInterrupt
        return batches(*args, **kwargs)

    monkeypatch.setattr(train, "_batches", dies_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        pretrain(windows, participants, SETTINGS, tmp_path / "model.pt")
    assert (tmp_path / "model.pt.partial").exists() and not (tmp_path / "model.pt").exists()
    monkeypatch.setattr(train, "_batches", batches)

    resumed_from = []
    monkeypatch.setattr(train.log, "info", lambda msg, *a: resumed_from.append(a))
    history = pretrain(windows, participants, SETTINGS, tmp_path / "model.pt")
    assert resumed_from and resumed_from[0][1] == 2  # resumed at epoch 2
    assert np.allclose(history["train_loss"], reference["train_loss"])


def test_partial_checkpoint_of_other_data_is_not_resumed(tmp_path, monkeypatch):
    windows, participants = _data()
    batches = train._batches
    calls = {"n": 0}

    def dies_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return batches(*args, **kwargs)

    monkeypatch.setattr(train, "_batches", dies_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        pretrain(windows, participants, SETTINGS, tmp_path / "m.pt")
    monkeypatch.setattr(train, "_batches", batches)
    assert (tmp_path / "m.pt.partial").exists()

    other, _ = _data(seed=1)
    history = pretrain(other, participants, SETTINGS, tmp_path / "m.pt")
    fresh = pretrain(other, participants, SETTINGS, tmp_path / "fresh.pt")
    assert list(history["epoch"]) == [0, 1, 2, 3]
    assert np.allclose(history["train_loss"], fresh["train_loss"])
