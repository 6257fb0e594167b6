"""Visual QC: one page per participant and a group page, built with :class:`mne.Report`.

A participant page shows, per recording, its ledger status (included, or excluded with the
reason), for EEG the PSD before and after cleaning (the figure ``eeg_preprocess`` wrote) with
bad channels, rejected windows and removed ICA components; for fMRI the framewise
displacement trace, a carpet plot of the parcel time series and the connectome. The group
page (as MRIQC's) puts every participant's QC metrics against the exclusion thresholds, with
a link to each participant page.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mne  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from brainrep.fmri.settings import QcThresholds  # noqa: E402

#: fMRI QC metrics against their ``fmri.qc`` threshold: (column, threshold key, direction).
FMRI_THRESHOLDS = (("mean_fd_mm", "max_mean_fd_mm", "max"),
                   ("fraction_censored", "max_fraction_censored", "max"),
                   ("tsnr", "min_tsnr", "min"),
                   ("fraction_empty_parcels", "max_fraction_empty_parcels", "max"))
#: EEG QC metrics shown on the group page; a recording whose every window is rejected is
#: excluded (``rejected_fraction`` at 1).
EEG_METRICS = (("rejected_fraction", 1.0, "max"), ("line_noise_ratio", None, "max"),
               ("n_bad_channels", None, "max"))

MODALITY_NAMES = {"eeg": "EEG", "func": "fMRI"}
HIDDEN_QC = ("confounds",)  # the list of confound columns (kept in the run's sidecar)


@dataclass
class Recording:
    """One recording of a participant: its ledger entry, QC row and the files to show."""

    key: str
    datatype: str
    status: str = "included"
    reason: str = ""
    message: str = ""
    qc: dict = field(default_factory=dict)
    psd_figure: str | None = None  # EEG: PSD before/after cleaning (PNG)
    timeseries: str | None = None  # fMRI: parcel time series (TSV, volumes x parcels)
    relmat: str | None = None  # fMRI: connectivity matrix (TSV, parcels x parcels)
    confounds: str | None = None  # fMRI: fMRIPrep confounds with framewise_displacement


def qc_table(recordings: list[Recording], datatype: str) -> pd.DataFrame | None:
    """The QC records of one datatype's recordings, a row each (``recording`` = key)."""
    rows = [{"recording": r.key, **r.qc} for r in recordings if r.datatype == datatype and r.qc]
    return pd.DataFrame(rows) if rows else None


def _table_html(frame: pd.DataFrame, links: dict[str, str] | None = None) -> str:
    """An escaped HTML table; ``links`` maps participant_id to a page."""
    header = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for record in frame.to_dict("records"):
        cells = []
        for column, value in record.items():
            text = "n/a" if pd.isna(value) else (f"{value:.3g}" if isinstance(value, float)
                                                  else str(value))
            text = html.escape(text)
            if links and column == "participant_id" and value in links:
                text = f'<a href="{html.escape(links[value])}">{text}</a>'
            cells.append(f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="table table-sm table-striped"><thead><tr>{header}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def fd_figure(confounds: str, limit_mm: float | None, fraction_censored: float | None):
    """Framewise displacement per volume (mm), its mean and the ``max_mean_fd_mm`` limit."""
    fd = pd.read_csv(confounds, sep="\t", na_values=["n/a"])["framewise_displacement"]
    fig, ax = plt.subplots(figsize=(8, 2.4))
    ax.plot(fd.to_numpy(), color="C0", lw=1)
    ax.axhline(np.nanmean(fd), color="C0", ls=":", lw=1, label=f"mean {np.nanmean(fd):.2f}")
    if limit_mm is not None:
        ax.axhline(limit_mm, color="C3", ls="--", lw=1, label=f"limit on the mean {limit_mm}")
    censored = "" if fraction_censored is None else f", {fraction_censored:.0%} censored"
    ax.set(xlabel="volume", ylabel="FD (mm)", title=f"framewise displacement{censored}")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def carpet_figure(timeseries: str):
    """Parcel time series (z-scored per parcel) as a carpet: parcels x kept volumes."""
    series = pd.read_csv(timeseries, sep="\t").to_numpy(dtype=float)
    z = (series - series.mean(axis=0)) / np.where(series.std(axis=0) > 0, series.std(axis=0), 1)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.imshow(z.T, aspect="auto", cmap="gray", vmin=-2, vmax=2, interpolation="nearest")
    ax.set(xlabel="volume (kept)", ylabel="parcel", title="carpet plot (z-scored parcels)")
    fig.tight_layout()
    return fig


def connectome_figure(relmat: str):
    """The run's connectivity matrix (nilearn's matrix plot)."""
    from nilearn.plotting import plot_matrix

    matrix = pd.read_csv(relmat, sep="\t", index_col=0)
    fig = plt.figure(figsize=(5, 4.5))
    plot_matrix(matrix.to_numpy(), figure=fig, vmin=-1, vmax=1, colorbar=True,
                title="connectome", labels=None)
    return fig


def participant_page(participant_id: str, recordings: list[Recording], out: str | Path, *,
                     thresholds: QcThresholds) -> None:
    """Write ``out``: the participant's recordings with their status and QC figures (the
    framewise displacement against the fMRI ``thresholds``)."""
    report = mne.Report(title=f"{participant_id}: quality control", verbose="error")
    summary = pd.DataFrame([{"recording": r.key, "datatype": r.datatype, "status": r.status,
                             "reason": r.reason or "n/a"} for r in recordings])
    report.add_html(_table_html(summary), title="Recordings and their status",
                    section="summary")
    for rec in recordings:
        section = name = f"{rec.key} ({MODALITY_NAMES.get(rec.datatype, rec.datatype)})"
        if rec.status != "included":
            report.add_html(f"<p><b>excluded</b> ({html.escape(rec.reason)}): "
                            f"{html.escape(rec.message)}</p>", title=f"{name}: excluded",
                            section=section)
        if rec.qc:
            shown = {k: v for k, v in rec.qc.items() if k not in HIDDEN_QC}
            report.add_html(_table_html(pd.DataFrame([shown])), title=f"{name}: QC",
                            section=section)
        if rec.psd_figure and Path(rec.psd_figure).stat().st_size:
            report.add_image(rec.psd_figure, title=f"{name}: PSD, raw and cleaned",
                             caption="bad channels, rejected windows and removed ICA "
                                     "components are listed in the QC table above",
                             section=section)
        figures = []
        if rec.confounds:
            figures.append(("framewise displacement", fd_figure(
                rec.confounds, thresholds.max_mean_fd_mm,
                rec.qc.get("fraction_censored"))))
        for title, path, draw in (("carpet plot", rec.timeseries, carpet_figure),
                                  ("connectome", rec.relmat, connectome_figure)):
            if path and Path(path).stat().st_size:
                figures.append((title, draw(path)))
        for title, fig in figures:
            report.add_figure(fig, title=f"{name}: {title}", section=section)
            plt.close(fig)
    report.save(out, open_browser=False, overwrite=True, verbose="error")


def _strip_figure(table: pd.DataFrame, metrics, thresholds: QcThresholds, title: str):
    """Every recording's value of each metric (one panel each), excluded ones in red, the
    exclusion threshold dashed."""
    shown = [m for m in metrics if m[0] in table]
    fig, axes = plt.subplots(1, len(shown), figsize=(3 * len(shown), 3), squeeze=False)
    rng = np.random.default_rng(0)  # horizontal jitter only
    excluded = table["status"] != "included"
    for ax, (column, limit, side) in zip(axes[0], shown, strict=True):
        values = pd.to_numeric(table[column], errors="coerce")
        jitter = rng.uniform(-0.2, 0.2, len(values))
        ax.scatter(jitter[~excluded], values[~excluded], s=12, color="C0", label="included")
        ax.scatter(jitter[excluded], values[excluded], s=12, color="C3", label="excluded")
        limit = getattr(thresholds, limit) if isinstance(limit, str) else limit
        if limit is not None:
            ax.axhline(limit, color="k", ls="--", lw=1, label=f"{side} {limit}")
        ax.set(xticks=[], title=column, xlim=(-0.5, 0.5))
        ax.legend(fontsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def group_page(ledger: pd.DataFrame, eeg_qc: pd.DataFrame | None,
               fmri_qc: pd.DataFrame | None, pages: dict[str, str], out: str | Path, *,
               thresholds: QcThresholds) -> None:
    """Write ``out``: the study's recordings with their status and QC metrics against the
    fMRI ``thresholds``, each participant linked to its page (``pages``: participant_id to a
    path relative to ``out``)."""
    report = mne.Report(title="Group quality control", verbose="error")
    recordings = ledger[ledger["level"] == "recording"]
    for datatype, qc, metrics in (("eeg", eeg_qc, EEG_METRICS),
                                  ("func", fmri_qc, FMRI_THRESHOLDS)):
        rows = recordings[recordings["datatype"] == datatype]
        if rows.empty:
            continue
        table = rows[["participant_id", "recording", "status", "stage", "reason"]]
        if qc is not None and len(qc):
            qc = qc.assign(n_bad_channels=qc["bad_channels"].fillna("").astype(str).map(
                lambda s: len([c for c in s.split(";") if c]))) if "bad_channels" in qc else qc
            keep = ["recording", *[m[0] for m in metrics if m[0] in qc]]
            table = table.merge(qc[keep], on="recording", how="left")
            if len(keep) > 1:  # parcellated inputs carry no motion or tSNR to plot
                report.add_figure(_strip_figure(table, metrics, thresholds,
                                                f"{datatype.upper()} QC metrics"),
                                  title=f"{datatype.upper()}: metrics against thresholds",
                                  section=datatype)
                plt.close("all")
        report.add_html(_table_html(table, pages), title=f"{datatype.upper()}: recordings",
                        section=datatype)
    report.save(out, open_browser=False, overwrite=True, verbose="error")
