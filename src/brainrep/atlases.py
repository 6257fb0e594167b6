"""Atlas registry: label images with their names, or coordinate atlases read as spheres.

Sources (``fmri.atlas.source`` in the config; :data:`ATLAS_SOURCES`):

* ``demo``: the demo dataset's 16-parcel atlas;
* ``file``: a user label image plus a labels file (TSV with ``index`` and ``name`` columns, as
  TemplateFlow ships, or a neuroparc JSON with a ``rois`` mapping, as in
  ``../shared/data/atlases``);
* ``coordinates``: nilearn's bundled coordinate atlases (``Power2011``, ``Dosenbach2010``,
  ``Seitzman2018``), which need no download; each ROI is a sphere of ``sphere_radius_mm``;
* ``templateflow``: a TemplateFlow atlas (e.g. Schaefer 2018) found in ``$TEMPLATEFLOW_HOME``,
  downloaded by TemplateFlow where a network exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

COORDINATE_ATLASES = ("Power2011", "Dosenbach2010", "Seitzman2018")


class AtlasError(ValueError):
    """An atlas that cannot be used; the message names the file or key and the fix."""


@dataclass(frozen=True)
class Atlas:
    """A parcellation: a label ``image`` with ``labels`` (value -> name), or sphere centres.

    ``coordinates`` has shape (n_rois, 3), in mm in MNI space; ``radius_mm`` is the sphere
    radius. Exactly one of ``image`` and ``coordinates`` is set.
    """

    name: str
    labels: pd.Series
    image: str | None = None
    coordinates: np.ndarray | None = None
    radius_mm: float = 5.0


def read_labels(path: str | Path) -> pd.Series:
    """Parcel names indexed by label value (background 0 excluded).

    Reads a TSV with ``index`` and ``name`` columns, or a neuroparc JSON (``{"rois": {"1":
    {"label": ...}}}``); ROIs without a name are called ``roi-<value>``.
    """
    path = Path(path)
    try:
        if path.suffix == ".json":
            rois = json.loads(path.read_text())["rois"]
            labels = pd.Series({int(k): (v.get("label") or f"roi-{k}") for k, v in rois.items()})
        else:
            table = pd.read_csv(path, sep="\t")
            labels = table.set_index("index")["name"].astype(str)
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as err:
        raise AtlasError(f"{path}: cannot read atlas labels ({err!r}). Give a TSV with 'index' "
                         "and 'name' columns or a neuroparc JSON with 'rois'.") from err
    labels.index = labels.index.astype(int)
    return labels.drop(index=0, errors="ignore").sort_index()


def coordinate_atlas(name: str, radius_mm: float) -> Atlas:
    """One of nilearn's bundled coordinate atlases (no download)."""
    from nilearn import datasets

    fetchers = {"Power2011": datasets.fetch_coords_power_2011,
                "Dosenbach2010": datasets.fetch_coords_dosenbach_2010,
                "Seitzman2018": datasets.fetch_coords_seitzman_2018}
    if name not in fetchers:
        raise AtlasError(f"fmri.atlas.name {name!r} is not a coordinate atlas; choose one of "
                         f"{list(fetchers)}.")
    bunch = fetchers[name]()
    coordinates = bunch.rois[["x", "y", "z"]].to_numpy(dtype=float)
    networks = np.asarray(getattr(bunch, "networks", [""] * len(coordinates)), dtype=str)
    names = [f"{i + 1:03d}_{net}".rstrip("_") for i, net in enumerate(networks)]
    return Atlas(name, pd.Series(names, index=np.arange(1, len(names) + 1)),
                 coordinates=coordinates, radius_mm=radius_mm)


def templateflow_files(spec: dict) -> tuple[str, str]:
    """The label image and its TSV from TemplateFlow (cache first, then download if online)."""
    import os

    from templateflow import api

    query = {"atlas": spec["atlas"], "desc": spec.get("desc"), "suffix": "dseg"}
    image = api.get(spec["template"], resolution=spec.get("resolution"), extension=".nii.gz",
                    **query)
    labels = api.get(spec["template"], extension=".tsv", **query)
    if not image or not labels or isinstance(image, list) or isinstance(labels, list):
        home = os.environ.get("TEMPLATEFLOW_HOME", "~/.cache/templateflow")
        raise AtlasError(f"TemplateFlow has no single atlas for {spec} in {home}: fill "
                         "$TEMPLATEFLOW_HOME where a network exists, or fix "
                         "fmri.atlas.templateflow.")
    return str(image), str(labels)


@dataclass(frozen=True)
class AtlasSource:
    """Where an atlas comes from. ``files(spec, demo_files)`` returns the label image and
    labels file it reads (``(None, None)`` when it reads none), checked at planning;
    ``load(spec, image, labels)`` builds the :class:`Atlas` inside the parcellation job."""

    files: Callable[[dict, tuple[str, str] | None], tuple[str | None, str | None]]
    load: Callable[[dict, str | None, str | None], Atlas]


def _label_image(spec: dict, image: str | None, labels: str | None) -> Atlas:
    return Atlas(spec["name"], read_labels(labels), image=image)


#: ``fmri.atlas.source`` -> :class:`AtlasSource`; :func:`register_atlas_source` adds one.
ATLAS_SOURCES: dict[str, AtlasSource] = {}


def register_atlas_source(name: str, files: Callable, load: Callable = _label_image) -> None:
    """Add an atlas source; ``load`` defaults to a label image with its labels file."""
    ATLAS_SOURCES[name] = AtlasSource(files, load)


def _demo_files(spec: dict, demo_files: tuple[str, str] | None) -> tuple[str, str]:
    if demo_files is None:
        raise AtlasError("fmri.atlas.source is 'demo' but demo.enabled is false: choose "
                         "'file', 'coordinates' or 'templateflow'.")
    return demo_files


def _user_files(spec: dict, demo_files: tuple[str, str] | None) -> tuple[str, str]:
    if not (spec.get("image") and spec.get("labels")):
        raise AtlasError("fmri.atlas.source 'file' needs fmri.atlas.image and "
                         "fmri.atlas.labels.")
    for path in (spec["image"], spec["labels"]):
        if not Path(path).is_file():
            raise AtlasError(f"{path}: atlas file not found. Fix fmri.atlas.image/labels.")
    return spec["image"], spec["labels"]


register_atlas_source("demo", _demo_files)
register_atlas_source("file", _user_files)
register_atlas_source("templateflow", lambda spec, _: templateflow_files(spec["templateflow"]))
register_atlas_source("coordinates", lambda spec, _: (None, None),
                      lambda spec, image, labels: coordinate_atlas(spec["name"],
                                                                   spec["sphere_radius_mm"]))


def _source(spec: dict) -> AtlasSource:
    if spec["source"] not in ATLAS_SOURCES:
        raise AtlasError(f"fmri.atlas.source {spec['source']!r} is not one of "
                         f"{sorted(ATLAS_SOURCES)}; add one with register_atlas_source.")
    return ATLAS_SOURCES[spec["source"]]


def atlas_files(spec: dict, demo_files: tuple[str, str] | None) -> tuple[str | None, str | None]:
    """The image and labels files an atlas spec reads (None, None for coordinate atlases)."""
    return _source(spec).files(spec, demo_files)


def load_atlas(spec: dict, image: str | None, labels: str | None) -> Atlas:
    """The atlas a spec names, from the files :func:`atlas_files` resolved."""
    return _source(spec).load(spec, image, labels)
