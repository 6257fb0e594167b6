"""What the participants can hold, decided at planning time before any job runs.

Each downstream stage is checked against participants.tsv: enough participants per class for
the outer and inner folds, a target with two classes or more, columns that exist, a range
of k that the subtyping population can hold. A stage that cannot run is skipped with a
reason that names the config key, the counts and what to change (``group/feasibility.tsv``
and the log) instead of crashing after minutes of work; preprocessing and embeddings still
run, even for one participant.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from brainrep.predict.settings import PredictionSettings
from brainrep.ssl.settings import ProbeSettings
from brainrep.subtype.settings import MultiviewStageSettings, SubtypingSettings

#: Window-table columns a probe can predict besides participants.tsv columns.
WINDOW_COLUMNS = ("label", "task", "session", "run")
COLUMNS = ["stage", "item", "runs", "reason"]


@dataclass(frozen=True)
class Verdict:
    """Whether one downstream ``stage`` (for ``item``: a target, feature set...) runs."""

    stage: str
    item: str
    runs: bool
    reason: str = ""


def _class_counts(participants: pd.DataFrame, column: str) -> pd.Series:
    from brainrep.predict import class_labels, is_continuous

    values = participants[column].dropna()
    if is_continuous(values):
        return pd.Series({"continuous": len(values)})
    return class_labels(values).value_counts().astype(int).map(int)


def target_verdict(participants: pd.DataFrame, target: str, *, settings: PredictionSettings,
                   confounds: tuple[str, ...] = ()) -> Verdict:
    """Can ``target`` be predicted with participant-grouped outer folds (two or more per
    class) and the inner tuning folds of the settings' ``model``, and do the ``confounds``
    (``downstream.confounds``) exist?"""
    if target not in participants:
        return Verdict("predict", target, False, f"downstream.targets: participants.tsv has no "
                       f"column {target!r} (it has {sorted(participants.columns)}). Name one.")
    counts = _class_counts(participants, target)
    if "continuous" not in counts and len(counts) < 2:
        return Verdict("predict", target, False, f"downstream.targets: {target!r} has one "
                       f"class {counts.to_dict()}; a target needs two or more.")
    smallest = int(counts.min())
    if smallest < 2:
        return Verdict("predict", target, False, f"downstream.targets: {target!r} has "
                       f"{counts.to_dict()} labelled participants; participant-grouped outer "
                       "folds need two or more per class. Add participants or choose another "
                       "target.")
    folds = min(settings.outer_folds, smallest)
    inner = settings.inner_folds
    training_minority = smallest - -(-smallest // folds)  # the smallest class minus one fold
    if settings.model != "ridge" and training_minority < inner:
        return Verdict("predict", target, False, f"downstream.inner_folds={inner}: training "
                       f"folds hold {training_minority} participants of the rarest class of "
                       f"{target!r} ({counts.to_dict()}). Lower downstream.inner_folds or use "
                       "downstream.model: ridge (leave-one-out tuning).")
    site = settings.site_column
    if site and site not in participants:
        return Verdict("predict", target, False, f"downstream.site_column: participants.tsv "
                       f"has no column {site!r}. Name the site column, or set it to null.")
    missing = [c for c in confounds + settings.deconfound if c not in participants]
    if missing:
        return Verdict("predict", target, False, f"downstream.confounds/deconfound: "
                       f"participants.tsv has no column(s) {missing}. Remove them.")
    return Verdict("predict", target, True)


def subtyping_verdict(participants: pd.DataFrame, *, settings: SubtypingSettings) -> Verdict:
    """Can the subtyping population hold ``k_max`` clusters (three participants each)?"""
    column, value = settings.column, settings.value
    if column not in participants:
        return Verdict("subtype", "subtyping", False, f"downstream.subtyping.column: "
                       f"participants.tsv has no column {column!r}. Name the column that "
                       "selects the population.")
    missing = [c for c in settings.regress_out + settings.check if c not in participants]
    if missing:
        return Verdict("subtype", "subtyping", False, f"downstream.subtyping.regress_out/check: "
                       f"participants.tsv has no column(s) {missing}. Remove them.")
    n = int((participants[column].astype(str) == str(value)).sum())
    if n < 3 * settings.k_max:
        fix = (f"Lower downstream.subtyping.k_max to {n // 3} (and k_min to 2), or add "
               "participants." if n >= 6 else "Six or more are needed for two clusters.")
        return Verdict("subtype", "subtyping", False, f"downstream.subtyping: {n} participants "
                       f"with {column} = {value}, fewer than 3 x k_max = "
                       f"{3 * settings.k_max}. {fix}")
    return Verdict("subtype", "subtyping", True)


def multiview_verdict(participants: pd.DataFrame, *,
                      settings: MultiviewStageSettings) -> Verdict:
    """Do the multiview symptom columns and the site column exist?"""
    wanted = [*settings.multiview.symptoms,
              *([settings.site_column] if settings.site_column else [])]
    missing = [c for c in wanted if c not in participants]
    if missing:
        return Verdict("multiview", "multiview", False, f"downstream.multiview.symptoms / "
                       f"site_column: participants.tsv has no column(s) {missing}. Name them, "
                       "or set downstream.multiview.enabled: false.")
    return Verdict("multiview", "multiview", True)


def probe_verdict(participants: pd.DataFrame, *, settings: ProbeSettings) -> Verdict:
    """Does the probe's column exist, with enough participants for its grouped splits?"""
    column = settings.column
    if column not in participants and column not in WINDOW_COLUMNS:
        return Verdict("ssl_probe", column, False, f"ssl.probe.column: {column!r} is neither a "
                       f"participants.tsv column nor one of {list(WINDOW_COLUMNS)}.")
    if len(participants) < settings.n_splits:
        return Verdict("ssl_probe", column, False, f"ssl.probe.n_splits={settings.n_splits} "
                       f"participant-grouped splits need as many participants; there are "
                       f"{len(participants)}.")
    return Verdict("ssl_probe", column, True)


def assess(config: dict, participants: pd.DataFrame) -> list[Verdict]:
    """Every downstream stage's :class:`Verdict` for the validated ``config`` and the
    participants that have data."""
    downstream = config["downstream"]
    prediction = PredictionSettings.from_config(downstream)
    verdicts = [target_verdict(participants, target, settings=prediction,
                               confounds=tuple(downstream["confounds"]))
                for target in downstream["targets"]]
    multiview = MultiviewStageSettings.from_config(downstream)
    if multiview.subtyping.feature_sets or multiview.multiview.enabled:
        verdicts.append(subtyping_verdict(participants, settings=multiview.subtyping))
    if multiview.multiview.enabled:
        verdicts.append(multiview_verdict(participants, settings=multiview))
    probe = ProbeSettings.from_config(config["ssl"]["probe"])
    if probe.column:
        verdicts.append(probe_verdict(participants, settings=probe))
    return verdicts


def table(verdicts: list[Verdict]) -> pd.DataFrame:
    """The verdicts as the rows of ``group/feasibility.tsv``."""
    return pd.DataFrame([vars(v) for v in verdicts], columns=COLUMNS)
