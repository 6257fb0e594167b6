"""The statistics of benchmarks/transfer.py: its permutation null."""

import importlib.util

import numpy as np
from conftest import REPO
from sklearn.model_selection import StratifiedKFold

spec = importlib.util.spec_from_file_location("transfer", REPO / "benchmarks" / "transfer.py")
transfer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(transfer)


def test_the_null_keeps_each_fold_balanced_and_does_not_depend_on_n_jobs():
    """Labels permuted within each outer test fold keep the class counts the stratified split
    was made for (permuting across folds pulled the ABIDE null's mean AUROC below 0.5); the
    permutations give the same null in one process or two."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], [17, 23])
    X = rng.standard_normal((40, 3))
    X[5, 1] = np.nan  # a gap, as in the edges: imputed inside each training fold
    groups = np.array([f"sub-{i:02d}" for i in range(40)])
    splits = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    unit = {"y": y, "groups": groups, "splits": splits,
            "p": {"noise": transfer.probe_probabilities(X, y, groups, splits)}}
    (relabelled,) = transfer.within_test_folds([unit], np.random.default_rng(0))
    assert (relabelled != y).any()
    assert all(relabelled[test].sum() == y[test].sum() for _, test in splits)
    nulls = []
    for n_jobs in (1, 2):
        draws = np.random.default_rng(1)
        row = transfer.table_rows([unit], {"unit": {"noise": X}},
                                  lambda draws=draws: transfer.within_test_folds([unit], draws),
                                  n_permutations=2, n_jobs=n_jobs)[0]
        nulls.append(row["null_mean"])
    assert np.isfinite(nulls[0]) and nulls[0] == nulls[1]
