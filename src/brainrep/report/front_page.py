"""The report's first page (RST): sections of sentences and tables, composed from the result
files of the ``verdict`` rule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainrep.io import read_table
from brainrep.report.sentences import (
    exclusion_sentences,
    multiview_sentences,
    prediction_sentences,
    qc_sentences,
    site_sentences,
    subtype_sentences,
    window_probe_sentences,
)
from brainrep.report.settings import VerdictSettings

#: the verdict table's columns the first page shows
SHOWN = ["target", "cv_scheme", "feature_set", "kind", "metric", "estimate", "ci_low",
         "ci_high", "chance", "p_value", "vs_baseline_p_value", "vs_confounds_p_value",
         "vs_random_init_p_value"]


def _escape(value) -> str:
    """Plain text for RST: markup characters and reference-making trailing underscores
    escaped."""
    text = "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else str(
        value)
    text = " ".join(text.split("\n"))
    for char in ("\\", "*", "`", "|", "["):
        text = text.replace(char, "\\" + char)
    return re.sub(r"(\w)_(?=\W|$)", r"\1\\_", text)


def rst_table(frame: pd.DataFrame) -> str:
    """``frame`` as an RST list-table (floats to 3 significant digits)."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [list(frame.columns), *frame.itertuples(index=False)]:
        cells = [f"{v:.3g}" if isinstance(v, float) and np.isfinite(v) else _escape(v)
                 for v in row]
        lines += [f"   * - {cells[0]}", *[f"     - {cell}" for cell in cells[1:]]]
    return "\n".join(lines) + "\n"


def rst_section(heading: str, sentences: list[str], table: pd.DataFrame | None = None,
                literal: str | None = None) -> str:
    """One section of the first page: a heading, a bullet per sentence, then an optional
    table and an optional literal block (e.g. the resolved configuration)."""
    parts = [heading, "-" * len(heading), ""]
    parts += [f"- {_escape(sentence)}" for sentence in sentences] + [""]
    if table is not None and len(table):
        parts.append(rst_table(table))
    if literal:
        parts += ["::", "", *["    " + line for line in literal.splitlines()], ""]
    return "\n".join(parts) + "\n"


def front_page(title: str, intro: str, sections: list[str]) -> str:
    """The report's first page (RST). Snakemake renders it with Jinja2 first: ``intro`` (the
    workflow description) is templated, the generated sections are kept raw."""
    title = _escape(title)
    return "\n".join([title, "=" * len(title), "", intro.strip(), "", "{% raw %}", *sections,
                      "{% endraw %}", ""])


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """How to reproduce a run: the command, the seeds, the resolved ``config`` file and the
    provenance tables (``software``, ``inputs`` with their SHA-256, ``rules`` with each
    rule's environment and container)."""

    command: str
    seeds: dict[str, int]
    config: str
    software: str
    inputs: str
    rules: str

    def section(self) -> str:
        software, inputs = read_table(self.software), read_table(self.inputs)
        return rst_section(
            "Provenance",
            [f"Reproduce: {self.command}",
             "Random seeds: " + ", ".join(f"{k} = {v}" for k, v in self.seeds.items()),
             "Software (the provenance job's environment; each rule's is pinned in envs/): "
             + ", ".join(f"{r['package']} {r['version']}" for r in software.to_dict("records")),
             f"{len(inputs)} input files, {inputs['bytes'].sum() / 1e6:.1f} MB, SHA-256 of each "
             f"in {self.inputs}.",
             f"Each rule's conda environment and container: {self.rules} (below)."],
            read_table(self.rules),
            literal="Resolved configuration:\n\n" + Path(self.config).read_text())


def _rows_of(path: str) -> pd.DataFrame:
    """A result table; empty where the stage wrote none (e.g. a site probe with one site)."""
    try:
        return read_table(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def front_page_sections(verdicts: pd.DataFrame, *, settings: VerdictSettings,
                        site_probes: list[str], window_probes: list[str],
                        subtype: list[str], multiview: list[str], feasibility: str,
                        ledger: str, eeg_qc: str | None, fmri_qc: str | None, qc_group: str,
                        provenance: Provenance) -> list[str]:
    """The first page's sections, from the verdict table and the result files: prediction,
    site, the window-level probe (files named ``modality-<m>_...``), subtyping, skipped
    stages (the ``feasibility`` table), exclusions (the ``ledger``), QC and provenance."""
    sections = []
    if len(verdicts):
        sections.append(rst_section("Prediction: what holds", prediction_sentences(verdicts) + [
            "p-values are one-sided permutation p-values, uncorrected for the number of feature "
            "sets and comparisons; read them with that in mind."], verdicts[SHOWN]))
    probes = pd.concat([_rows_of(p) for p in site_probes] or [pd.DataFrame()])
    if len(probes):
        sections.append(rst_section("Site", site_sentences(probes),
                                    probes[["target", "cv_scheme", "feature_set", "metric",
                                            "mean", "chance", "note"]]))
    if window_probes:
        table = pd.concat([read_table(p).assign(modality=Path(p).name.split("_")[0]
                                                .removeprefix("modality-"))
                           for p in window_probes])
        sections.append(rst_section("SSL encoders: window-level probe",
                                    window_probe_sentences(table)))
    subtype_lines = [line for path in subtype
                     for line in subtype_sentences(read_table(path), settings.nuisance)]
    subtype_lines += [line for path in multiview
                      for line in multiview_sentences(read_table(path))]
    stages = read_table(feasibility)
    skipped = stages[stages["runs"].astype(str) != "True"]
    if subtype_lines or len(skipped):
        sections.append(rst_section("Subtyping", subtype_lines or ["Subtyping did not run."]))
    if len(skipped):
        sections.append(rst_section("Skipped stages", [
            f"{r['stage']} ({r['item']}): {r['reason']}" for r in skipped.to_dict("records")]))
    sections.append(rst_section("Exclusions", exclusion_sentences(read_table(ledger)) + [
        f"Every recording and participant with its status and reason: {ledger}."]))
    sections.append(rst_section("Quality control", qc_sentences(
        read_table(eeg_qc) if eeg_qc else None, read_table(fmri_qc) if fmri_qc else None) + [
        f"Group QC page (metrics against thresholds): {qc_group}; one page per participant "
        f"beside it ({Path(qc_group).parent}/sub-<label>.html)."]))
    sections.append(provenance.section())
    return sections
