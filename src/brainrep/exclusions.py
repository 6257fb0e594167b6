"""The exclusion ledger: a recording that fails in a known way is excluded, the study goes on.

A per-recording job whose input is damaged (unreadable, truncated, inconsistent with its
sidecar, too short, every window rejected, non-finite values) raises :class:`RecordingExcluded`.
With ``on_error: continue`` (the default, as MNE-BIDS-Pipeline's ``on_error``) the job still
writes its outputs: empty placeholder files whose JSON sidecars record ``status: excluded``,
the reason and the message, so that Snakemake's DAG stays whole and the group stages run on
what is left. ``on_error: abort`` stops at the first such error. Any other exception is a bug
and always stops the run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from brainrep.io import sidecar_path, write_sidecar

log = logging.getLogger(__name__)

#: Machine-readable reasons, and what each means for the user.
REASONS = {
    "unreadable": "the reader could not open the file (corrupt, empty or unsupported)",
    "truncated": "the file holds less data than its header or sidecar says",
    "sidecar_mismatch": "sampling rate or channel count differ from the JSON sidecar",
    "too_short": "shorter than one window or than the filters need",
    "all_windows_rejected": "every window was rejected by the amplitude threshold",
    "non_finite": "NaN or infinite values in the data",
    "failed_qc": "a QC metric beyond its exclusion threshold (e.g. mean framewise displacement)",
    "no_recording_left": "every recording of the participant was excluded",
    "missing_label": "no value for a prediction target in participants.tsv",
}
LEDGER_COLUMNS = ["participant_id", "recording", "datatype", "status", "stage", "reason",
                  "message"]
STUDY_COLUMNS = ["level", *LEDGER_COLUMNS]


class RecordingExcluded(RuntimeError):
    """A known per-recording failure; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, path: str | Path, reason: str, message: str):
        if reason not in REASONS:
            raise ValueError(f"unknown exclusion reason {reason!r}; one of {sorted(REASONS)}")
        self.path, self.reason, self.message = str(path), reason, message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):  # rebuilt from its three arguments (from a worker process)
        return type(self), (self.path, self.reason, self.message), self.__dict__


@contextmanager
def excluding(source: str, outputs: list[str], stage: str, on_error: str) -> Iterator[None]:
    """Run a per-recording step; on :class:`RecordingExcluded` write ``outputs`` as excluded
    placeholders (``on_error='continue'``) or re-raise (``'abort'``)."""
    try:
        yield
    except RecordingExcluded as err:
        if on_error == "abort":
            raise
        log.warning("excluded %s (%s): %s", source, err.reason, err.message)
        for output in outputs:
            Path(output).write_bytes(b"")
            write_sidecar(output, sources=[source], status="excluded", stage=stage,
                          reason=err.reason, message=str(err))


def exclusion(output: str | Path) -> dict | None:
    """The exclusion record of a per-recording output, or None when it was included."""
    sidecar = sidecar_path(output)
    if not sidecar.exists():
        return None
    record = json.loads(sidecar.read_text())
    return record if record.get("status") == "excluded" else None


def ledger(keys: list[str], outputs: list[str], datatype: str) -> pd.DataFrame:
    """One row per recording: ``included``, or ``excluded`` with its stage and reason."""
    rows = []
    for key, output in zip(keys, outputs, strict=True):
        record = exclusion(output) or {}
        rows.append({"participant_id": key.split("_")[0], "recording": key,
                     "datatype": datatype, "status": record.get("status", "included"),
                     "stage": record.get("stage", ""), "reason": record.get("reason", ""),
                     "message": record.get("message", "")})
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS)


def included(keys: list[str], outputs: list[str]) -> tuple[list[str], list[str]]:
    """The keys and outputs of the recordings that were not excluded; refuses a study where
    every recording was."""
    kept = [(k, o) for k, o in zip(keys, outputs, strict=True) if exclusion(o) is None]
    if not kept:
        raise RuntimeError(f"every one of the {len(keys)} recordings was excluded; see the "
                           "reasons in the job logs and in the exclusions table")
    return [k for k, _ in kept], [o for _, o in kept]


def study_ledger(ledgers: list[pd.DataFrame], participants: pd.DataFrame,
                 targets: list[str]) -> pd.DataFrame:
    """One table for the study (``group/exclusions.tsv``): every recording of the modality
    ``ledgers``, then every participant: excluded when no recording is left, and one
    ``missing_label`` row per target it has no value for (it is still preprocessed,
    embedded and used without labels, but never scored for that target)."""
    recordings = pd.concat(ledgers, ignore_index=True).assign(level="recording")
    rows = []
    for participant, own in recordings.groupby("participant_id", sort=True):
        kept = (own["status"] == "included").any()
        rows.append({"participant_id": participant, "status": "included" if kept else
                     "excluded", "stage": "" if kept else "group",
                     "reason": "" if kept else "no_recording_left",
                     "message": "" if kept else REASONS["no_recording_left"]})
        labels = participants.set_index("participant_id").reindex([participant])
        rows += [{"participant_id": participant, "status": "not_scored", "stage": "predict",
                  "reason": "missing_label", "message": f"no {target} in participants.tsv"}
                 for target in targets
                 if target in labels and labels[target].isna().all()]
    people = pd.DataFrame(rows).assign(level="participant", recording="", datatype="")
    return pd.concat([recordings, people], ignore_index=True)[STUDY_COLUMNS]
