"""Atlas registry: label files in both formats, nilearn's coordinate atlases, TemplateFlow cache."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED_DATA

from brainrep import fmri, simulate
from brainrep.atlases import AtlasError, atlas_files, coordinate_atlas, load_atlas, read_labels
from brainrep.bids import confounds_path


def test_read_labels_tsv_and_neuroparc_json(small_demo, tmp_path):
    tsv = read_labels(small_demo / simulate.ATLAS_LABELS_RELPATH)
    assert list(tsv.index) == list(range(1, 17)) and tsv[1] == "Net1_P1"
    neuroparc = tmp_path / "atlas_labels.json"
    neuroparc.write_text(json.dumps({"MetaData": {}, "rois": {
        "0": {"label": None}, "2": {"label": "PCC"}, "1": {"label": None}}}))
    labels = read_labels(neuroparc)
    assert labels.to_dict() == {1: "roi-1", 2: "PCC"}  # background dropped, sorted
    with pytest.raises(AtlasError, match="atlas_labels.json"):
        read_labels(tmp_path / "atlas_labels.json.missing")


def test_shared_atlas_labels_cover_their_image():
    path = SHARED_DATA / "atlases" / "Schaefer200_space-MNI152NLin6_labels.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    import nibabel as nib

    labels = read_labels(path)
    image = nib.load(str(path).replace("_labels.json", "_res-2x2x2.nii.gz"))
    values = set(np.unique(np.asarray(image.dataobj)).astype(int)) - {0}
    assert len(labels) == 200 and values <= set(labels.index)


@pytest.mark.parametrize(("name", "n_rois"), [("Power2011", 264), ("Dosenbach2010", 160),
                                                ("Seitzman2018", 300)])
def test_coordinate_atlases_need_no_download(name, n_rois):
    atlas = coordinate_atlas(name, 5.0)
    assert atlas.coordinates.shape == (n_rois, 3) and len(atlas.labels) == n_rois
    assert np.abs(atlas.coordinates).max() < 110  # mm in MNI space
    with pytest.raises(AtlasError, match="Power2011"):
        coordinate_atlas("Power", 5.0)


def test_spheres_on_the_demo_bold(small_demo):
    bold = str(small_demo / simulate.bold_relpath("002"))
    spec = {"source": "coordinates", "name": "Dosenbach2010", "sphere_radius_mm": 6.0}
    atlas = load_atlas(spec, *atlas_files(spec, None))
    series, qc = fmri.parcellate(bold, confounds_path(bold, "MNI152NLin2009cAsym"), atlas,
                                 "simple", 0.01, 0.1)
    # every sphere with signal is kept, the rest (outside the demo's brain) are reported
    assert series.shape[0] == 120 and series.shape[1] + len(qc["empty_parcels"]) == 160
    assert series.shape[1] > 80 and np.allclose(series.std(), 1, atol=0.05)


def test_file_atlas_must_exist(tmp_path):
    spec = {"source": "file", "image": str(tmp_path / "a.nii.gz"), "labels": None}
    with pytest.raises(AtlasError, match="needs fmri.atlas.image and fmri.atlas.labels"):
        atlas_files(spec, None)
    spec["labels"] = str(tmp_path / "a.tsv")
    with pytest.raises(AtlasError, match="a.nii.gz: atlas file not found"):
        atlas_files(spec, None)


def test_templateflow_atlas_from_a_local_cache(small_demo, tmp_path):
    """TemplateFlow reads $TEMPLATEFLOW_HOME at import: run in a fresh interpreter, offline."""
    template = tmp_path / "templateflow" / "tpl-MNI152NLin2009cAsym"
    template.mkdir(parents=True)
    stem = "tpl-MNI152NLin2009cAsym_{res}atlas-Schaefer2018_desc-100Parcels7Networks_dseg"
    shutil.copy(small_demo / simulate.ATLAS_RELPATH, template / f"{stem.format(res='res-02_')}"
                                                                ".nii.gz")
    shutil.copy(small_demo / simulate.ATLAS_LABELS_RELPATH, template / f"{stem.format(res='')}"
                                                                      ".tsv")
    code = ("from brainrep.atlases import atlas_files\n"
            "spec = {'source': 'templateflow', 'templateflow': {'template': "
            "'MNI152NLin2009cAsym', 'atlas': 'Schaefer2018', 'desc': '%s', "
            "'resolution': 2}}\n"
            "print(*atlas_files(spec, None), sep='\\n')\n")
    env = {**os.environ, "TEMPLATEFLOW_HOME": str(tmp_path / "templateflow"),
           "TEMPLATEFLOW_AUTOUPDATE": "0"}
    found = subprocess.run([sys.executable, "-c", code % "100Parcels7Networks"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    image, labels = found.stdout.split()
    assert image.endswith("res-02_atlas-Schaefer2018_desc-100Parcels7Networks_dseg.nii.gz")
    assert read_labels(labels)[1] == "Net1_P1"
    missing = subprocess.run([sys.executable, "-c", code % "400Parcels7Networks"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "TemplateFlow has no single atlas" in missing.stderr
