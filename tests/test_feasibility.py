"""Planning-time feasibility: a stage the participants cannot hold is skipped with a reason
that names the config key, the counts and the fix."""

import pandas as pd
from conftest import SCHEMA

from brainrep import feasibility, simulate
from brainrep.config import validate_config


def _config(**downstream):
    return validate_config({"downstream": downstream}, SCHEMA)


def _participants(n_patients: int, n_controls: int) -> pd.DataFrame:
    n = n_patients + n_controls
    return pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(n)],
                         "diagnosis": ["patient"] * n_patients + ["control"] * n_controls,
                         "site": ["A", "B"] * (n // 2) + ["A"] * (n % 2),
                         "age": range(n), "sex": ["F", "M"] * (n // 2) + ["F"] * (n % 2),
                         "anhedonia": range(n), "anxiety": range(n)})


def _verdicts(config, participants):
    return {(v.stage, v.item): v for v in feasibility.assess(config, participants)}


def test_the_demo_of_the_schema_minimum_skips_subtyping_with_the_fix():
    config = validate_config({"demo": {"n_subjects": 12}}, SCHEMA)
    spec = simulate.DemoSpec(n_subjects=12)
    verdicts = _verdicts(config, simulate.participants_table(spec))
    assert verdicts["predict", "diagnosis"].runs
    subtyping = verdicts["subtype", "subtyping"]
    assert not subtyping.runs
    assert "downstream.subtyping" in subtyping.reason and "3 x k_max = 15" in subtyping.reason
    assert validate_config({}, SCHEMA)["downstream"]["subtyping"]["k_max"] == 5


def test_a_target_needs_two_classes_of_two_participants():
    one_class = _verdicts(_config(), _participants(6, 0))["predict", "diagnosis"]
    assert not one_class.runs and "one class" in one_class.reason
    lonely = _verdicts(_config(), _participants(6, 1))["predict", "diagnosis"]
    assert not lonely.runs and "{'patient': 6, 'control': 1}" in lonely.reason
    missing = _verdicts(_config(targets=["group"]), _participants(6, 6))["predict", "group"]
    assert not missing.runs and "no column 'group'" in missing.reason
    assert _verdicts(_config(), _participants(6, 6))["predict", "diagnosis"].runs


def test_inner_folds_need_enough_of_the_rarest_class():
    config = _config(model="logistic_regression", inner_folds=3, outer_folds=5)
    verdict = _verdicts(config, _participants(10, 3))["predict", "diagnosis"]
    assert not verdict.runs and "downstream.inner_folds=3" in verdict.reason
    assert _verdicts(_config(inner_folds=3), _participants(10, 3))["predict", "diagnosis"].runs


def test_a_probe_column_must_exist():
    config = validate_config({"ssl": {"probe": {"column": "condition"}}}, SCHEMA)
    verdict = _verdicts(config, _participants(6, 6))["ssl_probe", "condition"]
    assert not verdict.runs and "ssl.probe.column" in verdict.reason
    config["ssl"]["probe"]["column"] = "task"  # a window-table column
    assert _verdicts(config, _participants(6, 6))["ssl_probe", "task"].runs
