import numpy as np
import pandas as pd

from brainrep.predict import participant_folds
from brainrep.subtype.settings import StatesSettings
from brainrep.subtype.states import state_features, state_summaries


def test_state_summaries_count_visits():
    sequence = np.array([0, 0, 0, 1, 1, 0, 0, 0, 0, 1])
    features = state_summaries(sequence, 2)
    assert features["occupancy_s0"] == 0.7 and features["occupancy_s1"] == 0.3
    assert features["dwell_s0"] == 3.5 and features["dwell_s1"] == 1.5
    assert features["switch_rate"] == 3 / 9


def _runs(n_participants=16, volumes=200, parcels=10, seed=0):
    """Two spatial states; half the participants stay mostly in state A, half in state B."""
    rng = np.random.default_rng(seed)
    patterns = rng.standard_normal((2, parcels)) * 2
    runs, occupancy = [], []
    for i in range(n_participants):
        stay_in_a = 0.8 if i % 2 == 0 else 0.2
        state, sequence = 0, []
        for _ in range(volumes):
            if rng.random() < 0.1:  # mean dwell of 10 volumes
                state = 0 if rng.random() < stay_in_a else 1
            sequence.append(state)
        sequence = np.array(sequence)
        runs.append(patterns[sequence] + rng.standard_normal((volumes, parcels)))
        occupancy.append(np.mean(sequence == 0))
    return runs, [f"sub-{i:02d}" for i in range(n_participants)], np.array(occupancy)


def test_hmm_recovers_planted_occupancy_with_one_model_per_fold():
    runs, participants, occupancy = _runs()
    frame = pd.DataFrame({"participant_id": participants,
                          "group": ["a", "b"] * (len(participants) // 2)})
    folds = participant_folds(frame, ["group"], 4, 0)
    settings = StatesSettings(n_states=2, n_components=3)
    features = state_features(runs, participants, settings=settings, seed=0, folds=folds)
    assert sorted(features["encoder_fold"].unique()) == [0, 1, 2, 3]
    for _, rows in features.groupby("encoder_fold"):
        rows = rows.set_index("participant_id").loc[participants]
        r = np.corrcoef(rows["occupancy_s0"], occupancy)[0, 1]
        assert abs(r) > 0.9  # the state labels may swap between models
        assert np.allclose(rows["occupancy_s0"] + rows["occupancy_s1"], 1)
        assert rows["dwell_s0"].ge(2).all() and rows["switch_rate"].lt(0.2).all()  # no flicker
    transductive = state_features(runs, participants, settings=settings, seed=0)
    assert "encoder_fold" not in transductive and len(transductive) == len(participants)
