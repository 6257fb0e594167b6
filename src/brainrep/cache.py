"""A cache of everything jobs would download, for compute nodes without a network.

``snakemake prefetch`` (on a machine with a network, e.g. a login node) fills ``cache.root``
with the TemplateFlow atlas, the fMRIPrep image and pretrained SSL weights that the
configuration names, and writes ``manifest.tsv`` with each file's SHA-256. With
``cache.offline: true`` the workflow resolves those items from the cache alone before any job
is planned, checks each file against the manifest, and stops naming every missing or altered
item instead of letting a job time out on a download.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from brainrep.io import check_sha256, sha256

MANIFEST = "manifest.tsv"
COLUMNS = ["kind", "name", "file", "sha256", "bytes", "source"]


class CacheError(RuntimeError):
    """An item is missing from the offline cache or differs from what was prefetched."""


@dataclass(frozen=True)
class Item:
    """One thing to cache. ``kind``: ``templateflow`` (``source`` is the JSON query of
    ``fmri.atlas.templateflow``), ``container`` (a ``docker://`` URI, or a local image) or
    ``weights`` (an http(s) URL or a local file, with its expected ``sha256``)."""

    kind: str
    name: str
    source: str
    sha256: str | None = None


#: a weights item -> the config keys of its file and of the file's SHA-256
WEIGHTS_SETTINGS = {
    **{f"ssl-{m}-init": (("ssl", m, "init_checkpoint"), ("ssl", m, "init_checkpoint_sha256"))
       for m in ("eeg", "fmri")},
    "ssl-foundation": (("ssl", "foundation", "weights"), ("ssl", "foundation", "sha256")),
}


def required_items(config: dict) -> list[Item]:
    """What the validated ``config`` would fetch from the network (a Docker engine keeps its
    own images, so the fMRIPrep image is cached for Apptainer only)."""
    items = []
    fmri = config["fmri"]
    if fmri["enabled"] and fmri["atlas"]["source"] == "templateflow":
        items.append(Item("templateflow", f"atlas-{fmri['atlas']['name']}",
                          json.dumps(fmri["atlas"]["templateflow"], sort_keys=True)))
    if fmri["enabled"] and fmri["fmriprep"]["run"] and fmri["fmriprep"]["engine"] == "apptainer":
        version = fmri["fmriprep"]["version"]
        items.append(Item("container", f"fmriprep-{version}",
                          fmri["fmriprep"]["image"] or f"docker://nipreps/fmriprep:{version}"))
    for name, (file_key, sha256_key) in WEIGHTS_SETTINGS.items():
        section = config["ssl"][file_key[1]]
        if section[file_key[2]] and (name != "ssl-foundation" or section["model"]):
            items.append(Item("weights", name, section[file_key[2]], section[sha256_key[2]]))
    return items


def _fetch(item: Item, folder: Path) -> list[Path]:
    """Download or copy ``item`` into ``folder``; its files."""
    folder.mkdir(parents=True, exist_ok=True)
    if item.kind == "templateflow":
        from brainrep.atlases import templateflow_files

        sources = templateflow_files(json.loads(item.source))
        return [Path(shutil.copy(s, folder / Path(s).name)) for s in sources]
    if item.kind == "container" and item.source.startswith("docker://"):
        target = folder / f"{item.name}.sif"
        if shutil.which("apptainer") is None:
            raise CacheError(f"prefetching {item.source} needs apptainer on this machine "
                             "(apptainer pull); or set fmri.fmriprep.image to a local .sif")
        subprocess.run(["apptainer", "pull", str(target), item.source], check=True)
        return [target]
    key = ".".join(WEIGHTS_SETTINGS[item.name][1]) if item.kind == "weights" else ""
    if item.source.startswith(("http://", "https://")):
        if not item.sha256:
            raise CacheError(f"{item.source}: set {key} to the SHA-256 its publisher gives "
                             "before brainrep downloads it; a download is never trusted "
                             "unchecked")
        target = folder / Path(item.source.split("?")[0]).name
        partial = target.with_name(f".{target.name}.partial")
        with urllib.request.urlopen(item.source, timeout=60) as response, \
                open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
        try:
            check_sha256(partial, item.sha256, key)
        except ValueError as err:
            partial.unlink()
            raise CacheError(f"download of {item.source} refused: {err}") from err
        partial.replace(target)
        return [target]
    source = Path(item.source.removeprefix("file://"))
    if not source.is_file():
        raise CacheError(f"{item.kind} {item.name}: {source} not found")
    if item.kind == "weights":
        check_sha256(source, item.sha256, key)
    return [Path(shutil.copy(source, folder / source.name))]


def prefetch(items: list[Item], root: str | Path) -> pd.DataFrame:
    """Fetch every item into ``root/<kind>/<name>/`` and write ``root/manifest.tsv``."""
    root = Path(root)
    rows = []
    for item in items:
        for path in _fetch(item, root / item.kind / item.name):
            rows.append({"kind": item.kind, "name": item.name,
                         "file": str(path.relative_to(root)), "sha256": sha256(path),
                         "bytes": path.stat().st_size, "source": item.source})
    manifest = pd.DataFrame(rows, columns=COLUMNS)
    partial = root / f"{MANIFEST}.partial"
    manifest.to_csv(partial, sep="\t", index=False)
    partial.replace(root / MANIFEST)
    return manifest


def resolve(items: list[Item], root: str | Path, verify: bool = True) -> dict[Item, list[Path]]:
    """The cached files of every item, checked against the manifest (size, and SHA-256 when
    ``verify``). Raises :class:`CacheError` listing every item that is missing or altered."""
    root = Path(root)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise CacheError(f"cache.offline is true but {manifest_path} does not exist: run "
                         "`snakemake prefetch` with the same configuration on a machine with a "
                         "network, then copy the cache here")
    manifest = pd.read_csv(manifest_path, sep="\t", dtype={"sha256": str})
    found, problems = {}, []
    for item in items:
        rows = manifest[(manifest["kind"] == item.kind) & (manifest["name"] == item.name)
                        & (manifest["source"] == item.source)]
        if rows.empty:
            problems.append(f"{item.kind} {item.name!r} from {item.source} is not in the cache")
            continue
        paths = []
        for row in rows.itertuples():
            path = root / row.file
            if not path.is_file() or path.stat().st_size != row.bytes or (
                    verify and sha256(path) != row.sha256):
                problems.append(f"{path} is missing or differs from the prefetched file")
            paths.append(path)
        found[item] = paths
    if problems:
        raise CacheError(f"offline cache {root}: " + "; ".join(problems) + ". Run `snakemake "
                         "prefetch` with this configuration where a network exists.")
    return found


def offline_config(config: dict) -> dict:
    """``config`` rewritten to read every downloadable item from ``cache.root`` only.

    A TemplateFlow atlas becomes a ``file`` atlas, the fMRIPrep image, SSL initial weights and
    a foundation model's weights become the cached files. Containers are checked by size
    (hashing several GB at every invocation is too slow); ``prefetch`` recorded their
    SHA-256.
    """
    if not config["cache"]["root"]:
        raise CacheError("cache.offline is true but cache.root is not set: name the folder "
                         "that `snakemake prefetch` filled")
    items = required_items(config)
    found = resolve([i for i in items if i.kind != "container"], config["cache"]["root"])
    found |= resolve([i for i in items if i.kind == "container"], config["cache"]["root"],
                     verify=False)
    for item, paths in found.items():
        if item.kind == "templateflow":
            image = next(str(p) for p in paths if p.name.endswith(".nii.gz"))
            labels = next(str(p) for p in paths if p.suffix == ".tsv")
            config["fmri"]["atlas"] |= {"source": "file", "image": image, "labels": labels}
        elif item.kind == "container":
            config["fmri"]["fmriprep"]["image"] = str(paths[0])
        else:
            _, section, key = WEIGHTS_SETTINGS[item.name][0]
            config["ssl"][section][key] = str(paths[0])
    return config
