"""Transfer: a pretraining corpus kept apart from the cohort, its model card, fine-tuning
inside training folds, and gradient accumulation."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SCHEMA, shared_dataset

from brainrep.config import ConfigError, validate_config
from brainrep.plan import build_plan, corpus_config
from brainrep.ssl import checkpoints, pretrain, train
from brainrep.ssl.corpus import (
    LeakageError,
    check_cohort,
    model_card,
    pretraining_windows,
    read_corpus,
    recording_hashes,
)
from brainrep.ssl.embed import load_encoder
from brainrep.ssl.finetune import (
    encoder_finetuned,
    encoder_loader,
    finetune_probabilities,
    finetuned_embeddings,
    validation_split,
)
from brainrep.ssl.settings import FinetuneSettings, SSLSettings

SETTINGS = SSLSettings(objective="masked", embedding_dim=8, width=8, depth=1, epochs=2,
                       batch_size=8, device="cpu")


def _store(folder: Path, participants: list[str], per: int = 6, seed: int = 0,
           channels=("Cz", "Pz", "Oz")) -> tuple[str, str, str]:
    """A window store (array, table, sidecar) of ``per`` windows of each participant."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    windows = rng.standard_normal((len(participants) * per, len(channels), 64)).astype("f4")
    table = pd.DataFrame({"participant_id": np.repeat(participants, per),
                          "task": "rest", "window": np.tile(np.arange(per), len(participants))})
    paths = (str(folder / "windows.npy"), str(folder / "windows.tsv"),
             str(folder / "windows.json"))
    np.save(paths[0], windows)
    table.to_csv(paths[1], sep="\t", index=False)
    Path(paths[2]).write_text(json.dumps({"channels": list(channels)}))
    return paths


def _card(tmp_path: Path, corpus: list[tuple[str, str, str]], datasets: list[str]) -> dict:
    data = read_corpus(corpus, datasets)
    pretrain(data.windows, data.table, tmp_path / "model.pt", settings=SETTINGS)
    return model_card(checkpoints.load_weights(tmp_path / "model.pt"), data)


def test_a_corpus_encoder_refuses_cohorts_it_has_seen(tmp_path):
    """Two corpora pretrain one encoder; its card lists what it saw; a cohort of other people
    passes, one sharing a participant of the same dataset or a recording (renamed) is
    refused; a label that another dataset also uses is not a person seen."""
    first = _store(tmp_path / "results/a_corpus-x/group/eeg", ["sub-01", "sub-02", "sub-03"])
    second = _store(tmp_path / "results/a_corpus-y/group/eeg", ["sub-01", "sub-09"], seed=1)
    card = _card(tmp_path, [first, second], ["X", "Y"])
    assert card["participants"] == [["X", "sub-01"], ["X", "sub-02"], ["X", "sub-03"],
                                    ["Y", "sub-01"], ["Y", "sub-09"]]
    assert card["n_windows"] == 30 and card["n_recordings"] == 5 and not card["labels_used"]
    assert card["window_shape"] == [3, 64] and card["channels"] == ["Cz", "Pz", "Oz"]
    assert len(card["loss_curve"]) == 2 and card["objective"] == "masked"
    checkpoint = checkpoints.load_weights(tmp_path / "model.pt")
    assert "a_corpus-x:sub-01" in checkpoint["pretraining_participants"]  # kept apart
    assert "a_corpus-y:sub-01" in checkpoint["pretraining_participants"]

    cohort = _store(tmp_path / "cohort", ["sub-02", "sub-21"], seed=5)
    check_cohort(card, "card.json", cohort, "Z")  # another dataset's sub-02
    with pytest.raises(LeakageError, match=r"participants \['sub-02'\].*Remove them"):
        check_cohort(card, "card.json", cohort, "X")
    copied = _store(tmp_path / "copied", ["sub-77"])
    windows = np.load(second[0])
    np.save(copied[0], windows[6:])  # sub-09's recording under another label
    with pytest.raises(LeakageError, match=r"sub-77_rest \(as sub-09_rest in a_corpus-y\)"):
        check_cohort(card, "card.json", copied, "Z")
    other = _store(tmp_path / "other", ["sub-30"], channels=("Fz", "Pz", "Oz"))
    with pytest.raises(ValueError, match="channels.*pretrained on"):
        check_cohort(card, "card.json", other, "Z")


def test_corpora_of_another_layout_are_refused(tmp_path):
    first = _store(tmp_path / "results/a_corpus-x/group/eeg", ["sub-01"])
    second = _store(tmp_path / "results/a_corpus-y/group/eeg", ["sub-02"],
                    channels=("Cz", "Pz", "O1"))
    with pytest.raises(ValueError, match="one layout"):
        read_corpus([first, second], ["X", "Y"])


def test_cohort_pretraining_reads_the_rows_of_its_participants(tmp_path):
    cohort = _store(tmp_path / "cohort", ["sub-01", "sub-02", "sub-03"])
    folds = pd.DataFrame({"participant_id": ["sub-01", "sub-02", "sub-03"], "fold": [0, 1, 1]})
    everyone = pretraining_windows("all", cohort, [], None, ["C"])
    fold1 = pretraining_windows("fold1", cohort, [], folds, ["C"])
    assert len(everyone.windows) == 18 and "transductive" in everyone.description
    assert fold1.participants == [["C", "sub-01"]] and len(fold1.windows) == 6
    np.testing.assert_array_equal(fold1.windows, np.load(cohort[0])[:6])
    assert list(fold1.hashes) == ["sub-01_rest"]


def test_recording_hashes_follow_content_not_labels():
    windows = np.arange(2 * 4 * 3 * 5, dtype="f4").reshape(8, 3, 5)
    table = pd.DataFrame({"participant_id": ["a"] * 4 + ["b"] * 4, "run": [1, 2] * 4})
    hashes = recording_hashes(windows, table)
    assert set(hashes) == {"a_1", "a_2", "b_1", "b_2"} and len(set(hashes.values())) == 4
    renamed = recording_hashes(windows[[0, 2]], pd.DataFrame({"participant_id": ["z", "z"],
                                                              "run": [1, 1]}))
    assert renamed["z_1"] == hashes["a_1"]


def test_fine_tuning_scores_only_test_rows_and_learns_the_label(tmp_path):
    """A brainrep encoder and a linear head fine-tuned per split: the rows outside a split's
    test set get no probability; a label carried by the windows' amplitude is learnt."""
    rng = np.random.default_rng(0)
    n, per = 10, 8
    y = np.tile([0, 1], n * per // 2)
    windows = rng.standard_normal((n * per, 3, 64)).astype("f4") * (1 + 2 * y[:, None, None])
    groups = np.repeat([f"sub-{i}" for i in range(n)], per)
    table = pd.DataFrame({"participant_id": groups, "window": np.tile(np.arange(per), n)})
    pretrain(windows, table, tmp_path / "model.pt", settings=SETTINGS)
    half = np.isin(groups, groups[: n * per // 2])
    splits = [(np.flatnonzero(~half), np.flatnonzero(half))]
    probabilities = finetune_probabilities(
        lambda _: load_encoder(tmp_path / "model.pt", "ssl")[0], windows, y, groups, splits,
        settings=FinetuneSettings(epochs=15, learning_rate=3e-3, device="cpu"))
    assert np.isnan(probabilities[~half]).all()
    np.testing.assert_allclose(probabilities[half].sum(axis=1), 1.0, rtol=1e-5)
    assert ((probabilities[half, 1] > 0.5) == y[half]).mean() > 0.8


def test_an_encoder_pretrained_per_fold_is_fine_tuned_in_its_own_fold_only(tmp_path,
                                                                           monkeypatch):
    """The probe row ``ssl_finetuned`` of encoders pretrained per outer fold: split k starts
    from checkpoint fold<k> (standardised as it was pretrained), tests fold k's participants,
    and learns a label carried by amplitude; checkpoints that do not match the folds are
    refused."""
    rng = np.random.default_rng(1)
    n, per = 12, 8
    labels = np.tile(["rest", "task"], n * per // 2)
    windows = (rng.standard_normal((n * per, 3, 64)) * (1 + 2 * (labels == "task"))[:, None,
                                                                                    None])
    table = pd.DataFrame({"participant_id": np.repeat([f"sub-{i:02d}" for i in range(n)],
                                                      per), "label": labels,
                          "window": np.tile(np.arange(per), n)})
    folds = pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(n)],
                          "fold": np.arange(n) % 2})
    checkpoints = {}
    for k in (0, 1):
        train_rows = ~table["participant_id"].isin(folds.loc[folds.fold == k,
                                                             "participant_id"])
        checkpoints[f"fold{k}"] = tmp_path / f"fold{k}.pt"
        pretrain(windows[train_rows].astype("f4"), table[train_rows].reset_index(drop=True),
                 checkpoints[f"fold{k}"], settings=SETTINGS)
    import brainrep.ssl.embed

    loaded = []
    original = brainrep.ssl.embed.load_encoder

    def recording(checkpoint, which, name="encoder"):
        loaded.append((Path(checkpoint).name, which))
        return original(checkpoint, which, name)

    monkeypatch.setattr(brainrep.ssl.embed, "load_encoder", recording)
    settings = FinetuneSettings(epochs=15, learning_rate=3e-3, device="cpu")
    row = encoder_finetuned(checkpoints, windows, table, "ssl", "eeg", label="label",
                            folds=folds, settings=settings)
    assert loaded == [("fold0.pt", "ssl"), ("fold1.pt", "ssl")]
    assert row[["encoder", "n_folds", "n_participants", "pretraining"]].values.tolist() == [
        ["ssl_finetuned", 2, 12, "train_folds"]]
    assert row["mean"].iloc[0] > 0.8
    scratch = encoder_finetuned(checkpoints, windows, table, "random", "eeg", label="label",
                                folds=folds, settings=replace(settings, epochs=1))
    assert scratch[["encoder", "pretraining"]].values.tolist() == [["random_finetuned", "none"]]
    with pytest.raises(ValueError, match="outer folds are"):
        encoder_finetuned(checkpoints, windows, table, "ssl", "eeg", label="label",
                          folds=folds.assign(fold=np.arange(n) % 3), settings=settings)


def test_early_stopping_holds_out_participants_of_every_class_or_none():
    """Ten participants per diagnosis: a fifth of them held out, both diagnoses on both
    sides, never a participant on both; with four per diagnosis (a small labelled fraction)
    nobody is held out and fine-tuning runs every epoch."""
    groups = np.repeat([f"sub-{i:02d}" for i in range(20)], 3)
    y = np.repeat(np.arange(20) % 2, 3)
    fit, validation = validation_split(y, groups, 0)
    assert set(y[validation]) == set(y[fit]) == {0, 1}
    assert not set(groups[fit]) & set(groups[validation])
    assert len(set(groups[validation])) == 4
    few = np.isin(groups, groups[:24])  # sub-00 to sub-07
    fit, validation = validation_split(y[few], groups[few], 0)
    assert validation is None and len(fit) == few.sum()


def test_gradients_of_several_batches_make_one_step(tmp_path, monkeypatch):
    steps = []
    original = torch.optim.AdamW.step

    def counting(self, *args, **kwargs):
        steps.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counting)
    rng = np.random.default_rng(0)
    windows = rng.standard_normal((80, 3, 64)).astype("f4")
    table = pd.DataFrame({"participant_id": np.repeat([f"s{i}" for i in range(10)], 8),
                          "window": np.tile(np.arange(8), 10)})
    for accumulate in (1, 3):
        steps.clear()
        settings = SSLSettings(**SETTINGS.to_dict() | {"epochs": 1, "accumulate_batches":
                                                       accumulate})
        pretrain(windows, table, tmp_path / f"model{accumulate}.pt", settings=settings)
        n_batches = len(train._batches(64, 8, torch.Generator()))  # 2 of 10 held out
        assert len(steps) == -(-n_batches // accumulate)


def test_the_plan_pretrains_on_a_corpus_prepared_like_the_cohort(tmp_path):
    config = validate_config({"demo": {"enabled": True},
                              "ssl": {"corpus": [{"name": "sim",
                                                  "simulated": {"n_subjects": 12}}]}}, SCHEMA)
    plan = build_plan(config, "results/demo")
    assert plan.pretrain == ["corpus"] and not plan.train_folds
    assert plan.corpus == {"sim": ("results/demo_corpus-sim", ["eeg", "fmri"],
                                   "brainrep demo (seed 7)")}
    assert "ssl_eeg" in plan.subtype_sets  # the corpus encoder never saw the cohort
    derived = corpus_config(config, config["ssl"]["corpus"][0])
    assert derived["name"] == "demo_corpus-sim" and derived["eeg"] == config["eeg"]
    assert derived["demo"] == {"enabled": True, "effect_size": 1.0, "n_subjects": 12,
                               "first_subject": 101, "seed": 7}
    assert not derived["ssl"]["enabled"] and derived["downstream"]["targets"] == []
    corpus = build_plan(validate_config(derived, SCHEMA), "results/demo_corpus-sim")
    assert [r.subject for r in corpus.inputs.eeg][:2] == ["101", "102"]


def test_bad_corpus_entries_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"ssl.corpus\[0\]' \(x\): name its data"):
        validate_config({"demo": {"enabled": True}, "ssl": {"corpus": [{"name": "x"}]}}, SCHEMA)
    with pytest.raises(ConfigError, match=r"ssl.corpus\[0\].bids_root'.*not a BIDS dataset"):
        validate_config({"demo": {"enabled": True},
                         "ssl": {"corpus": [{"name": "x", "bids_root": str(tmp_path)}]}}, SCHEMA)


def test_the_cohorts_own_dataset_is_no_corpus():
    from brainrep.bids import BIDSError

    root = shared_dataset("abide-cc200")
    config = validate_config({"demo": {"enabled": False}, "bids": {"root": str(root)},
                              "eeg": {"enabled": False},
                              "fmri": {"timeseries": str(root), "atlas": {"name": "CC200"}},
                              "ssl": {"corpus": [{"name": "same", "timeseries": str(root)}]},
                              "downstream": {"targets": []}}, SCHEMA)
    with pytest.raises(BIDSError, match="cohort's own dataset"):
        build_plan(config, "results/x")


def _target_cohort(n: int = 20, per: int = 4, seed: int = 2):
    """Windows whose amplitude carries each participant's diagnosis, their table, the
    participants' labels (the last one unlabelled) and four outer folds of both diagnoses
    (13 or 14 labelled training participants, 6 or more of each: early stopping holds some
    out)."""
    rng = np.random.default_rng(seed)
    ids = [f"sub-{i:02d}" for i in range(n)]
    diagnosis = pd.Series(np.tile(["control", "patient"], n // 2), index=ids,
                          name="diagnosis").astype(object)
    diagnosis.iloc[-1] = np.nan
    patient = np.repeat((diagnosis == "patient").to_numpy(), per)
    windows = (rng.standard_normal((n * per, 3, 64)) * (1 + patient[:, None, None])).astype("f4")
    table = pd.DataFrame({"participant_id": np.repeat(ids, per),
                          "window": np.tile(np.arange(per), n)})
    folds = pd.DataFrame({"participant_id": ids, "fold": np.arange(n) // 2 % 4})  # both kinds
    return windows, table, diagnosis, folds


def test_an_encoder_fine_tuned_with_a_target_embeds_everyone_without_training_on_its_fold(
        tmp_path, monkeypatch):
    """The feature table ``ssl_eeg_finetuned`` of a prediction target: fold k's encoder
    (checkpoint fold<k> when pretrained per fold) is fine-tuned on the labelled participants
    outside fold k, then embeds every participant (the unlabelled one too). Changing one
    fold's participants (their windows and labels) leaves that fold's encoder as it was, so
    everyone else's embedding from it is unchanged, and changes the other folds' encoders,
    which train on them. A continuous target is fitted too."""
    import brainrep.ssl.finetune as finetune

    windows, table, diagnosis, folds = _target_cohort()
    checkpoints = {}
    for k in range(4):
        training = ~table["participant_id"].isin(folds.loc[folds.fold == k, "participant_id"])
        checkpoints[f"fold{k}"] = tmp_path / f"fold{k}.pt"
        pretrain(windows[training], table[training].reset_index(drop=True),
                 checkpoints[f"fold{k}"], settings=replace(SETTINGS, seed=k))
    settings = FinetuneSettings(epochs=3, device="cpu")
    fitted = []
    original_fit = finetune._fit
    monkeypatch.setattr(finetune, "_fit", lambda encoder, head, X, y, groups, *args:
                        fitted.append((set(groups), y.dtype, head.out_features))
                        or original_fit(encoder, head, X, y, groups, *args))

    def embed(windows, labels):
        load = encoder_loader(checkpoints, "ssl", "eeg", folds, 4)
        return finetuned_embeddings(load, windows, table, labels, folds, settings=settings,
                                    encoder="ssl", pretraining="train_folds")

    features = embed(windows, diagnosis)
    labelled = set(diagnosis.dropna().index)
    assert [groups for groups, _, _ in fitted] == [
        labelled - set(folds.loc[folds.fold == k, "participant_id"]) for k in range(4)]
    assert all(dtype == np.int64 and outputs == 2 for _, dtype, outputs in fitted)
    assert len(features) == 20 * 4 and features.notna().all().all()
    assert sorted(features["encoder_fold"].unique()) == [0, 1, 2, 3]
    assert set(features["encoder"]) == {"ssl_finetuned"}
    assert features.filter(like="emb_").shape[1] == SETTINGS.embedding_dim
    assert (features.groupby("encoder_fold")["participant_id"].nunique() == 20).all()
    # each fold's encoder is its own checkpoint's: fold 0's rows differ from those of the
    # same fine-tuning started from fold 1's checkpoint
    swapped = finetuned_embeddings(
        encoder_loader(checkpoints | {"fold0": checkpoints["fold1"]}, "ssl", "eeg", folds, 4),
        windows, table, diagnosis, folds, settings=settings, encoder="ssl",
        pretraining="train_folds")
    assert not np.allclose(swapped[swapped.encoder_fold == 0].filter(like="emb_"),
                           features[features.encoder_fold == 0].filter(like="emb_"))
    for k in (0, 3):
        test = folds.loc[folds.fold == k, "participant_id"]
        in_test = table["participant_id"].isin(test).to_numpy()
        changed_windows = windows.copy()
        changed_windows[in_test] = np.random.default_rng(9).standard_normal(
            changed_windows[in_test].shape)
        flipped = diagnosis.where(~diagnosis.index.isin(test), "control")
        changed = embed(changed_windows, flipped)

        def outside(frame, fold, test=test):
            kept = frame[(frame.encoder_fold == fold) & ~frame.participant_id.isin(test)]
            return kept.filter(like="emb_").to_numpy()

        np.testing.assert_array_equal(outside(changed, k), outside(features, k))
        other = 1 if k == 0 else 0
        assert not np.allclose(outside(changed, other), outside(features, other))
    fitted.clear()
    score = pd.Series(np.linspace(0, 30, 20), index=diagnosis.index, name="score")
    continuous = embed(windows, score)
    assert len(continuous) == 80 and continuous.filter(like="emb_").notna().all().all()
    assert all(dtype == np.float32 and outputs == 1 for _, dtype, outputs in fitted)
