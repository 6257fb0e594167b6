from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainrep import fmri, simulate
from brainrep.atlases import Atlas, read_labels
from brainrep.bids import confounds_path
from brainrep.exclusions import RecordingExcluded, exclusion

SPACE = "MNI152NLin2009cAsym"


def _args(root, subject="001"):
    bold = str(root / simulate.bold_relpath(subject))
    atlas = Atlas("demo", read_labels(root / simulate.ATLAS_LABELS_RELPATH),
                  image=str(root / simulate.ATLAS_RELPATH))
    return bold, confounds_path(bold, SPACE), atlas


def test_parcellate_and_connectivity(small_demo, tmp_path):
    series, qc = fmri.parcellate(*_args(small_demo), "simple", 0.01, 0.1)
    assert series.shape == (120, 16) and list(series.columns[:2]) == ["Net1_P1", "Net1_P2"]
    assert qc["empty_parcels"] == [] and 0 < qc["mean_fd_mm"] < qc["max_fd_mm"]
    assert 20 < qc["tsnr"] < 1000  # simulated baseline 1000 a.u., noise of a few percent
    assert "trans_x" in qc["confounds"] and "white_matter" in qc["confounds"]
    matrix = fmri.connectivity(series, "correlation").to_numpy()
    assert np.allclose(np.diag(matrix), 1) and np.allclose(matrix, matrix.T)
    network = np.arange(16) // 4
    within = matrix[(network[:, None] == network[None]) & ~np.eye(16, dtype=bool)].mean()
    between = matrix[network[:, None] != network[None]].mean()
    assert within > between + 0.2  # the simulated network structure survives denoising


def test_denoising_removes_motion(small_demo):
    bold, confounds, atlas = _args(small_demo, "004")
    motion = pd.read_csv(confounds, sep="\t")[["trans_x", "trans_y", "trans_z"]].to_numpy()
    series, _ = fmri.parcellate(bold, confounds, atlas, "simple", 0.01, None)
    design = np.c_[np.ones(len(motion)), motion]
    residual = series.to_numpy() - design @ np.linalg.lstsq(design, series.to_numpy(),
                                                            rcond=None)[0]
    explained = 1 - (residual ** 2).sum() / ((series - series.mean()) ** 2).to_numpy().sum()
    assert explained < 0.05


def test_wrong_dimensions_name_the_file(small_demo, tmp_path):
    bold, confounds, atlas = _args(small_demo)
    flat = tmp_path / "sub-001_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    img = nib.load(bold)
    nib.Nifti1Image(np.asarray(img.dataobj)[..., 0], img.affine).to_filename(flat)
    with pytest.raises(ValueError, match=flat.name):
        fmri.parcellate(str(flat), confounds, atlas, "simple", 0.01, 0.1)


def test_missing_confounds_name_the_file(small_demo, tmp_path):
    bold, confounds, atlas = _args(small_demo)
    alone = tmp_path / "sub-001_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    alone.write_bytes(open(bold, "rb").read())
    with pytest.raises(ValueError, match="confounds"):
        fmri.parcellate(str(alone), str(tmp_path / "none.tsv"), atlas, "simple", 0.01, 0.1)


def test_atlas_label_missing_from_table(small_demo, tmp_path):
    bold, confounds, atlas = _args(small_demo)
    short = Atlas("demo", atlas.labels.iloc[:-1], image=atlas.image)
    with pytest.raises(ValueError, match=r"atlas-demo_dseg.nii.gz: atlas values \[16\]"):
        fmri.parcellate(bold, confounds, short, "simple", 0.01, 0.1)


def test_existing_timeseries_enter_at_connectivity(tmp_path):
    from brainrep.bids import find_timeseries

    func = tmp_path / "sub-01" / "func"
    func.mkdir(parents=True)
    rng = np.random.default_rng(0)
    series = pd.DataFrame(rng.standard_normal((50, 4)), columns=["A", "B", "C", "D"])
    series["D"] = 0.0  # a parcel without signal
    path = func / "sub-01_task-rest_seg-CC200_stat-mean_timeseries.tsv.gz"
    series.to_csv(path, sep="\t", index=False)
    (func / "sub-01_task-rest_seg-CC200_stat-mean_timeseries.json").write_text("{}")
    found = find_timeseries(tmp_path, "rest", "CC200", [])
    assert [(r.subject, r.entities) for r in found] == [("01", "task-rest")]
    qc = fmri.connectivity_from_timeseries(str(path), str(tmp_path / "relmat.tsv"),
                                           "correlation")
    assert qc["empty_parcels"] == ["D"]
    matrix = pd.read_csv(tmp_path / "relmat.tsv", sep="\t", index_col=0)
    assert list(matrix.columns) == ["A", "B", "C"]
    assert np.allclose(matrix.to_numpy(), np.corrcoef(series[["A", "B", "C"]].T), atol=1e-6)


def test_a_constant_nonzero_parcel_is_empty_however_it_rounds(tmp_path):
    """A parcel stuck at 0.1 has a pandas standard deviation of ~1e-17, not 0; it is still a
    parcel without signal, left out of the matrix and of the covariances."""
    rng = np.random.default_rng(1)
    series = pd.DataFrame(rng.standard_normal((37, 3)), columns=["A", "B", "C"]).assign(E=0.1)
    assert series["E"].std() != 0  # why an exact test is needed
    path = tmp_path / "sub-01_task-rest_seg-X_stat-mean_timeseries.tsv"
    series.to_csv(path, sep="\t", index=False)
    qc = fmri.connectivity_from_timeseries(str(path), str(tmp_path / "r.tsv"), "correlation")
    assert qc["empty_parcels"] == ["E"] and fmri.relmat_labels(tmp_path / "r.tsv") == list("ABC")
    covariances = fmri.covariance_table([str(path)], ["sub-01"], ["A", "E"])
    assert covariances[["cov__A__E", "cov__E__E"]].to_numpy().tolist() == [[0.0, 1.0]]


def test_too_short_timeseries_names_the_file(tmp_path):
    path = tmp_path / "sub-01_task-rest_seg-X_stat-mean_timeseries.tsv"
    pd.DataFrame(np.ones((5, 3))).to_csv(path, sep="\t", index=False)
    with pytest.raises(RecordingExcluded, match=path.name) as caught:
        fmri.connectivity_from_timeseries(str(path), str(tmp_path / "r.tsv"), "correlation")
    assert caught.value.reason == "too_short"


def test_connectivity_figure_aligns_runs_with_missing_parcels(tmp_path):
    from brainrep.fmri import connectivity_figure

    rng = np.random.default_rng(0)
    paths = []
    for i, columns in enumerate((["A", "B", "C"], ["A", "C"])):
        series = pd.DataFrame(rng.standard_normal((30, len(columns))), columns=columns)
        paths.append(tmp_path / f"r{i}.tsv")
        fmri.connectivity(series, "correlation").to_csv(paths[-1], sep="\t")
    coverage = fmri.parcel_coverage([str(p) for p in paths], 0.1)
    assert coverage.set_index("parcel")["n_runs_missing"].to_dict() == {"A": 0, "B": 1, "C": 0}
    kept = coverage.loc[coverage["kept"], "parcel"].tolist()
    assert kept == ["A", "C"]  # B is missing in half the runs
    edges = fmri.edge_table([str(p) for p in paths], ["sub-1", "sub-2"], kept)
    assert list(edges.columns) == ["participant_id", "A__C"] and edges.notna().all().all()
    tolerant = fmri.parcel_coverage([str(p) for p in paths], 0.5)
    edges = fmri.edge_table([str(p) for p in paths], ["sub-1", "sub-2"],
                            tolerant.loc[tolerant["kept"], "parcel"].tolist())
    assert list(edges.columns) == ["participant_id", "A__B", "A__C", "B__C"]
    assert edges[["A__B", "B__C"]].isna().sum().tolist() == [1, 1]  # imputed in training folds
    mean = fmri.mean_connectivity(edges, ["A", "B", "C"])
    assert np.allclose(np.diag(mean), 1) and np.allclose(mean, mean.T)
    assert np.isclose(mean[0, 1], np.tanh(edges["A__B"].mean()))  # over the run that has B
    connectivity_figure(mean, None, str(tmp_path / "fig.png"))
    assert (tmp_path / "fig.png").stat().st_size > 1000


@pytest.fixture
def run_with_real_confounds(small_demo, tmp_path):
    """A 30-volume demo run beside the real fMRIPrep 21 confounds table shipped by nilearn
    (30 volumes, 3 non-steady-state, mean FD 1.9 mm)."""
    import shutil

    import nilearn.interfaces.fmriprep as nilearn_fmriprep

    data = Path(nilearn_fmriprep.__file__).parent / "data"
    img = nib.load(small_demo / simulate.bold_relpath("003"))
    bold = tmp_path / f"sub-003_task-rest_space-{SPACE}_desc-preproc_bold.nii.gz"
    nib.Nifti1Image(np.asarray(img.dataobj)[..., :30], img.affine, img.header).to_filename(bold)
    for ext in ("tsv", "json"):
        shutil.copy(data / f"test-v21_desc-confounds_timeseries.{ext}",
                    tmp_path / f"sub-003_task-rest_desc-confounds_timeseries.{ext}")
    return str(bold), confounds_path(bold, SPACE), _args(small_demo)[2]


def test_real_fmriprep_confounds_drive_denoising(run_with_real_confounds):
    bold, confounds, atlas = run_with_real_confounds
    table = pd.read_csv(confounds, sep="\t")
    simple, qc = fmri.parcellate(bold, confounds, atlas, "simple", 0.01, None)
    assert qc["n_kept"] == 27  # the 3 non-steady-state volumes flagged by fMRIPrep are dropped
    assert np.isclose(qc["mean_fd_mm"], table["framewise_displacement"].mean())
    assert {"trans_x", "rot_z_derivative1_power2", "csf", "white_matter"} <= set(qc["confounds"])
    compcor, qc_compcor = fmri.parcellate(bold, confounds, atlas, "compcor", 0.01, None)
    assert any(c.startswith("a_comp_cor") for c in qc_compcor["confounds"])
    assert not np.allclose(simple.to_numpy(), compcor.to_numpy())
    # FD > 0.2 mm almost always
    with pytest.raises(RecordingExcluded, match="keeps 0 of 30 volumes"):
        fmri.parcellate(bold, confounds, atlas, "scrubbing", 0.01, None)


def test_runs_beyond_qc_thresholds_are_flagged_with_reasons():
    qc = pd.DataFrame({"recording": ["sub-1", "sub-2", "sub-3"], "mean_fd_mm": [0.1, 0.9, 0.2],
                       "fraction_censored": [0.0, 0.1, 0.6], "tsnr": [80.0, 90.0, 30.0]})
    flagged = fmri.flag_exclusions(qc, fmri.QcThresholds(min_tsnr=40))
    assert flagged["excluded"].tolist() == [False, True, True]
    assert flagged["exclusion_reason"].tolist() == [
        "n/a", "mean_fd_mm 0.9 > 0.5", "fraction_censored 0.6 > 0.5; tsnr 30 < 40"]
    timeseries_only = fmri.flag_exclusions(qc[["recording"]], fmri.QcThresholds())
    assert not timeseries_only["excluded"].any()  # no motion estimate, no exclusion


def test_qc_fc_finds_an_edge_driven_by_motion():
    rng = np.random.default_rng(0)
    fd = pd.Series(rng.uniform(0.05, 0.5, 40), index=[f"sub-{i}" for i in range(40)])
    edges = pd.DataFrame({"participant_id": fd.index, "A__B": rng.standard_normal(40),
                          "A__C": 2 * fd.to_numpy() + 0.05 * rng.standard_normal(40)})
    table = fmri.qc_fc(edges, fd).set_index("edge")
    assert table.loc["A__C", "r"] > 0.9 and table.loc["A__C", "p_value"] < 1e-6
    assert abs(table.loc["A__B", "r"]) < 0.4


def test_the_edge_table_written_in_chunks_is_the_whole_tables(tmp_path):
    """write_edge_table holds a few participants' rows at a time (the rest wait on disk in a
    RowStore), yet writes the bytes of the whole table and returns its group mean and
    QC-FC number for number: one to four runs per participant, in any order, a parcel some
    runs lack (NaN edges) in some chunks only, any chunk size."""
    from brainrep.io import write_tsv

    rng = np.random.default_rng(5)
    ids = ["sub-3", "sub-1", "sub-2", "sub-1", "sub-5", "sub-1", "sub-4", "sub-2", "sub-1",
           "sub-6"]
    paths = []
    for i in range(len(ids)):
        columns = list("ABD") if i in (0, 7) else list("ABCD")  # C: sub-3's, a sub-2 run
        series = pd.DataFrame(rng.standard_normal((30, len(columns))), columns=columns)
        paths.append(str(tmp_path / f"r{i}.tsv"))
        fmri.connectivity(series, "correlation").to_csv(paths[-1], sep="\t")
    parcels = list("ABCD")
    whole = fmri.edge_table(paths, ids, parcels)
    assert whole["participant_id"].tolist() == [f"sub-{i}" for i in range(1, 7)]
    assert whole["A__C"].isna().tolist() == [False, False, True, False, False, False]
    z = pd.DataFrame(
        [np.arctanh(np.clip(pd.read_csv(path, sep="\t", index_col=0).reindex(
            index=parcels, columns=parcels).to_numpy()[np.triu_indices(4, 1)], -0.999999,
            0.999999)) for path in paths], columns=whole.columns[1:]).groupby(ids)
    np.testing.assert_allclose(whole.iloc[:, 1:].to_numpy(),  # NaN-skipping means
                               z.agg(lambda column: np.nanmean(column)).to_numpy(),
                               rtol=1e-14)
    write_tsv(whole, tmp_path / "whole.tsv", na_rep="n/a")
    motion = pd.Series(rng.uniform(0.1, 0.4, 6), index=whole["participant_id"])
    expected_qcfc = fmri.qc_fc(whole, motion)
    for per_chunk in (1, 2, 4, 100):
        out = tmp_path / f"chunks{per_chunk}.tsv"
        mean, qcfc = fmri.write_edge_table(paths, ids, parcels, str(out),
                                           participants_per_chunk=per_chunk, motion=motion)
        assert out.read_bytes() == (tmp_path / "whole.tsv").read_bytes()
        np.testing.assert_array_equal(mean, fmri.mean_connectivity(whole, parcels))
        pd.testing.assert_frame_equal(qcfc, expected_qcfc, check_exact=True)
    assert fmri.write_edge_table(paths, ids, parcels, str(out), participants_per_chunk=3)[1] \
        is None  # no motion estimate, no QC-FC
    _, qcfc = fmri.write_edge_table(paths, ids, ["A"], str(out), participants_per_chunk=3,
                                    motion=motion)  # one parcel: no edge
    assert qcfc.empty and list(qcfc.columns) == ["edge", "r", "p_value"]
    with pytest.raises(ValueError, match="at least 1"):
        fmri.write_edge_table(paths, ids, parcels, str(out), participants_per_chunk=0)


def test_a_row_store_reads_back_rows_and_column_blocks():
    from brainrep.storage import RowStore

    values = np.random.default_rng(0).standard_normal((5, 7))
    store = RowStore(7)
    for row in values:
        store.append(row)
    assert len(store) == 5
    np.testing.assert_array_equal(store.read([4, 0, 2]), values[[4, 0, 2]])
    np.testing.assert_array_equal(store.read_columns(2, 6), values[:, 2:6])
    np.testing.assert_array_equal(store.read_columns(5, 10), values[:, 5:])
    store.write(7, values[0])  # a gap: row 6 was never written
    with pytest.raises(ValueError, match="row 9 was never written"):
        store.read([9])
    with pytest.raises(ValueError, match="a row of 7 values"):
        store.append(values[0, :3])
    with pytest.raises(ValueError, match="columns 5:9 of rows of 7"):
        store.read_block([0], 5, 9)
    store.close()


def test_tangent_space_connectivity_separates_coupling_with_fewer_volumes_than_parcels(
        tmp_path):
    """30 parcels, 25 volumes per run: the empirical covariance is singular, the Ledoit-Wolf
    one is SPD. Patients share a source across parcels 0-5 (a network); the tangent
    projection fitted in each training fold finds it. A parcel without signal in one run is
    left out for everyone."""
    from brainrep.predict import PredictionSettings, evaluate, is_spd

    rng = np.random.default_rng(4)
    files, ids, labels = [], [], []
    for i in range(24):
        patient = i % 2 == 1
        series = rng.standard_normal((25, 30))
        if patient:
            series[:, :6] += rng.standard_normal((25, 1))
        if i == 3:
            series[:, 29] = 0.0
        path = tmp_path / f"sub-{i:02d}_timeseries.tsv"
        pd.DataFrame(series, columns=[f"p{j}" for j in range(30)]).to_csv(path, sep="\t",
                                                                          index=False)
        files.append(str(path))
        ids.append(f"sub-{i:02d}")
        labels.append("patient" if patient else "control")
    table = fmri.covariance_table(files, ids, [f"p{j}" for j in range(30)])
    assert is_spd(table) and table.shape == (24, 1 + 30 * 31 // 2)
    for row in (0, 3):  # sub-03 has no signal in p29: unit variance, independent
        matrix = np.zeros((30, 30))
        matrix[np.triu_indices(30)] = table.iloc[row, 1:].to_numpy()
        matrix = matrix + np.triu(matrix, 1).T
        assert np.linalg.eigvalsh(matrix).min() > 0.05
    assert matrix[29, 29] == 1.0 and not matrix[29, :29].any()
    participants = pd.DataFrame({"participant_id": ids, "diagnosis": labels})
    metrics, _, _ = evaluate({"fmri_tangent": table}, participants, "diagnosis",
                             settings=PredictionSettings(site_column=None, outer_folds=4,
                                                n_permutations=0, n_bootstrap=0))
    assert metrics.query("metric == 'auroc'")["mean"].item() > 0.9


def test_a_run_with_too_many_empty_parcels_is_excluded():
    qc = pd.DataFrame({"recording": ["sub-1", "sub-2"], "fraction_empty_parcels": [0.02, 0.3]})
    flagged = fmri.flag_exclusions(qc, fmri.QcThresholds())
    assert flagged["excluded"].tolist() == [False, True]
    assert flagged["exclusion_reason"].iloc[1] == "fraction_empty_parcels 0.3 > 0.1"


def test_edges_with_gaps_survive_the_feature_table_round_trip(tmp_path):
    from brainrep.io import read_features

    edges = pd.DataFrame({"participant_id": ["sub-1", "sub-2"], "A__B": [0.5, np.nan],
                          "A__C": [0.1, 0.2]})
    edges.to_csv(tmp_path / "edges.tsv", sep="\t", index=False, na_rep="n/a")
    back = read_features(tmp_path / "edges.tsv")
    assert list(back.columns) == ["participant_id", "A__B", "A__C"]
    assert back["A__B"].isna().tolist() == [False, True]



def test_a_damaged_run_in_a_batch_is_excluded_alone(tmp_path):
    rng = np.random.default_rng(0)
    runs = {name: tmp_path / f"sub-{name}_task-rest_seg-X_stat-mean_timeseries.tsv"
            for name in ("good", "short", "nan", "empty", "gzip")}
    pd.DataFrame(rng.standard_normal((40, 3)), columns=list("ABC")).to_csv(
        runs["good"], sep="\t", index=False)
    pd.DataFrame(np.ones((5, 3))).to_csv(runs["short"], sep="\t", index=False)
    pd.DataFrame({"A": [np.nan] * 40, "B": rng.standard_normal(40)}).to_csv(
        runs["nan"], sep="\t", index=False)
    runs["empty"].write_bytes(b"")
    runs["gzip"] = runs["gzip"].with_suffix(".tsv.gz")
    runs["gzip"].write_bytes(b"\x1f\x8b\x08\x00truncated")
    relmats = [str(tmp_path / f"{name}_relmat.tsv") for name in runs]
    fmri.connectivity_batch([str(p) for p in runs.values()], relmats, "correlation", "continue")
    status = {name: exclusion(relmat) for name, relmat in zip(runs, relmats, strict=True)}
    assert status["good"] is None
    assert pd.read_csv(relmats[0], sep="\t", index_col=0).shape == (3, 3)
    assert {name: record["reason"] for name, record in status.items() if record} == {
        "short": "too_short", "nan": "non_finite", "empty": "unreadable", "gzip": "unreadable"}
    with pytest.raises(RecordingExcluded, match="empty"):
        fmri.connectivity_batch([str(runs["empty"])], relmats[3:4], "correlation", "abort")


def test_participant_means_match_pandas_groupby_without_copying_sorted_runs():
    """One run per participant: the rows, sorted by participant (no copy when they come
    sorted); several runs: their NaN-skipping mean. Both as pandas' groupby mean gives it."""
    from brainrep.fmri.group import participant_means

    rng = np.random.default_rng(0)
    rows = rng.standard_normal((5, 3))
    rows[1, 2], rows[3, 0] = np.nan, -0.0
    columns = ["a__b", "a__c", "b__c"]
    for ids in (["sub-1", "sub-2", "sub-3", "sub-4", "sub-5"],
                ["sub-4", "sub-2", "sub-5", "sub-1", "sub-3"],
                ["sub-2", "sub-1", "sub-2", "sub-3", "sub-1"]):
        frame = pd.DataFrame(rows, columns=columns)
        frame.insert(0, "participant_id", ids)
        expected = frame.groupby("participant_id", sort=True).mean().reset_index()
        means = participant_means(rows.copy(), ids, columns)
        pd.testing.assert_frame_equal(means, expected, check_exact=True)
        assert np.array_equal(  # and the same zeros: no -0.0 where pandas writes 0.0
            np.signbit(means.drop(columns="participant_id").to_numpy()),
            np.signbit(expected.drop(columns="participant_id").to_numpy()))
    in_order = participant_means(rows, [f"sub-{i}" for i in range(1, 6)], columns)
    assert np.shares_memory(in_order["a__b"].to_numpy(), rows)
    with pytest.raises(ValueError, match="3 participant ids for 5 runs"):
        participant_means(rows, ["sub-1", "sub-2", "sub-3"], columns)


def test_the_window_store_and_the_covariances_read_each_run_once(tmp_path, monkeypatch):
    """stack_crops hands every run's series to CovarianceRows: each file parsed once, every
    crop cut from its run in order (a parcel a run lacks is 0), and each run's Ledoit-Wolf
    covariance of its z-scored series (a parcel it lacks: unit variance, independent)."""
    from nilearn.connectome import ConnectivityMeasure
    from sklearn.covariance import LedoitWolf

    from brainrep.fmri import windows

    rng = np.random.default_rng(3)
    files, recordings, series = [], [], []
    for key, volumes, parcels in (("sub-01_run-1", 30, "ABC"), ("sub-01_run-2", 26, "ABC"),
                                  ("sub-02_run-1", 28, "AC")):
        series.append(pd.DataFrame(rng.standard_normal((volumes, len(parcels))),
                                   columns=list(parcels)))
        files.append(str(tmp_path / f"{key}_timeseries.tsv"))
        series[-1].to_csv(files[-1], sep="\t", index=False)
        recordings.append(key)
    parsed, read_series = [], windows.read_series
    monkeypatch.setattr(windows, "read_series",
                        lambda path: parsed.append(path) or read_series(path))
    covariances = fmri.CovarianceRows(list("ABC"), len(files))
    settings = fmri.GroupSettings(window_volumes=20, window_step=5)
    fmri.stack_crops(files, recordings, list("ABC"), str(tmp_path / "w.npy"),
                     str(tmp_path / "w.tsv"), settings=settings, each_series=covariances.add)
    assert parsed == files
    store, table = np.load(tmp_path / "w.npy"), pd.read_csv(tmp_path / "w.tsv", sep="\t")
    expected = [frame.reindex(columns=list("ABC"), fill_value=0.0).to_numpy().T[:, s:s + 20]
                for frame in series for s in range(0, len(frame) - 19, 5)]
    np.testing.assert_array_equal(store, np.array(expected, dtype=np.float32))
    assert table["recording"].tolist() == [recordings[0]] * 3 + [recordings[1]] * 2 + [
        recordings[2]] * 2 and table["onset_vol"].tolist() == [0, 5, 10, 0, 5, 0, 5]
    rows = covariances.table(["sub-01", "sub-01", "sub-02"]).set_index("participant_id")
    own = ConnectivityMeasure(cov_estimator=LedoitWolf(store_precision=False),
                              kind="covariance", standardize="zscore_sample"
                              ).fit_transform([series[2].to_numpy()])[0]
    assert rows.loc["sub-02", ["cov__A__A", "cov__A__C", "cov__C__C"]].tolist() == \
        own[np.triu_indices(2)].tolist()
    assert rows.loc["sub-02", ["cov__A__B", "cov__B__B", "cov__B__C"]].tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="more runs than the 3"):
        covariances.add(series[0])
    # written to Parquet from disk, a participant per chunk, a participant per row group
    monkeypatch.setattr("brainrep.io.PARQUET_ROWS_PER_GROUP", 1)
    covariances.write_parquet(["sub-01", "sub-01", "sub-02"], str(tmp_path / "c.parquet"),
                              participants_per_chunk=1)
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "c.parquet").num_row_groups == 2
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "c.parquet"),
                                  rows.reset_index(), check_exact=True)
    # the group stage's function for both: the same files, each run's series parsed once
    parsed.clear()
    fmri.write_series_tables(files, recordings, ["sub-01", "sub-01", "sub-02"], list("ABC"),
                             out_array=str(tmp_path / "w2.npy"),
                             out_table=str(tmp_path / "w2.tsv"),
                             out_covariances=str(tmp_path / "c2.parquet"), settings=settings)
    assert parsed == files
    np.testing.assert_array_equal(np.load(tmp_path / "w2.npy"), store)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "w2.tsv", sep="\t"), table)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "c2.parquet"),
                                  rows.reset_index(), check_exact=True)
    # NaN is stored as null, as DataFrame.to_parquet stores it
    from brainrep.io import write_wide_parquet
    from brainrep.storage import RowStore

    with RowStore(2) as store:
        store.append(np.array([np.nan, 2.0]))
        write_wide_parquet(store, ["sub-01"], ["a", "b"], str(tmp_path / "n.parquet"))
        with pytest.raises(ValueError, match="3 column names for 1 rows of 2 values"):
            write_wide_parquet(store, ["sub-01"], ["a", "b", "c"], str(tmp_path / "x.parquet"))
    assert pq.read_table(tmp_path / "n.parquet")["a"].null_count == 1


def test_the_group_tables_are_the_same_bytes_in_one_process_and_in_two(tmp_path):
    """write_group_tables' two halves (series -> window store and covariances; matrices ->
    edge table and QC-FC) in two worker processes write what one process writes."""
    rng = np.random.default_rng(5)
    series, relmats, recordings = [], [], []
    for key in ("sub-01_run-1", "sub-01_run-2", "sub-02_run-1", "sub-03_run-1"):
        path = tmp_path / f"{key}_timeseries.tsv"
        pd.DataFrame(rng.standard_normal((40, 4)), columns=list("ABCD")).to_csv(
            path, sep="\t", index=False)
        relmat = tmp_path / f"{key}_relmat.tsv"
        fmri.connectivity_from_timeseries(str(path), str(relmat), "correlation")
        series.append(str(path))
        relmats.append(str(relmat))
        recordings.append(key)
    motion = pd.Series([0.1, 0.3, 0.2], index=["sub-01", "sub-02", "sub-03"])
    settings = fmri.GroupSettings(window_volumes=20, window_step=10)
    outputs, returned = {}, {}
    for n_jobs in (1, 2):
        folder = tmp_path / f"jobs{n_jobs}"
        folder.mkdir()
        names = {"out_array": "w.npy", "out_table": "w.tsv", "out_covariances": "c.parquet",
                 "out_edges": "e.tsv"}
        returned[n_jobs] = fmri.write_group_tables(
            series, relmats, recordings, list("ABCD"), settings=settings, motion=motion,
            n_jobs=n_jobs, **{key: str(folder / name) for key, name in names.items()})
        outputs[n_jobs] = {name: (folder / name).read_bytes() for name in names.values()}
    assert outputs[1] == outputs[2]
    assert len(np.load(tmp_path / "jobs1" / "w.npy")) == 4 * 3  # 3 crops of each run
    edges = pd.read_csv(tmp_path / "jobs1" / "e.tsv", sep="\t")
    assert edges["participant_id"].tolist() == ["sub-01", "sub-02", "sub-03"]
    (mean_1, qcfc_1), (mean_2, qcfc_2) = returned[1], returned[2]
    np.testing.assert_array_equal(mean_1, mean_2)
    pd.testing.assert_frame_equal(qcfc_1, qcfc_2, check_exact=True)
    assert len(qcfc_1) == 6  # one row per edge of 4 parcels
