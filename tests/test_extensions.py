"""Extension points: the schema's choices are the registries' names, and a new atlas source,
model or SSL objective is added from a user's module without editing the package (the worked
examples of CONTRIBUTING.md)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import SCHEMA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from brainrep import atlases, predict, subtype
from brainrep.ssl import pretrain
from brainrep.ssl.augment import NAMES as AUGMENTATIONS
from brainrep.ssl.embed import load_encoder
from brainrep.ssl.encoders import ENCODERS
from brainrep.ssl.foundation import FOUNDATION_MODELS
from brainrep.ssl.objectives import OBJECTIVES, Objective, register_objective
from brainrep.ssl.settings import SSLSettings


def _enum(*path):
    node = yaml.safe_load(SCHEMA.read_text())
    for key in path:
        node = node[key]
    return set(node["enum"])


def test_the_schema_offers_exactly_what_the_registries_hold():
    assert _enum("properties", "downstream", "properties", "model") == set(predict.MODELS)
    assert _enum("$defs", "ssl_modality", "properties", "objective") == set(OBJECTIVES)
    assert _enum("properties", "fmri", "properties", "atlas", "properties",
                 "source") == set(atlases.ATLAS_SOURCES)
    assert _enum("$defs", "ssl_modality", "properties", "augmentations",
                 "items") == set(AUGMENTATIONS)
    assert _enum("properties", "downstream", "properties", "subtyping", "properties",
                 "method") == set(subtype.CLUSTERING)
    assert _enum("properties", "ssl", "properties", "foundation", "properties",
                 "model") - {None} == set(FOUNDATION_MODELS)
    pattern = yaml.safe_load(SCHEMA.read_text())["$defs"]["ssl_modality"]["properties"][
        "encoder"]["pattern"]  # ^(conv|...|braindecode:<class>)$
    assert set(pattern[2:-2].split("|")[:-1]) == set(ENCODERS)


@pytest.fixture
def registered():
    """Names a test adds to a registry, removed afterwards."""
    added = []
    yield added
    for registry, name in added:
        registry.pop(name, None)


def test_add_a_model(registered):
    @predict.register_model("shrinkage_lda")
    def shrinkage_lda(task, inner_folds, seed):
        if task == "continuous":
            return make_pipeline(StandardScaler(), Ridge())
        return make_pipeline(StandardScaler(),
                             LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))
    registered.append((predict.MODELS, "shrinkage_lda"))

    rng = np.random.default_rng(0)
    ids = [f"sub-{i:02d}" for i in range(40)]
    label = np.repeat(["control", "patient"], 20)
    participants = pd.DataFrame({"participant_id": ids, "diagnosis": label,
                                 "site": np.tile(["A", "B"], 20)})
    features = pd.DataFrame(rng.normal(size=(40, 5)) + 1.5 * (label == "patient")[:, None],
                            columns=[f"f{i}" for i in range(5)]).assign(participant_id=ids)
    settings = predict.PredictionSettings(model="shrinkage_lda", outer_folds=4,
                                          n_permutations=9, n_bootstrap=20)
    metrics, _, _ = predict.evaluate({"mine": features}, participants, "diagnosis",
                                     settings=settings)
    auroc = metrics[(metrics.metric == "auroc") & (metrics.cv_scheme == "stratified_group_kfold")]
    assert (auroc["model"] == "shrinkage_lda").all() and auroc["estimate"].iloc[0] > 0.9


@register_objective("log_variance")
class LogVariance(Objective):
    """Predict each channel's log-variance in the window from its embedding."""

    def __init__(self, encoder, n_channels, settings, augmentations):
        super().__init__(encoder)
        self.head = nn.Linear(settings.embedding_dim, n_channels)

    def loss(self, pool, batch, generator):
        x = batch.x
        return nn.functional.mse_loss(self.head(self.encoder(x)),
                                      x.var(dim=-1).clamp(min=1e-6).log())


OBJECTIVES.pop("log_variance")  # registered again by the test, removed after it


def test_add_an_ssl_objective(registered, tmp_path):
    register_objective("log_variance")(LogVariance)
    registered.append((OBJECTIVES, "log_variance"))
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.5, 3, (48, 3, 1)).astype(np.float32)
    windows = rng.standard_normal((48, 3, 64)).astype(np.float32) * scale
    table = pd.DataFrame({"participant_id": np.repeat([f"sub-{i}" for i in range(8)], 6),
                          "window": np.tile(np.arange(6), 8)})
    settings = SSLSettings(objective="log_variance", embedding_dim=8, width=8, depth=1,
                           patch_size=8, epochs=8, batch_size=16, learning_rate=1e-2,
                           device="cpu", augmentations=[])
    history = pretrain(windows, table, tmp_path / "model.pt", settings=settings)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    encoder, _ = load_encoder(tmp_path / "model.pt", "ssl")
    assert encoder(torch.from_numpy(windows[:2])).shape == (2, 8)


def test_add_an_atlas_source(registered):
    def three_spheres(spec, image, labels):
        return atlases.Atlas(spec["name"], pd.Series(["left", "mid", "right"], index=[1, 2, 3]),
                             coordinates=np.array([[-40.0, 0, 0], [0, 0, 0], [40, 0, 0]]),
                             radius_mm=spec["sphere_radius_mm"])
    atlases.register_atlas_source("three_spheres", lambda spec, demo: (None, None),
                                  three_spheres)
    registered.append((atlases.ATLAS_SOURCES, "three_spheres"))
    spec = {"source": "three_spheres", "name": "mine", "sphere_radius_mm": 6.0}
    files = atlases.atlas_files(spec, None)
    atlas = atlases.load_atlas(spec, *files)
    assert files == (None, None) and atlas.coordinates.shape == (3, 3)
    assert list(atlas.labels) == ["left", "mid", "right"] and atlas.radius_mm == 6.0
    with pytest.raises(atlases.AtlasError, match="register_atlas_source"):
        atlases.atlas_files({"source": "nowhere"}, None)


def test_add_a_clustering_method(registered):
    """A clustering method is one factory ``(k, seed) -> estimator with fit_predict``; the
    stability, replication and null tests of find_subtypes then run with it."""
    from sklearn.cluster import SpectralClustering

    @subtype.register_clustering("spectral")
    def spectral(k, seed):
        return SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=8,
                                  random_state=seed)
    registered.append((subtype.CLUSTERING, "spectral"))

    rng = np.random.default_rng(3)
    truth = np.repeat([0, 1], 20)
    X = rng.standard_normal((40, 5)) + 6 * truth[:, None]
    index = pd.Index([f"sub-{i:02d}" for i in range(40)], name="participant_id")
    summary, _, labels = subtype.find_subtypes(
        pd.DataFrame(X, index=index), pd.DataFrame({"site": np.tile(["A", "B"], 20)},
                                                   index=index),
        settings=subtype.SubtypingSettings(method="spectral", regress_out=(), k_max=3,
                                           n_components=3, n_bootstrap=10, n_null=19),
        seed=0)
    assert summary["k"] == 2 and summary["null_p_value"] < 0.1
    assert abs(np.corrcoef(labels["subtype"], truth)[0, 1]) > 0.95


def test_add_an_eeg_reader(registered, tmp_path):
    """A format MNE-BIDS does not read is one registered function: the BIDS index finds its
    files and the reader's recording gets the channel types, bad channels and line frequency
    of its sidecars."""
    import json

    import mne

    from brainrep import eeg
    from brainrep.bids import find_eeg

    @eeg.register_reader(".npz")
    def read_npz(path):
        stored = np.load(path)
        info = mne.create_info(list(stored["ch_names"]), float(stored["sfreq"]), "eeg")
        return mne.io.RawArray(stored["data"], info, verbose="error")

    registered.append((eeg.READERS, ".npz"))
    (tmp_path / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.9"}')
    folder = tmp_path / "sub-01" / "eeg"
    folder.mkdir(parents=True)
    names = ["Fz", "Cz", "Pz", "VEOG"]
    np.savez(folder / "sub-01_task-rest_eeg.npz", ch_names=names, sfreq=250.0,
             data=np.random.default_rng(0).standard_normal((4, 2500)) * 1e-5)
    pd.DataFrame({"name": names, "type": ["EEG", "EEG", "EEG", "VEOG"], "units": "V",
                  "status": ["good", "bad", "good", "good"]}).to_csv(
        folder / "sub-01_task-rest_channels.tsv", sep="\t", index=False)
    (folder / "sub-01_task-rest_eeg.json").write_text(json.dumps(
        {"SamplingFrequency": 250, "PowerLineFrequency": 60, "EEGChannelCount": 3,
         "RecordingDuration": 10.0}))
    found = find_eeg(tmp_path, "rest", [])
    assert [Path(r.path).name for r in found] == ["sub-01_task-rest_eeg.npz"]
    raw = eeg.read_bids_eeg(tmp_path, found[0].path, montage="standard_1020")
    assert raw.info["bads"] == ["Cz"] and raw.get_channel_types() == ["eeg"] * 3 + ["eog"]
    assert raw.info["line_freq"] == 60.0 and raw.n_times == 2500
    assert raw.get_montage() is not None  # the standard positions, as for any format
