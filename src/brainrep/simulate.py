"""Deterministic multimodal demo dataset (raw BIDS EEG + template-space BOLD) with planted truth.

The generative model, per participant:

* **groups**: controls and patients; patients carry one of two latent subtypes and a severity
  in [0.6, 1.4]. A fraction of participants has no diagnosis label (``n/a``).
* **EEG** (19 channels, 10-20): pink background, posterior alpha (stronger eyes closed), frontal
  theta, central beta. Subtype 1 slows the alpha peak and raises theta; subtype 2 lowers alpha
  power and raises beta. Effects scale with ``effect_size * severity``.
* **fMRI** (template-space BOLD on a coarse MNI grid, demo atlas of parcels in 4 networks):
  network latent signals drive parcels. Subtype 1 weakens within-network coupling of network 1;
  subtype 2 couples networks 2 and 3. Motion and WM/CSF nuisance enter the voxels and the
  fMRIPrep-style confounds table, so denoising matters.
* **site**: site B has a higher EEG gain, 60 Hz mains instead of 50 Hz, and a global BOLD signal.
* **symptoms**: ``anhedonia`` follows subtype 1 severity, ``anxiety`` subtype 2 severity.

``effect_size=0`` keeps every nuisance (site, motion) and removes every diagnosis and subtype
effect: the null dataset for falsification tests. The truth goes to
``sourcedata/truth/participants_truth.tsv``, which only evaluation code reads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import mne
import nibabel as nib
import numpy as np
import pandas as pd
from mne_bids import BIDSPath, write_raw_bids

EEG_CHANNELS = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
                "P7", "P3", "Pz", "P4", "P8", "O1", "O2"]
EEG_TASK = "rest"
BOLD_TASK = "rest"
TEMPLATE = "MNI152NLin2009cAsym"
N_NETWORKS = 4
SITES = ("A", "B")
SYMPTOMS = ("anhedonia", "anxiety")


@dataclass(frozen=True)
class DemoSpec:
    """Size and strength of the demo dataset.

    ``effect_size`` multiplies every diagnosis and subtype effect (0 gives the null dataset);
    subjects are numbered from ``first_subject``.
    """

    n_subjects: int = 40
    effect_size: float = 1.0
    seed: int = 42
    first_subject: int = 1
    unlabeled_fraction: float = 0.15
    eeg_sfreq: float = 250.0
    eeg_duration_s: float = 90.0
    bold_volumes: int = 120
    bold_tr_s: float = 2.0
    voxel_size_mm: int = 8
    n_parcels: int = 16


def subject_labels(n_subjects: int, first: int = 1) -> list[str]:
    """BIDS subject labels of the demo, e.g. ``['001', '002', ...]`` from ``first``."""
    return [f"{i:03d}" for i in range(first, first + n_subjects)]


def eeg_relpath(subject: str) -> str:
    """Path of a demo EEG header relative to the BIDS root."""
    return f"sub-{subject}/eeg/sub-{subject}_task-{EEG_TASK}_eeg.vhdr"


def bold_relpath(subject: str) -> str:
    """Path of a demo preprocessed BOLD file relative to the BIDS root (fMRIPrep-style)."""
    return (f"derivatives/fmriprep/sub-{subject}/func/sub-{subject}_task-{BOLD_TASK}"
            f"_space-{TEMPLATE}_desc-preproc_bold.nii.gz")


def confounds_relpath(subject: str) -> str:
    """Path of a demo fMRIPrep-style confounds table relative to the BIDS root."""
    return (f"derivatives/fmriprep/sub-{subject}/func/sub-{subject}_task-{BOLD_TASK}"
            "_desc-confounds_timeseries.tsv")


ATLAS_RELPATH = f"derivatives/atlas/tpl-{TEMPLATE}_atlas-demo_dseg.nii.gz"
ATLAS_LABELS_RELPATH = f"derivatives/atlas/tpl-{TEMPLATE}_atlas-demo_dseg.tsv"
TRUTH_RELPATH = "sourcedata/truth/participants_truth.tsv"


def _participants(spec: DemoSpec, rng: np.random.Generator) -> pd.DataFrame:
    n = spec.n_subjects
    n_controls = int(round(0.4 * n))
    n_patients = n - n_controls
    group = np.array(["control"] * n_controls + ["patient"] * n_patients)
    subtype = np.zeros(n, dtype=int)
    subtype[n_controls:] = 1 + np.arange(n_patients) % 2
    order = rng.permutation(n)
    group, subtype = group[order], subtype[order]
    # Sites balanced within each (group, subtype) cell so site is not a proxy for diagnosis.
    site = np.empty(n, dtype=object)
    for cell in np.unique(subtype):
        idx = np.flatnonzero(subtype == cell)
        site[idx] = [SITES[i % 2] for i in rng.permutation(len(idx))]
    severity = np.where(subtype > 0, rng.uniform(0.6, 1.4, n), 0.0)
    effect = spec.effect_size * severity
    anhedonia = 10 + 8 * effect * (subtype == 1) + 2 * effect * (subtype == 2) + rng.normal(0, 2, n)
    anxiety = 10 + 8 * effect * (subtype == 2) + 2 * effect * (subtype == 1) + rng.normal(0, 2, n)
    diagnosis = group.astype(object)
    unlabeled = rng.permutation(n)[: int(round(spec.unlabeled_fraction * n))]
    diagnosis[unlabeled] = "n/a"
    return pd.DataFrame({
        "participant_id": [f"sub-{s}" for s in subject_labels(n, spec.first_subject)],
        "diagnosis": diagnosis,
        "site": site,
        "age": np.round(rng.uniform(18, 65, n), 1),
        "sex": rng.choice(["F", "M"], n),
        "anhedonia": np.round(anhedonia, 2),
        "anxiety": np.round(anxiety, 2),
        "_group": group,
        "_subtype": subtype,
        "_severity": np.round(severity, 3),
    })


def participants_table(spec: DemoSpec) -> pd.DataFrame:
    """The demo's participants.tsv (without the planted truth), known before it is written:
    planning reads it to decide what the demo's participants can hold."""
    table = _participants(spec, np.random.default_rng(spec.seed))
    return table.drop(columns=[c for c in table if c.startswith("_")]).replace(
        {"diagnosis": {"n/a": np.nan}})


def _band_noise(rng: np.random.Generator, n_times: int, sfreq: float, center: float,
                width: float) -> np.ndarray:
    """Unit-variance Gaussian noise band-limited around ``center`` Hz (Gaussian spectral bump)."""
    spectrum = np.fft.rfft(rng.standard_normal(n_times))
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    signal = np.fft.irfft(spectrum * np.exp(-0.5 * ((freqs - center) / width) ** 2), n_times)
    return signal / signal.std()


def _pink_noise(rng: np.random.Generator, n_channels: int, n_times: int,
                sfreq: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal((n_channels, n_times)), axis=1)
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    signal = np.fft.irfft(spectrum / np.sqrt(np.maximum(freqs, 0.5)), n_times, axis=1)
    return signal / signal.std(axis=1, keepdims=True)


def simulate_eeg(row: pd.Series, spec: DemoSpec, rng: np.random.Generator) -> mne.io.RawArray:
    """One resting-state EEG recording (volts), eyes closed then eyes open, as an MNE Raw."""
    sfreq, n_times = spec.eeg_sfreq, int(spec.eeg_duration_s * spec.eeg_sfreq)
    info = mne.create_info(EEG_CHANNELS, sfreq, "eeg")
    montage = mne.channels.make_standard_montage("colin27_1020")
    pos = np.array([montage.get_positions()["ch_pos"][ch] for ch in EEG_CHANNELS])
    # Spatial topographies (unit peak): alpha posterior, theta frontal midline, beta central.
    posterior = np.clip(-pos[:, 1] / np.abs(pos[:, 1]).max(), 0, None) + 0.15
    frontal = np.exp(-np.sum((pos - [0, 0.06, 0.06]) ** 2, axis=1) / 0.004)
    central = np.exp(-np.sum((pos - [0, 0, 0.09]) ** 2, axis=1) / 0.004)
    # Volume conduction: background noise mixed by inter-electrode distance.
    distance = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    mixing = np.exp(-distance / 0.04)
    mixing /= mixing.sum(axis=1, keepdims=True)

    effect = spec.effect_size * row["_severity"]
    subtype = row["_subtype"]
    alpha_peak = rng.normal(10.0, 0.4) - 1.8 * effect * (subtype == 1)
    alpha_amp = rng.lognormal(0, 0.15) * (1 - 0.55 * effect * (subtype == 2))
    theta_amp = 0.6 * rng.lognormal(0, 0.15) * (1 + 1.0 * effect * (subtype == 1))
    beta_amp = 0.4 * rng.lognormal(0, 0.15) * (1 + 1.0 * effect * (subtype == 2))

    eyes_closed = np.arange(n_times) < n_times // 2
    alpha = _band_noise(rng, n_times, sfreq, alpha_peak, 0.8) * np.where(eyes_closed, 1.6, 0.6)
    theta = _band_noise(rng, n_times, sfreq, 6.0, 1.0)
    beta = _band_noise(rng, n_times, sfreq, 20.0, 3.0)
    data = (mixing @ _pink_noise(rng, len(EEG_CHANNELS), n_times, sfreq)
            + alpha_amp * posterior[:, None] * alpha
            + theta_amp * frontal[:, None] * theta
            + beta_amp * central[:, None] * beta)
    gain = 1.4 if row["site"] == "B" else 1.0
    line_freq = 60.0 if row["site"] == "B" else 50.0
    line = 0.3 * np.sin(2 * np.pi * line_freq * np.arange(n_times) / sfreq)
    data = 10e-6 * gain * (data + line)

    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_montage(montage)
    raw.info["line_freq"] = line_freq
    half = spec.eeg_duration_s / 2
    raw.set_annotations(mne.Annotations([0.0, half], [half, half], ["eyes_closed", "eyes_open"]))
    return raw


def demo_atlas(spec: DemoSpec) -> tuple[nib.Nifti1Image, pd.DataFrame]:
    """Parcels of the MNI152 brain mask on the demo grid, grouped into ``N_NETWORKS`` networks.

    Parcels are k-means clusters of voxel coordinates (deterministic); networks are contiguous
    groups of parcels ordered along the anterior-posterior axis.
    """
    from nilearn.datasets import load_mni152_brain_mask
    from sklearn.cluster import KMeans

    mask = load_mni152_brain_mask(resolution=spec.voxel_size_mm)
    inside = np.argwhere(mask.get_fdata() > 0)
    coords = nib.affines.apply_affine(mask.affine, inside)
    kmeans = KMeans(spec.n_parcels, n_init=4, random_state=0).fit(coords)
    order = np.argsort(kmeans.cluster_centers_[:, 1])  # posterior -> anterior
    rank = np.empty_like(order)
    rank[order] = np.arange(spec.n_parcels)
    labels = np.zeros(mask.shape, dtype=np.int16)
    labels[tuple(inside.T)] = rank[kmeans.labels_] + 1
    per_network = spec.n_parcels // N_NETWORKS
    table = pd.DataFrame({
        "index": np.arange(1, spec.n_parcels + 1),
        "name": [f"Net{1 + i // per_network}_P{1 + i % per_network}"
                 for i in range(spec.n_parcels)],
        "network": [f"Net{1 + i // per_network}" for i in range(spec.n_parcels)],
    })
    img = nib.Nifti1Image(labels, mask.affine)
    img.header.set_xyzt_units("mm")
    return img, table


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float) -> np.ndarray:
    noise = rng.standard_normal(shape)
    out = np.empty_like(noise)
    out[..., 0] = noise[..., 0]
    for t in range(1, shape[-1]):
        out[..., t] = phi * out[..., t - 1] + np.sqrt(1 - phi**2) * noise[..., t]
    return out


def simulate_bold(row: pd.Series, spec: DemoSpec, atlas: nib.Nifti1Image,
                  rng: np.random.Generator) -> tuple[nib.Nifti1Image, pd.DataFrame]:
    """Template-space BOLD (4D, int16-scaled) and its fMRIPrep-style confounds table."""
    n_vol = spec.bold_volumes
    labels = np.asarray(atlas.dataobj)
    parcels = labels[labels > 0] - 1
    network = (np.arange(spec.n_parcels) // (spec.n_parcels // N_NETWORKS)).clip(0, N_NETWORKS - 1)
    effect = spec.effect_size * row["_severity"]
    subtype = row["_subtype"]

    latent = _ar1(rng, (N_NETWORKS, n_vol), 0.6)
    within = np.full(N_NETWORKS, 1.0)
    within[0] *= 1 - 0.7 * effect * (subtype == 1)
    parcel_ts = within[network, None] * latent[network] + 0.8 * _ar1(
        rng, (spec.n_parcels, n_vol), 0.4)
    parcel_ts[network == 2] += 0.9 * effect * (subtype == 2) * latent[1]

    # Nuisance: motion (random walk, scaled per participant), WM/CSF, site-B global signal.
    motion_scale = rng.lognormal(np.log(0.04), 0.4)
    motion = np.cumsum(rng.normal(0, motion_scale, (6, n_vol)), axis=1)
    motion[3:] /= 50.0  # rotations in radians
    wm, csf = rng.standard_normal((2, n_vol))
    global_signal = (1.2 if row["site"] == "B" else 0.0) * _ar1(rng, (1, n_vol), 0.7)[0]

    n_vox = parcels.size
    voxel = (parcel_ts[parcels] + 0.9 * rng.standard_normal((n_vox, n_vol)) + global_signal
             + rng.normal(0, 1.5, (n_vox, 6)) @ (motion / motion.std(axis=1, keepdims=True))
             * motion_scale * 4
             + rng.normal(0, 0.8, (n_vox, 1)) * wm + rng.normal(0, 0.8, (n_vox, 1)) * csf)
    data = np.zeros(labels.shape + (n_vol,), dtype=np.float32)
    data[labels > 0] = 1000 + 10 * voxel
    img = nib.Nifti1Image(data, atlas.affine)
    img.set_data_dtype(np.int16)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = spec.bold_tr_s

    names = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    confounds = pd.DataFrame(motion.T, columns=names)
    for name in names:
        confounds[f"{name}_derivative1"] = confounds[name].diff()
        confounds[f"{name}_power2"] = confounds[name] ** 2
        confounds[f"{name}_derivative1_power2"] = confounds[f"{name}_derivative1"] ** 2
    translation = np.abs(np.diff(motion[:3], axis=1)).sum(axis=0)
    rotation = 50.0 * np.abs(np.diff(motion[3:], axis=1)).sum(axis=0)
    confounds["framewise_displacement"] = np.r_[np.nan, translation + rotation]
    confounds["white_matter"] = wm
    confounds["csf"] = csf
    confounds["global_signal"] = data[labels > 0].mean(axis=0)
    for base in ("white_matter", "csf", "global_signal"):
        confounds[f"{base}_derivative1"] = confounds[base].diff()
        confounds[f"{base}_power2"] = confounds[base] ** 2
        confounds[f"{base}_derivative1_power2"] = confounds[f"{base}_derivative1"] ** 2
    return img, confounds


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n")


def simulate_dataset(root: str | Path, spec: DemoSpec = DemoSpec()) -> pd.DataFrame:
    """Write the demo BIDS dataset under ``root`` and return the truth table.

    Every random draw comes from ``spec.seed``: the same spec writes the same data.
    """
    root = Path(root)
    rng = np.random.default_rng(spec.seed)
    table = _participants(spec, rng)
    _write_json(root / "dataset_description.json", {
        "Name": f"brainrep demo (effect size {spec.effect_size})",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "License": "CC0",
        "GeneratedBy": [{"Name": "brainrep simulate", "Description": json.dumps(asdict(spec))}],
    })
    atlas, atlas_table = demo_atlas(spec)
    (root / ATLAS_RELPATH).parent.mkdir(parents=True, exist_ok=True)
    atlas.to_filename(root / ATLAS_RELPATH)
    atlas_table.to_csv(root / ATLAS_LABELS_RELPATH, sep="\t", index=False)
    _write_json(root / "derivatives/fmriprep/dataset_description.json", {
        "Name": "brainrep demo: template-space BOLD with fMRIPrep-style confounds",
        "BIDSVersion": "1.9.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "brainrep simulate"}],
    })

    for row_index, row in table.iterrows():
        subject = row["participant_id"].removeprefix("sub-")
        sub_rng = np.random.default_rng([spec.seed, int(row_index)])
        raw = simulate_eeg(row, spec, sub_rng)
        bids_path = BIDSPath(subject=subject, task=EEG_TASK, datatype="eeg", root=root)
        write_raw_bids(raw, bids_path, format="BrainVision", allow_preload=True,
                       overwrite=True, verbose="error")
        bold, confounds = simulate_bold(row, spec, atlas, sub_rng)
        bold_path = root / bold_relpath(subject)
        bold_path.parent.mkdir(parents=True, exist_ok=True)
        bold.to_filename(bold_path)
        _write_json(Path(str(bold_path).replace(".nii.gz", ".json")), {
            "RepetitionTime": spec.bold_tr_s, "TaskName": BOLD_TASK, "SkullStripped": False,
            "SpatialReference": f"{TEMPLATE} (demo grid, {spec.voxel_size_mm} mm)",
        })
        confounds.to_csv(root / confounds_relpath(subject), sep="\t", index=False, na_rep="n/a")
        _write_json(root / confounds_relpath(subject).replace(".tsv", ".json"), {})

    # Written last: write_raw_bids keeps its own participants.tsv up to date as it goes.
    public = table.drop(columns=[c for c in table if c.startswith("_")])
    public.to_csv(root / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    _write_json(root / "participants.json", {
        "diagnosis": {"Description": "clinical group", "Levels": {
            "control": "healthy control", "patient": "patient"}},
        "site": {"Description": "acquisition site"},
        "age": {"Description": "age at scan", "Units": "years"},
        "sex": {"Description": "sex", "Levels": {"F": "female", "M": "male"}},
        "anhedonia": {"Description": "anhedonia symptom score", "Units": "arbitrary"},
        "anxiety": {"Description": "anxiety symptom score", "Units": "arbitrary"},
    })

    truth = table[["participant_id", "_group", "_subtype", "_severity"]].rename(
        columns=lambda c: c.lstrip("_"))
    (root / TRUTH_RELPATH).parent.mkdir(parents=True, exist_ok=True)
    truth.to_csv(root / TRUTH_RELPATH, sep="\t", index=False)
    (root / "README").write_text(
        "brainrep demo dataset, simulated by `brainrep simulate` (see brainrep.simulate).\n"
        "sourcedata/truth holds the planted groups and subtypes; analysis never reads it.\n")
    (root / ".bidsignore").write_text("sourcedata/\nderivatives/\n")
    return truth
