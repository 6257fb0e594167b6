import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, SCHEMA, copy_workflow

from brainrep.config import ConfigError, validate_config


def test_defaults_fill_every_section():
    config = validate_config({}, SCHEMA)
    assert config["demo"]["enabled"] is True
    assert config["eeg"]["window_s"] == 2.0
    assert config["ssl"]["eeg"]["objective"] == "contrastive"
    assert config["ssl"]["fmri"]["objective"] == "masked"
    assert config["ssl"]["fmri"]["epochs"] == 30  # nested $ref defaults are filled too


@pytest.mark.parametrize(("config", "expected"), [
    ({"bids_rooot": "/x"}, ["'bids_rooot'", "Did you mean 'bids.root'"]),
    ({"ssl": {"eeg": {"objectiv": "masked"}}}, ["'objectiv' at ssl.eeg", "'objective'"]),
    ({"eeg": {"l_freq": "one"}}, ["'eeg.l_freq'", "not of type 'number'"]),
    ({"demo": {"enabled": False}}, ["'bids.root' is missing"]),
    ({"demo": {"enabled": False}, "bids": {"root": "/nowhere"}}, ["not a BIDS dataset"]),
    ({"eeg": {"l_freq": 45.0}}, ["'eeg.l_freq'/'eeg.h_freq'"]),
])
def test_bad_config_names_the_key(config, expected):
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
    for fragment in expected:
        assert fragment in str(err.value)


def test_snakemake_refuses_misspelled_key_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("bids_rooot: /nowhere\n")
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1",
                          "--configfile", str(bad)], cwd=REPO, capture_output=True, text=True)
    assert run.returncode != 0
    assert "bids_rooot" in run.stdout + run.stderr
    assert "Did you mean 'bids.root'" in run.stdout + run.stderr


def test_cli_merges_config_files_like_snakemake(tmp_path, capsys):
    import yaml

    from brainrep.cli import main

    override = tmp_path / "o.yaml"
    override.write_text("name: other\neeg: {window_s: 4.0}\n")
    assert main(["validate-config", str(REPO / "config/config.yaml"), str(override),
                 "--schema", str(SCHEMA)]) == 0
    merged = yaml.safe_load(capsys.readouterr().out)
    assert merged["name"] == "other" and merged["eeg"]["window_s"] == 4.0
    assert merged["eeg"]["sfreq"] == 100.0 and merged["demo"]["n_subjects"] == 40


def test_a_user_config_starts_from_the_schema_defaults_not_the_demo(small_demo, tmp_path):
    """--configfile with only bids.root: the run uses exactly the schema's defaults (the
    demo's tuned settings in config/config.yaml do not leak in)."""
    root = tmp_path / "bids"
    shutil.copytree(small_demo, root, ignore=shutil.ignore_patterns("derivatives"))
    work = copy_workflow(tmp_path / "wf")
    (work / "user.yaml").write_text(f"bids: {{root: {root}}}\n")
    run = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1",
                          "results/demo/provenance/config.yaml", "--configfile", "user.yaml"],
                         cwd=work,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    resolved = yaml.safe_load((work / "results/demo/provenance/config.yaml").read_text())
    assert resolved == validate_config({"bids": {"root": str(root)}}, SCHEMA)
    assert resolved["demo"]["enabled"] is False and resolved["ssl"]["probe"]["column"] is None
    demo = yaml.safe_load((REPO / "config/config.yaml").read_text())
    assert resolved["eeg"]["bad_channel_criteria"] != demo["eeg"]["bad_channel_criteria"]


def _section(config: dict, path: str) -> dict:
    for key in path.split("."):
        config = config[key]
    return config


@pytest.mark.parametrize("settings_class, path", [
    ("brainrep.predict.PredictionSettings", "downstream"),
    ("brainrep.eeg.PreprocessSettings", "eeg"),
    ("brainrep.eeg.IcaSettings", "eeg.ica"),
    ("brainrep.eeg.EventSettings", "eeg.events"),
    ("brainrep.fmri.ParcellateSettings", "fmri"),
    ("brainrep.fmri.GroupSettings", "fmri"),
    ("brainrep.fmri.QcThresholds", "fmri.qc"),
    ("brainrep.ssl.settings.SSLSettings", "ssl.eeg"),
    ("brainrep.ssl.settings.CrossModalSettings", "ssl.crossmodal"),
    ("brainrep.ssl.settings.FoundationSettings", "ssl.foundation"),
    ("brainrep.ssl.settings.FinetuneSettings", "ssl.finetune"),
    ("brainrep.ssl.settings.ProbeSettings", "ssl.probe"),
    ("brainrep.subtype.SubtypingSettings", "downstream.subtyping"),
    ("brainrep.subtype.MultiviewSettings", "downstream.multiview"),
    ("brainrep.subtype.StatesSettings", "downstream.states"),
    ("brainrep.subtype.SubtypeStageSettings", "downstream"),
    ("brainrep.subtype.MultiviewStageSettings", "downstream"),
    ("brainrep.report.settings.VerdictSettings", "downstream"),
])
def test_typed_settings_defaults_are_the_schemas(settings_class, path):
    """One source of truth: a stage's typed settings built from the validated defaults of its
    config section equal the settings class's own defaults, and a misspelt key is refused."""
    import importlib

    module, name = settings_class.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    config = validate_config({"eeg": {"events": {}}} if path == "eeg.events" else {}, SCHEMA)
    section = _section(config, path)
    if path.startswith("ssl."):  # the shared seed and device, as the SSL rules pass them
        shared = {k: config["ssl"][k] for k in ("seed", "device")}
        # as the rules build them: the section, then the modalities, then seed and device
        section = section | {m: config["ssl"][m] | shared for m in ("eeg", "fmri")} | shared
    assert cls.from_config(section) == cls()
    # the schema's order: a rule's params (and so its reruns) stay as they were
    assert cls.keys() == [key for key in section if key in cls.keys()]
    with pytest.raises(TypeError):
        cls(**{cls.keys()[0] + "s": None})


@pytest.mark.parametrize("package", ["brainrep.eeg", "brainrep.fmri", "brainrep.predict",
                                     "brainrep.ssl", "brainrep.subtype"])
def test_stage_packages_load_lazily_and_no_name_is_a_submodule(package):
    """A stage package loads a submodule on first use of one of its names (planning reads
    settings without MNE, nilearn or scikit-learn's estimators); no public name may be
    shadowed by a submodule of the same name."""
    import importlib
    import inspect

    module = importlib.import_module(package)
    for name in module.__all__:
        assert not inspect.ismodule(getattr(module, name)), f"{package}.{name}"


def test_planning_imports_no_stage_library():
    """The modules the Snakefile imports to plan leave nilearn, torch, pyriemann and
    scikit-learn's estimators unimported (10,000 participants are planned in seconds)."""
    code = ("import sys\n"
            "from brainrep import cache, fmriprep, plan\n"
            "from brainrep.eeg.settings import PreprocessSettings\n"
            "from brainrep.fmri.settings import ParcellateSettings\n"
            "from brainrep.predict.settings import PredictionSettings\n"
            "from brainrep.subtype.settings import SubtypeStageSettings\n"
            "print(sorted(m for m in ('nilearn', 'torch', 'sklearn.linear_model', 'pyriemann')\n"
            "             if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"


def test_per_fold_example_plans_one_encoder_per_fold_and_modality(tmp_path):
    """config/examples/demo_train_folds.yaml (3 outer folds) plans, without running, one EEG,
    one fMRI and one cross-modal encoder per fold, and no corpus or transductive one (the
    workflow tests run them: ABIDE, EEGMAT and a small cross-modal demo)."""
    work = copy_workflow(tmp_path)
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1",
                          "--configfile", "config/examples/demo_train_folds.yaml"],
                         cwd=work, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    planned = run.stdout + run.stderr
    for model in ("modality-eeg", "modality-fmri", "crossmodal"):
        assert {k for k in range(5) if f"{model}_pretrain-fold{k}_model.pt" in planned} == {
            0, 1, 2}, model
    assert "_pretrain-corpus_" not in planned and "_pretrain-all_" not in planned
