"""Find recordings in BIDS datasets (glob-based, no pybids index) and build the run's index."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from brainrep.eeg.formats import READERS

BIDS_LABEL = re.compile(r"^[A-Za-z0-9]+$")
ENTITY = re.compile(r"^[a-z]+-[A-Za-z0-9]+$")


class BIDSError(ValueError):
    """A BIDS input that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class Recording:
    """One recording: ``subject`` label, the other ``entities`` (e.g. ``task-rest_run-1``)."""

    subject: str
    entities: str
    path: str

    @property
    def key(self) -> str:
        return f"sub-{self.subject}_{self.entities}"


def _check_entities(name: str, path: Path | str) -> tuple[str, str]:
    """Split ``sub-X_key-val..._suffix`` into subject and entities; refuse unsafe labels."""
    parts = name.split("_")
    if not parts[0].startswith("sub-") or not all(ENTITY.match(p) for p in parts):
        raise BIDSError(f"{path}: not a BIDS file name (expected sub-<label>_<key>-<label>_..., "
                        "labels of letters and digits only). Rename the file.")
    subject = parts[0].removeprefix("sub-")
    return subject, "_".join(parts[1:])


def _misplaced(path: Path, root: Path, subject: str, entities: str) -> str | None:
    """Why ``path`` is not where its name says it belongs (None when it is): the folders
    must be ``sub-<label>/[ses-<label>/]<datatype>/`` with the file name's labels."""
    folders = path.relative_to(root).parts[:-1]
    session = next((e.removeprefix("ses-") for e in entities.split("_") if e.startswith("ses-")),
                   None)
    expected = (f"sub-{subject}",) + ((f"ses-{session}",) if session else ())
    if folders[:len(expected)] != expected or len(folders) != len(expected) + 1:
        return (f"its folders {'/'.join(folders)}/ do not match its name (expected "
                f"{'/'.join(expected)}/<datatype>/): a copy or a misplaced file")
    return None


def _find(root: str | Path, pattern: str, stem: Callable[[str], str | None],
          participants: list[str], ignored: list[tuple[str, str]] | None) -> list[Recording]:
    """Files matching ``pattern``; ``stem`` strips the suffix (None skips the file).

    A file whose name is not BIDS, or whose folders do not match its labels (a stray copy
    such as ``sub-01 copy/``), is appended to ``ignored`` as (path, reason), or refused with
    :class:`BIDSError` when ``ignored`` is None.
    """
    found = []
    for path in sorted(Path(root).glob(pattern)):
        if (name := stem(path.name)) is None:
            continue
        try:
            subject, entities = _check_entities(name, path)
        except BIDSError:
            if ignored is None:
                raise
            ignored.append((str(path), "not a BIDS file name"))
            continue
        if reason := _misplaced(path, Path(root), subject, entities):
            if ignored is None:
                raise BIDSError(f"{path}: {reason}. Move or delete it, or set "
                                "bids.invalid_files: ignore to skip such files.")
            ignored.append((str(path), reason))
            continue
        if not participants or subject in participants:
            found.append(Recording(subject, entities, str(path)))
    _refuse_duplicates(found)
    return found


def _refuse_duplicates(recordings: list[Recording]) -> None:
    """One recording per key: two files with the same labels (e.g. ``.edf`` and ``.vhdr``
    of one run) would count a participant twice."""
    paths: dict[str, list[str]] = {}
    for r in recordings:
        paths.setdefault(r.key, []).append(r.path)
    repeated = {k: v for k, v in paths.items() if len(v) > 1}
    if repeated:
        raise BIDSError(f"recordings with the same labels: {repeated}. Keep one file per "
                        "subject, session, task, acquisition and run.")


def find_eeg(root: str | Path, task: str, participants: list[str],
             ignored: list[tuple[str, str]] | None = None) -> list[Recording]:
    """EEG recordings of ``task`` under a raw BIDS ``root``, in any format of
    :data:`~brainrep.eeg.formats.READERS` (those MNE-BIDS reads, and registered ones)."""
    return _find(root, f"sub-*/**/eeg/sub-*_task-{task}*_eeg.*",
                 lambda name: name.rsplit("_eeg.", 1)[0]
                 if Path(name).suffix in READERS else None, participants, ignored)


def space_entities(space: str) -> str:
    """fMRIPrep's space spec as file-name entities: ``MNI152NLin2009cAsym:res-2`` ->
    ``space-MNI152NLin2009cAsym_res-2``."""
    template, *modifiers = space.split(":")
    return "_".join([f"space-{template}", *modifiers])


def find_raw_bold(root: str | Path, task: str, participants: list[str],
             ignored: list[tuple[str, str]] | None = None) -> list[Recording]:
    """Raw BOLD runs of ``task`` under a BIDS ``root`` (fMRIPrep's input)."""
    return _find(root, f"sub-*/**/func/sub-*_task-{task}*_bold.nii*",
                 lambda name: name.split("_bold.nii")[0], participants, ignored)


def find_bold(derivatives: str | Path, task: str, space: str, participants: list[str],
              ignored: list[tuple[str, str]] | None = None) -> list[Recording]:
    """Preprocessed BOLD runs of ``task`` in ``space`` under an fMRIPrep-style derivatives root."""
    suffix = f"_{space_entities(space)}_desc-preproc_bold.nii.gz"
    return _find(derivatives, f"sub-*/**/func/sub-*_task-{task}*{suffix}",
                 lambda name: name.removesuffix(suffix), participants, ignored)


def find_timeseries(root: str | Path, task: str, atlas: str, participants: list[str],
                    ignored: list[tuple[str, str]] | None = None) -> list[Recording]:
    """Parcellated time series (``*_seg-<atlas>_stat-mean_timeseries.tsv[.gz]``) of ``task``."""
    suffix = f"_seg-{atlas}_stat-mean_timeseries"
    return _find(root, f"sub-*/**/func/sub-*_task-{task}*{suffix}.tsv*",
                 lambda name: name.split(suffix)[0]
                 if name.endswith((".tsv", ".tsv.gz")) else None, participants, ignored)


def confounds_path(bold_path: str | Path, space: str) -> str:
    """The fMRIPrep confounds table that belongs beside a preprocessed BOLD file."""
    name = Path(bold_path).name.replace(
        f"_{space_entities(space)}_desc-preproc_bold.nii.gz", "_desc-confounds_timeseries.tsv")
    return str(Path(bold_path).with_name(name))


def read_participants(path: str | Path) -> pd.DataFrame:
    """``participants.tsv`` with ``n/a`` as missing; refuses a table without ``participant_id``."""
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False,
                            dtype={"participant_id": str})
    except (OSError, pd.errors.ParserError) as err:
        raise BIDSError(f"{path}: cannot read participants table ({err}).") from err
    if "participant_id" not in table:
        raise BIDSError(f"{path}: no 'participant_id' column. Add it (values like sub-01).")
    if table["participant_id"].duplicated().any():
        dup = table.loc[table["participant_id"].duplicated(), "participant_id"].tolist()
        raise BIDSError(f"{path}: participant_id repeated: {dup}. Keep one row per participant.")
    return table


def write_index(participants_tsv: str, recordings: dict[str, list[Recording]],
                out_recordings: str, out_participants: str,
                ignored: list[tuple[str, str]] = (), out_ignored: str | None = None
                ) -> pd.DataFrame:
    """Write the table of usable recordings, the participants that have at least one, and
    (to ``out_ignored``) the files that were found but not used, with the reason."""
    rows = [{"participant_id": f"sub-{r.subject}", "datatype": datatype, "entities": r.entities,
             "path": r.path} for datatype, recs in recordings.items() for r in recs]
    index = pd.DataFrame(rows, columns=["participant_id", "datatype", "entities", "path"])
    participants = read_participants(participants_tsv)
    missing = sorted(set(index["participant_id"]) - set(participants["participant_id"]))
    if missing:
        raise BIDSError(f"{participants_tsv}: recordings exist for {missing} but they have no "
                        "row. Add them to participants.tsv.")
    participants = participants[participants["participant_id"].isin(index["participant_id"])]
    index.to_csv(out_recordings, sep="\t", index=False)
    if out_ignored:
        pd.DataFrame(list(ignored), columns=["path", "reason"]).to_csv(out_ignored, sep="\t",
                                                                       index=False)
    participants.to_csv(out_participants, sep="\t", index=False, na_rep="n/a")
    return index
