"""The offline cache: prefetch from local files, then read only the cache, or fail naming
what is missing."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import SCHEMA, copy_workflow

from brainrep import simulate
from brainrep.cache import CacheError, Item, offline_config, required_items, resolve
from brainrep.config import validate_config


def _config(**sections) -> dict:
    return validate_config(sections, SCHEMA)


def _templateflow_home(small_demo, root):
    """A local TemplateFlow tree holding one atlas (the demo's parcels, Schaefer-named)."""
    template = root / "tpl-MNI152NLin2009cAsym"
    template.mkdir(parents=True)
    stem = "tpl-MNI152NLin2009cAsym_{res}atlas-Schaefer2018_desc-100Parcels7Networks_dseg"
    shutil.copy(small_demo / simulate.ATLAS_RELPATH, template / f"{stem.format(res='res-02_')}"
                                                                ".nii.gz")
    shutil.copy(small_demo / simulate.ATLAS_LABELS_RELPATH,
                template / f"{stem.format(res='')}.tsv")
    return root


TEMPLATEFLOW_ATLAS = {"source": "templateflow", "name": "Schaefer100",
                      "templateflow": {"template": "MNI152NLin2009cAsym", "atlas": "Schaefer2018",
                                       "desc": "100Parcels7Networks", "resolution": 2}}


def _fmriprep(tmp_path, **options) -> dict:
    """Valid settings to run fMRIPrep on one's own raw BIDS."""
    (tmp_path / "license.txt").write_text("a FreeSurfer license\n")
    return {"run": True, "license": str(tmp_path / "license.txt"), **options}


def _raw(tmp_path, **sections) -> dict:
    (tmp_path / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.9.0"}')
    return _config(demo={"enabled": False}, bids={"root": str(tmp_path)}, **sections)


def test_required_items_follow_the_config(tmp_path):
    weights = tmp_path / "w.pt"
    config = _raw(tmp_path, fmri={"atlas": TEMPLATEFLOW_ATLAS, "fmriprep": _fmriprep(tmp_path)},
                  ssl={"eeg": {"init_checkpoint": str(weights)}})
    items = {i.kind: i for i in required_items(config)}
    assert items["container"].source == "docker://nipreps/fmriprep:25.2.7"
    assert items["weights"] == Item("weights", "ssl-eeg-init", str(weights))
    assert '"atlas": "Schaefer2018"' in items["templateflow"].source
    docker = _raw(tmp_path, fmri={"fmriprep": _fmriprep(tmp_path, engine="docker"),
                                  "atlas": {"source": "coordinates", "name": "Power2011"}})
    assert required_items(docker) == []  # Docker keeps its own images; nilearn ships Power


def test_prefetch_from_local_files_then_offline_reads_only_the_cache(small_demo, tmp_path):
    encoder = torch.nn.Linear(3, 2)
    torch.save(encoder.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "fmriprep.sif").write_bytes(os.urandom(4096))  # a local image file
    config = _raw(tmp_path, fmri={"atlas": TEMPLATEFLOW_ATLAS, "fmriprep": _fmriprep(
                      tmp_path, image=str(tmp_path / "fmriprep.sif"))},
                  ssl={"eeg": {"init_checkpoint": str(tmp_path / "weights.pt")}},
                  cache={"root": str(tmp_path / "cache"), "offline": True})
    items = required_items(config)
    # TemplateFlow reads $TEMPLATEFLOW_HOME at import: prefetch in a fresh interpreter
    home = _templateflow_home(small_demo, tmp_path / "templateflow")
    code = ("import sys, json\nfrom brainrep.cache import Item, prefetch\n"
            "prefetch([Item(**i) for i in json.loads(sys.argv[1])], sys.argv[2])\n")
    run = subprocess.run([sys.executable, "-c", code, json.dumps([vars(i) for i in items]),
                          str(tmp_path / "cache")],
                         env={**os.environ, "TEMPLATEFLOW_HOME": str(home),
                              "TEMPLATEFLOW_AUTOUPDATE": "0"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    shutil.rmtree(home)  # nothing outside the cache is left to read

    offline = offline_config(config)
    cache = tmp_path / "cache"
    assert offline["fmri"]["atlas"]["source"] == "file"
    assert offline["fmri"]["atlas"]["image"].startswith(str(cache))
    assert offline["fmri"]["atlas"]["labels"].endswith(".tsv")
    assert offline["fmri"]["fmriprep"]["image"] == str(cache / "container/fmriprep-25.2.7"
                                                             "/fmriprep.sif")
    cached = offline["ssl"]["eeg"]["init_checkpoint"]
    assert cached.startswith(str(cache))
    assert torch.equal(torch.load(cached)["weight"], encoder.state_dict()["weight"])

    with open(cached, "r+b") as altered:
        altered.seek(100)
        altered.write(b"\0\1\2")
    with pytest.raises(CacheError, match="differs from the prefetched file"):
        resolve(items, cache)
    other = Item("weights", "ssl-fmri-init", str(tmp_path / "other.pt"))
    with pytest.raises(CacheError, match="ssl-fmri-init' from .*other.pt is not in the cache"):
        resolve([other], cache)
    (cache / "manifest.tsv").unlink()
    with pytest.raises(CacheError, match="run `snakemake prefetch`"):
        resolve(items, cache)


@pytest.mark.workflow
def test_offline_workflow_stops_before_any_job_naming_the_missing_item(tmp_path):
    """`snakemake prefetch` fills the cache (weights from a local file); an offline run then
    plans its jobs, and an offline run that needs something else stops at once."""
    workdir = copy_workflow(tmp_path / "work")
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "weights.pt")
    settings = {"cache": {"root": str(tmp_path / "cache")},
                "ssl": {"eeg": {"init_checkpoint": str(tmp_path / "weights.pt")}}}
    (workdir / "cached.yaml").write_text(yaml.safe_dump(settings))
    snakemake = [sys.executable, "-m", "snakemake", "--cores", "1"]
    fill = subprocess.run([*snakemake, "prefetch", "--configfile", "cached.yaml"], cwd=workdir,
                          capture_output=True, text=True, timeout=300)
    assert fill.returncode == 0, fill.stderr[-3000:]
    assert (tmp_path / "cache/weights/ssl-eeg-init/weights.pt").is_file()

    settings["cache"]["offline"] = True
    (workdir / "offline.yaml").write_text(yaml.safe_dump(settings))
    planned = subprocess.run([*snakemake, "-n", "--configfile", "offline.yaml"], cwd=workdir,
                             capture_output=True, text=True, timeout=300)
    assert planned.returncode == 0, planned.stderr[-3000:]
    settings["ssl"]["fmri"] = {"init_checkpoint": str(tmp_path / "fmri_weights.pt")}
    (workdir / "offline.yaml").write_text(yaml.safe_dump(settings))
    refused = subprocess.run([*snakemake, "-n", "--configfile", "offline.yaml"], cwd=workdir,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0
    message = refused.stdout + refused.stderr
    assert "ssl-fmri-init" in message and "is not in the cache" in message
