"""SSL checkpoints on disk: loaded as data only (never code), saved atomically, a partial one
resumed only by the code that wrote it, and pretrained weights (a brainrep checkpoint, a
published model's or a plain ``state_dict``) loaded into an encoder."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import zipfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A weights file that cannot be loaded safely; the message names the file and the fix."""


def code_version() -> str:
    """Hash of the SSL package's source files and the torch version: a partial checkpoint
    written by other code is never resumed."""
    digest = hashlib.sha256(torch.__version__.encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def load_weights(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint as data only (``torch.load(weights_only=True)``: tensors and plain
    containers, never code). Raises :class:`CheckpointError` naming the file when it is
    damaged, truncated or holds anything else (e.g. pickled objects that would run code)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL (\S+)", str(err))
        raise CheckpointError(
            f"{path}: not a weights-only checkpoint: it holds pickled Python objects"
            f"{f' ({found.group(1)})' if found else ''}, which could run code, and brainrep "
            "never loads them. Save plain weights with torch.save(model.state_dict(), path) "
            "where you trust the file (a checkpoint of an older brainrep: retrain it), or get "
            "the file from its publisher again.") from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, AttributeError, TypeError,
            ValueError) as err:
        raise CheckpointError(
            f"{path}: damaged or truncated checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no detail'}). Replace the file; a "
            "damaged .partial is removed and training restarts.") from err


def atomic_save(obj: dict, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: a kill during the
    save leaves the previous file (or none), never a truncated one."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load_pretrained(encoder: torch.nn.Module, path: str | Path, name: str = "encoder") -> dict:
    """Copy weights into ``encoder`` from a brainrep checkpoint or a saved ``state_dict``.

    Matching parameters are loaded and the rest keep their initial values (e.g. a
    foundation model's classifier head); at least one parameter must match.
    """
    state = load_weights(path)
    if isinstance(state, dict) and "encoders" in state:
        state = state["encoders"][name]["state"]
    own = encoder.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    loaded = sum(v.numel() for v in matched.values())
    if loaded < 0.5 * sum(v.numel() for v in own.values()):
        raise ValueError(f"{path}: its weights cover {loaded} of the {type(encoder).__name__} "
                         "encoder's values, less than half; choose the ssl encoder, width and "
                         "embedding size it was saved with")
    encoder.load_state_dict(matched, strict=False)
    skipped = sorted(set(own) - set(matched))
    log.info("loaded %d tensors from %s; kept initial values for %s", len(matched), path, skipped)
    return {"init_checkpoint": str(path), "loaded": len(matched), "not_loaded": skipped}


def read_partial(partial: Path, device: torch.device) -> dict | None:
    """The resumable state in ``partial``, or None when there is none; a damaged one (a kill
    during an older, non-atomic save) is removed with a warning and training restarts."""
    if not partial.exists():
        return None
    try:
        return load_weights(partial, device)
    except CheckpointError as err:
        log.warning("discarding damaged partial checkpoint %s; training restarts: %s",
                    partial, err)
        partial.unlink()
        return None
