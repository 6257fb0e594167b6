#!/usr/bin/env bash
# braindecode (its published EEG foundation models: LaBraM, CBraMod, EEGPT, BIOT, BENDR,
# SignalJEPA...) beside the pinned CPU torch 2.13.0. Snakemake runs this after creating
# envs/ssl.yaml (--sdm conda); with the README's virtual environment, run it once after the
# pip install (the test command does).
#
# braindecode requires torchaudio, and the only torchaudio wheels in the registry are CUDA
# builds whose compiled extension is built against torch 2.11's C++ interface and CUDA
# libraries: it cannot load beside the pinned CPU torch 2.13.0 (libc10_cuda.so is missing).
# Both are therefore installed without their dependencies (those are in envs/ssl.yaml and the
# 'foundation' extra; the versions are constraints.txt's), and the extension's library files
# are removed: torchaudio then runs without it, a mode it supports
# (torchaudio._extension._load_lib returns False when the files are absent), and the functions
# braindecode's models call (filtering, resampling, spectrograms) are pure torch.
set -euo pipefail
python -m pip install --quiet --no-deps torchaudio==2.11.1 braindecode==1.8.1  # constraints.txt
python - <<'PY'
import importlib.util
from pathlib import Path

lib = Path(importlib.util.find_spec("torchaudio").origin).parent / "lib"
for library in lib.glob("*.so"):
    library.unlink()
import braindecode.models  # noqa: E402  (fails here, not in a job, if anything is missing)

print(f"braindecode {braindecode.__version__} loads; brainrep runs its Labram and CBraMod "
      f"({braindecode.models.Labram.__name__}, {braindecode.models.CBraMod.__name__})")
PY
