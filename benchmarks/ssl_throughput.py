"""SSL training throughput and peak memory per objective and encoder, against a plain loop.

Run from the repository root: ``python benchmarks/ssl_throughput.py [--device cpu|cuda]
[--windows N] [--batch-size B] [--epochs E] [--width W --depth D --embedding-dim K]
[--workers N]
[--cases objective:encoder ...]``. For each objective x encoder, on EEG-sized
windows (N x 19 channels x 200 samples; 1024 by default), runs in fresh processes train
the same model on the same batches for the same epochs (bfloat16 autocast on CUDA in both):

* ``brainrep``: :func:`brainrep.ssl.pretrain` on the windows memory-mapped from a ``.npy``
  store, as the workflow reads them (held-out validation, a resumable checkpoint every epoch,
  early-stopping bookkeeping, progress bar), its batches read by the training process;
* ``brainrep_wN`` (with ``--workers N``): the same with N data-loader worker processes;
* ``plain``: the bare torch loop (forward, backward, AdamW step) over the same batches, with
  every window standardized once and held in memory (on the GPU with CUDA);
* ``plain_det``: the same loop with brainrep's determinism settings
  (``torch.use_deterministic_algorithms(True)``, no cuDNN benchmark), to show their share.

Prints training windows per second (median epoch), wall time of the whole run (brainrep adds
validation and checkpoints), peak memory (resident set of the largest process, workers
included; the run's own private memory, without mapped file pages; on CUDA also allocated
tensors and utilization sampled every 0.1 s while training, which needs ``nvidia-ml-py``) and
the brainrep / plain wall-time ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time

CASES = [("contrastive", "conv"), ("contrastive", "transformer"),
         ("relative_positioning", "conv"), ("masked", "conv"), ("masked", "transformer"),
         ("generative_contrastive", "conv")]
SETTINGS = {"embedding_dim": 32, "width": 32, "depth": 2, "patch_size": 20, "epochs": 3,
            "patience": 10, "batch_size": 64, "learning_rate": 1e-3, "temperature": 0.2,
            "mask_ratio": 0.3, "contrastive_weight": 0.5, "tau_pos": 1, "tau_neg": 5, "seed": 0,
            "augmentations": ["time_mask", "channel_dropout", "frequency_shift", "ft_surrogate"]}


def _data(n_windows: int, store: str | None = None):
    """``n_windows`` standard-normal windows, 32 per participant, made 1024 at a time: in
    memory, or in a ``.npy`` ``store`` returned memory-mapped (the same values)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    shape = (n_windows, 19, 200)
    windows = (np.lib.format.open_memmap(store, "w+", np.float32, shape) if store
               else np.empty(shape, np.float32))
    for start in range(0, n_windows, 1024):
        part = windows[start:start + 1024]
        part[:] = rng.standard_normal(part.shape)
    if store:
        windows.flush()
        windows = np.load(store, mmap_mode="r")
    participants = np.arange(n_windows) // 32
    table = pd.DataFrame({"participant_id": [f"sub-{i:04d}" for i in participants],
                          "window": np.arange(n_windows) % 32})
    return windows, table


class _AnonymousMemorySampler(threading.Thread):
    """Peak private (anonymous) resident memory of this process, MiB, sampled every 0.05 s:
    unlike the resident set it leaves out pages of memory-mapped files, which the kernel
    reclaims under pressure."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = 0.0, threading.Event()

    def sample(self) -> None:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    self.peak = max(self.peak, int(line.split()[1]) / 1024)

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.sample()

    def stop(self) -> float:
        self.done.set()
        self.join()
        self.sample()
        return self.peak


class _UtilizationSampler(threading.Thread):
    """Mean GPU utilization (%) over the samples taken every 0.1 s until ``stop``."""

    def __init__(self, torch):
        super().__init__(daemon=True)
        self.torch, self.samples, self.done = torch, [], threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            try:
                self.samples.append(self.torch.cuda.utilization())
            except Exception:  # needs nvidia-ml-py
                return

    def stop(self) -> float:
        self.done.set()
        self.join()
        return sum(self.samples) / len(self.samples) if self.samples else float("nan")


def run_case(mode: str, objective: str, encoder: str, device: str, n_windows: int,
             batch_size: int, epochs: int, sizes: dict) -> dict:
    """One measurement, in this process (called in a child process by ``main``)."""
    import numpy as np
    import torch

    from brainrep.ssl import SSLSettings, pretrain, train
    from brainrep.ssl.pools import Batch

    settings = SSLSettings(**SETTINGS | sizes | {"objective": objective, "encoder": encoder,
                                                 "device": device, "batch_size": batch_size,
                                                 "epochs": epochs})
    sampler = _UtilizationSampler(torch) if device == "cuda" else None
    anonymous = _AnonymousMemorySampler()
    if mode.startswith("brainrep"):
        workers = int(mode.removeprefix("brainrep").removeprefix("_w") or 0)
        with tempfile.TemporaryDirectory() as folder:
            stored, table = _data(n_windows, f"{folder}/windows.npy")
            for thread in filter(None, (sampler, anonymous)):
                thread.start()
            start = time.perf_counter()  # not the writing of the store
            history = pretrain(stored, table, f"{folder}/model.pt", settings=settings,
                               workers=workers)
        rate = float(np.median(history["windows_per_s"]))
    else:
        windows, table = _data(n_windows)
        for thread in filter(None, (sampler, anonymous)):
            thread.start()
        start = time.perf_counter()
        model = train.build_objective(settings, windows.shape[1], windows.shape[2])
        pool, _ = train.window_pool(windows, table)
        participants = table["participant_id"].to_numpy()
        held = np.isin(participants, train.held_out_participants(participants, 0.15, 0))
        # the windows brainrep trains on, standardized once and held on the device
        pool = pool.subset(~held).to(torch.device(device))
        if mode == "plain_det":
            train.determinism(0, torch.device(device))
        model.to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate)
        rates = []
        for epoch in range(settings.epochs):
            generator = torch.Generator().manual_seed(epoch)
            tic = time.perf_counter()
            for index in train._batches(len(pool), settings.batch_size, generator):
                batch = Batch(index, pool.batch(index, torch.device(device)))
                with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                    loss = model.loss(pool, batch, generator)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if device == "cuda":
                torch.cuda.synchronize()
            rates.append(len(pool) / (time.perf_counter() - tic))
        rate = float(np.median(rates))
    wall = time.perf_counter() - start
    peak = max(resource.getrusage(who).ru_maxrss / 1024
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    row = {"windows_per_s": rate, "wall_s": wall, "peak_rss_mib": peak,
           "peak_anonymous_mib": anonymous.stop()}
    if sampler:
        row |= {"gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20,
                "gpu_utilization_pct": sampler.stop()}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--windows", type=int, default=1024, help="training windows")
    parser.add_argument("--batch-size", type=int, default=SETTINGS["batch_size"])
    parser.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    for size in ("width", "depth", "embedding_dim"):
        parser.add_argument(f"--{size.replace('_', '-')}", type=int, default=SETTINGS[size])
    parser.add_argument("--workers", type=int, default=0,
                        help="also run brainrep with this many data-loader workers")
    parser.add_argument("--cases", nargs="+", default=[f"{o}:{e}" for o, e in CASES],
                        help="objective:encoder pairs")
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    model_sizes = {k: getattr(args, k) for k in ("width", "depth", "embedding_dim")}
    sizes = ["--windows", str(args.windows), "--batch-size", str(args.batch_size),
             "--epochs", str(args.epochs), "--width", str(args.width), "--depth",
             str(args.depth), "--embedding-dim", str(args.embedding_dim)]
    if args.case:
        print(json.dumps(run_case(*args.case, args.device, args.windows, args.batch_size,
                                  args.epochs, model_sizes)))
        return
    print(f"{args.windows} windows of 19 x 200, batch {args.batch_size}, {args.epochs} epochs, "
          f"device {args.device}, encoder sizes {model_sizes}")
    print(f"{'objective':<24}{'encoder':<13}{'run':<10}{'windows/s':>10}{'wall s':>8}"
          f"{'peak MiB':>10}{'anon MiB':>10}{'gpu MiB':>9}{'gpu %':>7}{'wall ratio':>11}")
    for objective, encoder in (case.split(":") for case in args.cases):
        results = {}
        workers = [f"brainrep_w{args.workers}"] if args.workers else []
        for mode in ("plain", "plain_det", "brainrep", *workers):
            child = subprocess.run([sys.executable, __file__, "--device", args.device, *sizes,
                                    "--case", mode, objective, encoder],
                                   capture_output=True, text=True, check=True)
            results[mode] = json.loads(child.stdout.strip().splitlines()[-1])
        for mode, row in results.items():
            ratio = row["wall_s"] / results["plain"]["wall_s"]
            print(f"{objective:<24}{encoder:<13}{mode:<10}{row['windows_per_s']:>10.0f}"
                  f"{row['wall_s']:>8.1f}{row['peak_rss_mib']:>10.0f}"
                  f"{row['peak_anonymous_mib']:>10.0f}"
                  f"{row.get('gpu_peak_mib', float('nan')):>9.0f}"
                  f"{row.get('gpu_utilization_pct', float('nan')):>7.0f}{ratio:>11.2f}")


if __name__ == "__main__":
    main()
