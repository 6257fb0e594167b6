"""Bad inputs and faults: each case asserts its exact outcome (a message naming the file and
the fix, a recording in the exclusion ledger, or a rerun that resumes and matches)."""

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SCHEMA
from test_eeg import eeg_params
from test_fmri import _args
from test_ssl import SETTINGS, _data, interrupt_in_second_epoch

from brainrep import cache, eeg, fmri, simulate
from brainrep.bids import BIDSError, find_eeg
from brainrep.config import validate_config
from brainrep.exclusions import RecordingExcluded, excluding, exclusion, included, ledger
from brainrep.ssl import checkpoints, embed_windows, pretrain, train


class RunsCode:
    """A pickled object whose unpickling would create a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_cannot_run_code(tmp_path):
    evil, marker = tmp_path / "evil.pt", tmp_path / "PWNED"
    with open(evil, "wb") as stream:
        pickle.dump({"state_dict": RunsCode(marker)}, stream)
    windows, table = _data()
    with pytest.raises(checkpoints.CheckpointError,
                       match="evil.pt: not a weights-only checkpoint: it holds pickled Python "
                             "objects"):
        pretrain(windows, table, tmp_path / "m.pt",
                 settings=replace(SETTINGS, init_checkpoint=str(evil)))
    assert not marker.exists()


def test_brainrep_checkpoints_load_as_data_only(tmp_path):
    windows, table = _data()
    pretrain(windows, table, tmp_path / "model.pt", settings=replace(SETTINGS, epochs=1))
    state = torch.load(tmp_path / "model.pt", weights_only=True)  # raises on any object
    assert isinstance(state["encoders"]["encoder"]["mean"], torch.Tensor)
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic save left no temporary file


def test_pinned_weights_with_another_hash_are_refused(tmp_path):
    weights = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), weights)
    windows, table = _data()
    settings = replace(SETTINGS, init_checkpoint=str(weights), init_checkpoint_sha256="0" * 64)
    with pytest.raises(ValueError, match="weights.pt: SHA-256 .* differs from "
                                         "init_checkpoint_sha256"):
        pretrain(windows, table, tmp_path / "m.pt", settings=settings)


def test_a_url_is_never_downloaded_without_an_expected_hash(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("urlopen was called")

    monkeypatch.setattr(cache.urllib.request, "urlopen", no_network)
    item = cache.Item("weights", "ssl-eeg-init", "https://example.org/labram.pt")
    with pytest.raises(cache.CacheError, match="set ssl.eeg.init_checkpoint_sha256"):
        cache.prefetch([item], tmp_path / "cache")


def test_a_damaged_partial_is_discarded_and_training_restarts(tmp_path, caplog):
    windows, table = _data()
    reference = pretrain(windows, table, tmp_path / "reference.pt", settings=SETTINGS)
    partial = tmp_path / "model.pt.partial"
    partial.write_bytes((tmp_path / "reference.pt").read_bytes()[:1000])  # killed mid-save
    history = pretrain(windows, table, tmp_path / "model.pt", settings=SETTINGS)
    assert "discarding damaged partial checkpoint" in caplog.text and str(partial) in caplog.text
    assert np.allclose(history["train_loss"], reference["train_loss"])
    assert not partial.exists()


def test_a_partial_from_other_code_is_not_resumed(tmp_path, monkeypatch):
    windows, table = _data()
    interrupt_in_second_epoch(monkeypatch, windows, table, tmp_path / "model.pt")
    monkeypatch.setattr(train, "code_version", lambda: "another-version")
    messages = []
    monkeypatch.setattr(train.log, "info", lambda msg, *a: messages.append(msg % a))
    pretrain(windows, table, tmp_path / "model.pt", settings=SETTINGS)
    assert any("ignoring" in m for m in messages) and not any("resuming" in m for m in messages)
    trained, _ = embed_windows(tmp_path / "model.pt", windows, table, "ssl")
    assert len(trained) == len(windows)


def _copy(small_demo: Path, tmp_path: Path) -> Path:
    root = tmp_path / "bids"
    shutil.copytree(small_demo, root, ignore=shutil.ignore_patterns("derivatives"))
    return root


def test_a_stray_copy_of_a_participant_is_listed_not_counted(small_demo, tmp_path):
    root = _copy(small_demo, tmp_path)
    shutil.copytree(root / "sub-001", root / "sub-001 copy")
    shutil.copy(root / "sub-002/eeg/sub-002_task-rest_eeg.vhdr",
                root / "sub-001/eeg/sub-002_task-rest_eeg.vhdr")  # misplaced
    ignored = []
    found = find_eeg(root, "rest", [], ignored)
    assert [r.key for r in found].count("sub-001_task-rest") == 1 and len(found) == 12
    reasons = dict(ignored)
    assert set(reasons) == {str(root / "sub-001 copy/eeg/sub-001_task-rest_eeg.vhdr"),
                            str(root / "sub-001/eeg/sub-002_task-rest_eeg.vhdr")}
    assert all("do not match its name" in r for r in reasons.values())
    with pytest.raises(BIDSError, match="misplaced file. Move or delete it, or set bids.invalid"):
        find_eeg(root, "rest", [])


def test_two_files_with_the_same_labels_are_refused(small_demo, tmp_path):
    root = _copy(small_demo, tmp_path)
    (root / "sub-004/eeg/sub-004_task-rest_eeg.edf").write_bytes(b"")
    with pytest.raises(BIDSError, match="sub-004_task-rest.*Keep one file"):
        find_eeg(root, "rest", [], [])


def _run(root: Path, subject: str, out: Path, on_error: str = "continue") -> list[str]:
    outputs = [str(out / f"sub-{subject}_raw.fif"), str(out / f"sub-{subject}_epo.fif"),
               str(out / f"sub-{subject}_psd.png")]
    with excluding(str(root / simulate.eeg_relpath(subject)), outputs, "eeg_preprocess",
                   on_error):
        eeg.run_recording(root, root / simulate.eeg_relpath(subject), *outputs[:2],
                          settings=eeg_params(), out_figure=outputs[2])
    return outputs


def _truncate(path: Path, fraction: float) -> None:
    path.write_bytes(path.read_bytes()[:int(path.stat().st_size * fraction)])


@pytest.mark.parametrize(("damage", "reason", "message"), [
    ("truncated", "truncated", "RecordingDuration"),
    ("zero_bytes", "unreadable", "empty"),
    ("sampling_rate", "sidecar_mismatch", "SamplingFrequency"),
    ("channel_count", "sidecar_mismatch", "EEGChannelCount"),
])
def test_damaged_eeg_is_excluded_and_the_study_goes_on(small_demo, tmp_path, damage, reason,
                                                       message):
    root = _copy(small_demo, tmp_path)
    vhdr = root / simulate.eeg_relpath("003")
    sidecar = vhdr.with_name("sub-003_task-rest_eeg.json")
    if damage == "truncated":
        _truncate(vhdr.with_suffix(".eeg"), 0.4)
    elif damage == "zero_bytes":
        vhdr.write_bytes(b"")
    else:
        content = json.loads(sidecar.read_text())
        key = {"sampling_rate": "SamplingFrequency", "channel_count": "EEGChannelCount"}[damage]
        content[key] = content[key] * 2
        sidecar.write_text(json.dumps(content))
    out = tmp_path / "out"
    out.mkdir()
    damaged = _run(root, "003", out)
    healthy = _run(root, "004", out)
    record = exclusion(damaged[1])
    assert record["reason"] == reason and record["stage"] == "eeg_preprocess"
    assert "sub-003_task-rest_eeg" in record["message"] and message in record["message"]
    assert Path(damaged[1]).stat().st_size == 0 and exclusion(healthy[1]) is None
    table = ledger(["sub-003_task-rest", "sub-004_task-rest"], [damaged[1], healthy[1]], "eeg")
    assert table["status"].tolist() == ["excluded", "included"]
    assert included(["sub-003_task-rest", "sub-004_task-rest"],
                    [damaged[1], healthy[1]]) == (["sub-004_task-rest"], [healthy[1]])
    with pytest.raises(RecordingExcluded, match="sub-003"):
        _run(root, "003", out, on_error="abort")


def test_bold_with_nan_is_excluded_naming_the_file(small_demo, tmp_path):
    bold, confounds, atlas = _args(small_demo)
    image = nib.load(bold)
    data = np.asarray(image.dataobj, dtype=np.float32)
    data[2, 2, 2, 5] = np.nan
    broken = tmp_path / Path(bold).name
    header = image.header.copy()
    header.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(data, image.affine, header), broken)
    shutil.copy(confounds, tmp_path / Path(confounds).name)
    with pytest.raises(RecordingExcluded, match=f"{broken.name}: 1 NaN") as caught:
        fmri.parcellate(str(broken), str(tmp_path / Path(confounds).name), atlas, "simple",
                        0.01, None)
    assert caught.value.reason == "non_finite"


def test_a_confound_column_with_nan_is_named(small_demo, tmp_path):
    bold, confounds, atlas = _args(small_demo)
    shutil.copy(bold, tmp_path / Path(bold).name)
    table = pd.read_csv(confounds, sep="\t")
    table.loc[40, "trans_y"] = np.nan
    table.to_csv(tmp_path / Path(confounds).name, sep="\t", index=False, na_rep="n/a")
    with pytest.raises(RecordingExcluded, match=r"confounds_timeseries.tsv: .*\['trans_y'\]"):
        fmri.parcellate(str(tmp_path / Path(bold).name), str(tmp_path / Path(confounds).name),
                        atlas, "simple", 0.01, None)


def test_a_run_too_short_for_the_filter_is_excluded(small_demo, tmp_path):
    bold, confounds, atlas = _args(small_demo)
    image = nib.load(bold)
    short = tmp_path / Path(bold).name
    nib.save(image.slicer[..., :12], short)
    pd.read_csv(confounds, sep="\t").iloc[:12].to_csv(tmp_path / Path(confounds).name,
                                                      sep="\t", index=False, na_rep="n/a")
    with pytest.raises(RecordingExcluded, match="too few for the temporal filter") as caught:
        fmri.parcellate(str(short), str(tmp_path / Path(confounds).name), atlas, "simple",
                        0.01, 0.1)
    assert caught.value.reason == "too_short"


def test_a_run_shorter_than_a_window_is_excluded_alone(tmp_path):
    rng = np.random.default_rng(0)
    relmats, keys = [], []
    for subject, volumes in (("01", 100), ("02", 20), ("03", 100)):
        series = tmp_path / f"sub-{subject}_task-rest_timeseries.tsv"
        pd.DataFrame(rng.standard_normal((volumes, 4)),
                     columns=list("abcd")).to_csv(series, sep="\t", index=False)
        relmats.append(str(tmp_path / f"sub-{subject}_relmat.tsv"))
        keys.append(f"sub-{subject}_task-rest")
        fmri.connectivity_from_timeseries(str(series), relmats[-1], "correlation")
    qc, runs, kept = fmri.select_runs(relmats, keys, settings=fmri.GroupSettings())
    assert kept == [0, 2] and qc["excluded"].tolist() == [False, True, False]
    row = runs.set_index("recording").loc["sub-02_task-rest"]
    assert (row["status"], row["reason"], row["stage"]) == ("excluded", "too_short",
                                                            "fmri_windows")
    assert "fmri.window_volumes=40" in row["message"]


def test_reordered_config_keys_give_the_same_settings():
    def reverse(value):
        return ({k: reverse(value[k]) for k in reversed(list(value))}
                if isinstance(value, dict) else value)

    config = {"name": "x", "eeg": {"l_freq": 1.0, "h_freq": 40.0, "sfreq": 100.0},
              "ssl": {"eeg": {"epochs": 1, "objective": "masked"}, "seed": 3}}
    reordered = reverse(config)  # before validation fills in the defaults
    assert repr(validate_config(config, SCHEMA)) == repr(validate_config(reordered, SCHEMA))
    bands = {"theta": [4, 8], "alpha": [8, 13]}  # a free-form mapping: the columns' order
    validated = validate_config({"eeg": {"bands": bands}}, SCHEMA)
    assert list(validated["eeg"]["bands"]) == ["theta", "alpha"]


def test_the_study_ledger_gives_every_recording_and_participant_a_status():
    from brainrep.exclusions import study_ledger

    eeg = pd.DataFrame({"participant_id": ["sub-01", "sub-02", "sub-02"],
                        "recording": ["sub-01_task-rest", "sub-02_task-rest", "sub-02_task-mat"],
                        "datatype": "eeg", "status": ["excluded", "included", "excluded"],
                        "stage": ["eeg_preprocess", "", "eeg_preprocess"],
                        "reason": ["truncated", "", "unreadable"], "message": ["a", "", "b"]})
    participants = pd.DataFrame({"participant_id": ["sub-01", "sub-02"],
                                 "diagnosis": ["patient", None]})
    table = study_ledger([eeg], participants, ["diagnosis"])
    people = table[table.level == "participant"].set_index(["participant_id", "reason"])
    assert people.loc[("sub-01", "no_recording_left"), "status"] == "excluded"
    assert people.loc[("sub-02", ""), "status"] == "included"
    assert people.loc[("sub-02", "missing_label"), "status"] == "not_scored"
    assert (table.level == "recording").sum() == 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_a_job_stops_when_its_snakemake_is_killed(tmp_path):
    """A job (child of Snakemake) whose parent is killed with SIGKILL is stopped by the
    kernel before it writes its output."""
    job = ("from brainrep.io import stop_with_parent; import time, pathlib, os; "
           "stop_with_parent(); pathlib.Path('pid').write_text(str(os.getpid())); "
           "time.sleep(6); pathlib.Path('output').write_text('late')")
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys; subprocess.run([sys.executable, '-c', "
                               f"{job!r}])"], cwd=tmp_path)
    for _ in range(100):
        if (tmp_path / "pid").exists():
            break
        time.sleep(0.1)
    pid = int((tmp_path / "pid").read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    time.sleep(1)
    time.sleep(6)
    assert not Path(f"/proc/{pid}").exists()
    assert not (tmp_path / "output").exists()


def test_a_store_is_renamed_into_place_only_when_complete(tmp_path):
    from brainrep.io import atomic_output

    target = tmp_path / "windows.npy"
    np.save(target, np.zeros(3))  # the previous run's store
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as temporary:
        np.save(temporary, np.ones(10))
        raise KeyboardInterrupt  # killed before the store was complete
    assert np.load(target).tolist() == [0, 0, 0] and os.listdir(tmp_path) == ["windows.npy"]
    with atomic_output(target) as temporary:
        np.save(temporary, np.ones(10))
    assert np.load(target).sum() == 10 and os.listdir(tmp_path) == ["windows.npy"]
