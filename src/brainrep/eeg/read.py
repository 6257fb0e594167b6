"""Reading one EEG recording of any MNE-BIDS format: channel names, montage, electrode
positions, and the checks of the file against its sidecars."""

from __future__ import annotations

import json
import logging
import re
import warnings
from pathlib import Path

import mne
import numpy as np
import pandas as pd
from mne_bids import BIDSPath, get_entities_from_fname, read_raw_bids

from brainrep.eeg.formats import READERS
from brainrep.exclusions import RecordingExcluded

log = logging.getLogger(__name__)
# Reader warnings that mean the file holds less than its header promises.
TRUNCATION_WARNINGS = ("does not match the file size", "truncat", "number of records",
                       "less data than")


def read_bids_eeg(bids_root: str | Path, path: str | Path,
                  montage: str | None = None) -> mne.io.BaseRaw:
    """Load one BIDS EEG file with channel types, bad channels, montage and line frequency,
    by MNE-BIDS or the reader registered for its extension (:data:`~brainrep.eeg.formats.
    READERS`).

    Positions come from the file format itself (EEGLAB) or ``electrodes.tsv`` as MNE-BIDS
    reads them; where it reads none (e.g. ``electrodes.tsv`` in two coordinate systems), from
    :func:`electrode_positions`; else from the standard ``montage`` named (e.g.
    ``standard_1020``). An empty, corrupt or truncated file, or one that differs
    from its sidecar, raises :class:`RecordingExcluded` naming it.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise RecordingExcluded(path, "unreadable", "the file is empty (0 bytes). Restore it "
                                "from the source dataset, or remove it from the BIDS folder.")
    entities = get_entities_from_fname(path.name, on_error="ignore")
    reader = READERS.get(path.suffix)
    bids_path = BIDSPath(root=bids_root, datatype="eeg", suffix="eeg",
                         extension=path.suffix if reader is None else None,  # MNE-BIDS' own
                         **{k: v for k, v in entities.items() if v is not None})
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if reader is None:
                raw = read_raw_bids(bids_path, verbose="warning").load_data(verbose="warning")
            else:
                raw = apply_bids_sidecars(reader(path).load_data(verbose="warning"),
                                          bids_path)
    except Exception as err:  # MNE raises many types for corrupt or truncated files
        raise RecordingExcluded(path, "unreadable", f"cannot read this EEG recording ({err}). "
                                "Check that the file is complete and matches its sidecars, "
                                "or remove it from the BIDS folder.") from err
    damage = [str(w.message) for w in caught
              if any(t in str(w.message).lower() for t in TRUNCATION_WARNINGS)]
    if damage:
        raise RecordingExcluded(path, "truncated", f"the reader reports a damaged file "
                                f"({damage[0]}). Restore the complete file from the source "
                                "dataset.")
    check_against_sidecar(raw, path)
    if raw.get_montage() is None and (chosen := electrode_positions(path)):
        electrodes, dig = chosen
        raw.set_montage(dig, on_missing="ignore", verbose="error")
        log.info("%s: positions from %s", path, electrodes)
    if montage and raw.get_montage() is None:
        if missing := set_standard_montage(raw, montage):
            log.warning("%s: no position in montage %s for channels %s (after normalising "
                        "their names); they are not interpolated, and sensor_rotation is left "
                        "out.", path, montage, missing)
    return raw


#: BIDS channel types (channels.tsv ``type``) -> MNE channel types
BIDS_CHANNEL_TYPES = {"EEG": "eeg", "EOG": "eog", "HEOG": "eog", "VEOG": "eog", "ECG": "ecg",
                      "EMG": "emg", "TRIG": "stim", "MISC": "misc", "RESP": "resp",
                      "GSR": "gsr", "TEMP": "temperature"}


def apply_bids_sidecars(raw: mne.io.BaseRaw, bids_path: BIDSPath) -> mne.io.BaseRaw:
    """Part of what MNE-BIDS applies to the formats it reads, for a registered reader's
    ``raw``: the channel types (other types, REF included, become ``misc``) and bad channels
    (``status``) of the matching ``channels.tsv``, and the ``PowerLineFrequency`` (Hz) of the
    ``_eeg.json``, where they exist. ``events.tsv`` is not read: the reader sets any
    annotations."""
    channels = bids_path.find_matching_sidecar(suffix="channels", extension=".tsv",
                                               on_error="ignore")
    if channels:
        table = pd.read_csv(channels, sep="\t", na_values=["n/a"], keep_default_na=False)
        table = table[table["name"].isin(raw.ch_names)]
        raw.set_channel_types({row.name: BIDS_CHANNEL_TYPES.get(str(row.type).upper(), "misc")
                               for row in table.itertuples(index=False)}, verbose="error")
        if "status" in table:
            raw.info["bads"] = table.loc[table["status"] == "bad", "name"].tolist()
    sidecar = bids_path.find_matching_sidecar(suffix="eeg", extension=".json",
                                              on_error="ignore")
    if sidecar and (line := json.loads(Path(sidecar).read_text()).get("PowerLineFrequency")):
        if line != "n/a":
            raw.info["line_freq"] = float(line)
    return raw


# Old 10-20 names and the ones standard montages use.
CHANNEL_ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
REFERENCE_SUFFIX = re.compile(r"-(REF|LE|AR|AVG|A1|A2|M1|M2|CAR)$")


def normalise_channel(name: str) -> str:
    """A channel name as montages spell it, for matching only: case folded, an ``EEG ``
    prefix, a reference suffix (``-REF``, ``-LE``, ``-AR``, ``-A1``...) and trailing dots
    (BCI2000's ``Fc5.``) removed, old 10-20 names mapped to new ones (``T3`` -> ``T7``).
    Bipolar names (``FP1-F7``) keep both ends and so match no single position."""
    core = REFERENCE_SUFFIX.sub("", name.strip().upper().removeprefix("EEG ")).rstrip(".")
    return CHANNEL_ALIASES.get(core.strip(), core.strip())


def set_standard_montage(raw: mne.io.BaseRaw, montage: str) -> list[str]:
    """Give the EEG channels of ``raw`` the positions of the standard ``montage`` (e.g.
    ``standard_1020``), matching names after :func:`normalise_channel`; the channel names
    stay as recorded. Returns the EEG channels left without a position."""
    positions = mne.channels.make_standard_montage(montage).get_positions()
    known = {normalise_channel(ch): ch for ch in positions["ch_pos"]}
    eeg = [raw.ch_names[i] for i in mne.pick_types(raw.info, eeg=True, exclude=[])]
    found = {ch: positions["ch_pos"][known[normalise_channel(ch)]] for ch in eeg
             if normalise_channel(ch) in known}
    if found:
        raw.set_montage(mne.channels.make_dig_montage(
            ch_pos=found, nasion=positions["nasion"], lpa=positions["lpa"],
            rpa=positions["rpa"], coord_frame=positions["coord_frame"]),
            on_missing="ignore", verbose="error")
    return [ch for ch in eeg if ch not in found]


#: Coordinate systems whose axes are MNE's head frame (RAS, origin between the ears, from the
#: fiducials), preferred when a recording has electrodes.tsv in several systems. Any other
#: system needs its fiducials (AnatomicalLandmarkCoordinates) to be placed in the head frame.
HEAD_FRAME_SYSTEMS = ("CapTrak", "ElektaNeuromag")
UNITS_M = {"m": 1.0, "cm": 0.01, "mm": 0.001}


def electrode_positions(path: str | Path) -> tuple[Path, mne.channels.DigMontage] | None:
    """Channel positions from the ``*_electrodes.tsv`` beside an EEG recording (its
    participant and session), in any BIDS coordinate system: with several, the first in a
    head-frame system (:data:`HEAD_FRAME_SYSTEMS`), else the first by name. Units come from
    the matching ``*_coordsystem.json`` (m, cm or mm; m when absent), fiducials from its
    ``AnatomicalLandmarkCoordinates`` (MNE transforms positions to the head frame with them).
    Returns the file chosen and the montage, or None (no file, or a system that is not the
    head frame and has no fiducials: the standard montage then applies)."""
    path = Path(path)
    entities = get_entities_from_fname(path.name, on_error="ignore")
    prefix = "_".join(f"{key}-{entities[name]}" for name, key in
                      (("subject", "sub"), ("session", "ses")) if entities.get(name))
    candidates = sorted(path.parent.glob(f"{prefix}*_electrodes.tsv"))

    def system(electrodes: Path) -> dict:
        sidecar = electrodes.with_name(electrodes.name.replace("_electrodes.tsv",
                                                               "_coordsystem.json"))
        return json.loads(sidecar.read_text()) if sidecar.exists() else {}

    if not candidates:
        return None
    chosen = next((c for c in candidates if system(c).get("EEGCoordinateSystem")
                   in HEAD_FRAME_SYSTEMS), candidates[0])
    if len(candidates) > 1:
        log.warning("%s: electrodes in %d files; using %s (%s)", path, len(candidates),
                    chosen.name, system(chosen).get("EEGCoordinateSystem", "no coordsystem"))
    info = system(chosen)
    scale = UNITS_M.get(info.get("EEGCoordinateUnits", "m"), 1.0)
    table = pd.read_csv(chosen, sep="\t", na_values=["n/a"], encoding="utf-8-sig")
    table = table.dropna(subset=["x", "y", "z"])
    ch_pos = {row.name: np.array([row.x, row.y, row.z]) * scale
              for row in table.itertuples(index=False)}
    landmarks = {k.lower(): np.asarray(v) * UNITS_M.get(
        info.get("AnatomicalLandmarkCoordinateUnits", "m"), 1.0)
        for k, v in info.get("AnatomicalLandmarkCoordinates", {}).items()
        if k in ("NAS", "LPA", "RPA")}
    head = info.get("EEGCoordinateSystem") in HEAD_FRAME_SYSTEMS
    if not head and len(landmarks) < 3:
        log.warning("%s: %s is in %s without fiducials; its positions are not used", path,
                    chosen.name, info.get("EEGCoordinateSystem", "an unknown system"))
        return None
    return chosen, mne.channels.make_dig_montage(
        ch_pos=ch_pos, nasion=landmarks.get("nas"), lpa=landmarks.get("lpa"),
        rpa=landmarks.get("rpa"), coord_frame="head" if head else "unknown")


def check_against_sidecar(raw: mne.io.BaseRaw, path: Path) -> None:
    """Compare what the reader returned with the recording's ``_eeg.json``: duration
    (``RecordingDuration``, s; 1 s or 1 % tolerance), ``SamplingFrequency`` (Hz) and
    ``EEGChannelCount``. Less data than the sidecar says (truncation), another sampling
    rate or channel count raise :class:`RecordingExcluded`; more data than it says is
    logged and used."""
    sidecar = path.with_name(path.name.rsplit(".", 1)[0] + ".json")
    if not sidecar.is_file():
        return
    expected = json.loads(sidecar.read_text())
    sfreq = raw.info["sfreq"]
    if (want := expected.get("SamplingFrequency")) and abs(sfreq - float(want)) > 1e-3 * sfreq:
        raise RecordingExcluded(path, "sidecar_mismatch", f"the file is sampled at {sfreq} Hz "
                                f"but {sidecar.name} says SamplingFrequency {want}. Correct the "
                                "sidecar or the file.")
    if (want := expected.get("RecordingDuration")) not in (None, "n/a"):
        duration, tolerance = raw.n_times / sfreq, max(1.0, 0.01 * float(want))
        if duration < float(want) - tolerance:
            raise RecordingExcluded(path, "truncated", f"the file holds {duration:.1f} s of "
                                    f"data but {sidecar.name} says RecordingDuration {want} s. "
                                    "Restore the complete file, or correct the sidecar.")
        if duration > float(want) + tolerance:  # more data than promised: not damage
            log.warning("%s holds %.1f s of data, more than %s's RecordingDuration %s s; "
                        "using the data. Correct the sidecar.", path, duration, sidecar.name,
                        want)
    n_eeg = len(mne.pick_types(raw.info, eeg=True, exclude=[]))
    if (want := expected.get("EEGChannelCount")) not in (None, "n/a") and n_eeg != int(want):
        raise RecordingExcluded(path, "sidecar_mismatch", f"the file has {n_eeg} EEG channels "
                                f"but {sidecar.name} says EEGChannelCount {want}. Correct the "
                                "sidecar or the channel types in channels.tsv.")
