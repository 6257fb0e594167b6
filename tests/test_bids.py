import pytest
from conftest import SCHEMA

from brainrep import simulate
from brainrep.bids import BIDSError, find_bold, find_eeg, read_participants, write_index
from brainrep.config import validate_config
from brainrep.plan import Inputs


def test_find_recordings_and_index(small_demo, tmp_path):
    eeg = find_eeg(small_demo, "rest", [])
    bold = find_bold(small_demo / "derivatives/fmriprep", "rest", "MNI152NLin2009cAsym", [])
    assert len(eeg) == len(bold) == 12
    assert eeg[0].key == "sub-001_task-rest" and eeg[0].path.endswith(".vhdr")
    assert [r.subject for r in find_eeg(small_demo, "rest", ["003", "005"])] == ["003", "005"]
    index = write_index(str(small_demo / "participants.tsv"), {"eeg": eeg, "bold": bold},
                        tmp_path / "recordings.tsv", tmp_path / "participants.tsv")
    assert len(index) == 24 and set(index["datatype"]) == {"eeg", "bold"}


def test_unsafe_labels_are_refused(tmp_path):
    bad = tmp_path / "sub-01" / "eeg"
    bad.mkdir(parents=True)
    (bad / "sub-01_task-rest_acq-..%2f_eeg.edf").write_bytes(b"")
    with pytest.raises(BIDSError, match="not a BIDS file name"):
        find_eeg(tmp_path, "rest", [])


def test_participants_without_id_column(tmp_path):
    path = tmp_path / "participants.tsv"
    path.write_text("subject\tage\nsub-01\t30\n")
    with pytest.raises(BIDSError, match="participant_id"):
        read_participants(path)


def test_recording_without_participant_row(small_demo, tmp_path):
    participants = tmp_path / "participants.tsv"
    lines = (small_demo / "participants.tsv").read_text().splitlines()
    participants.write_text("\n".join(lines[:-1]) + "\n")  # drop sub-012
    with pytest.raises(BIDSError, match="sub-012"):
        write_index(str(participants), {"eeg": find_eeg(small_demo, "rest", [])},
                    tmp_path / "r.tsv", tmp_path / "p.tsv")


def test_inputs_from_a_real_bids_root(small_demo):
    atlas = {"source": "file", "image": str(small_demo / simulate.ATLAS_RELPATH),
             "labels": str(small_demo / simulate.ATLAS_LABELS_RELPATH)}
    config = validate_config({"demo": {"enabled": False}, "bids": {"root": str(small_demo)},
                              "fmri": {"atlas": atlas}}, SCHEMA)
    inputs = Inputs.from_config(config, "results/x")
    assert len(inputs.eeg) == 12 and len(inputs.bold) == 12
    assert (inputs.atlas_image, inputs.atlas_labels) == (atlas["image"], atlas["labels"])
    config["fmri"]["atlas"]["source"] = "demo"
    with pytest.raises(ValueError, match="demo.enabled is false"):
        Inputs.from_config(config, "results/x")
