"""Peak memory of the training process on the whole of CIFAR-10 through the app (issue 14: goal <= 1.5 GB).

Writes a CIFAR-10 cache of random images in the real layout and format into a temporary KERAS_HOME
(`cifar-10-batches-py-target/cifar-10-batches-py/`: five training batches of 10,000 images and a test batch
of 10,000, each a pickled dict with b"data" a uint8 (n, 3072) array and b"labels", plus batches.meta, as
core.datasets._read_cifar_pickle and Keras read them), loads it as the Data page does (core.datasets.load:
the whole set, uint8), and trains the Article CNN (Adam, batch 32, official split: 42,500 training, 7,500
validation, 10,000 test images) for one epoch through `JobManager(runner="process")`, the app's default:
a spawned worker receives the dataset, splits it, fits, evaluates, predicts the test set and saves the
model and predictions.

The figure is the training process's peak resident memory: the largest ru_maxrss of this process's reaped
children once the manager has shut down (the training process; the others are the next warm worker, which
only imports TensorFlow, and multiprocessing's resource tracker). The VmHWM of the training pid, polled
while it runs, is printed beside it as a check, with the estimate the Data page shows
(core.datasets.memory_need) and this process's own peak (the app server's share: the dataset as loaded).
MB and GB are 1024^2 and 1024^3 bytes. Random pixels use exactly the memory real ones do.

    .venv/bin/python bench/cifar_memory.py [--epochs 1]    (~1 minute per epoch on 2 cores, plus set-up)
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL_BYTES = 1.5 * 2**30
_NAMES = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                               "truck")]


def write_cifar10(home: Path, per_batch: int = 10_000, seed: int = 0) -> Path:
    """Six batch files and batches.meta under <home>/datasets, where Keras 3 unpacks CIFAR-10."""
    folder = home / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, per_batch).tolist(),
                 b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": _NAMES, b"num_vis": 3072}, protocol=4))
    return folder


def _vm_hwm(pid: int) -> int | None:
    """Peak resident bytes of a live process (VmHWM), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cifar-memory-"))
    try:
        _measure(tmp, args.epochs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _measure(tmp: Path, epochs: int) -> None:
    os.environ["KERAS_HOME"] = str(tmp / "keras-home")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"load averages at start: {os.getloadavg()}")
    started = time.perf_counter()
    write_cifar10(Path(os.environ["KERAS_HOME"]))
    print(f"wrote a synthetic CIFAR-10 cache in {time.perf_counter() - started:.1f} s under {tmp}")

    from core.datasets import TENSORFLOW_BYTES, load, memory_need
    from core.jobs import JobManager, TrainRequest
    from core.runs import RunStore
    from core.specs import analyse_spec, preset
    from core.training import TrainConfig

    dataset = load("cifar10", download=False)
    spec = preset("Article CNN", dataset)
    config = TrainConfig(optimizer="adam", batch_size=32, epochs=epochs, split="official")
    analysis = analyse_spec(spec, dataset.input_shape, dataset.n_classes, dataset.kind)
    values = math.prod(dataset.input_shape) + sum(math.prod(r.output_shape) for r in analysis.rows)
    estimate = memory_need(dataset, batch_size=config.batch_size, values_per_sample=values,
                           params=analysis.total_params)
    print(f"dataset: {dataset.n_samples:,} images, x {dataset.x.dtype} {_mb(dataset.x.nbytes)}; "
          f"{spec.name}, {analysis.total_params:,} parameters; {epochs} epoch(s), batch {config.batch_size}")

    manager = JobManager(RunStore(tmp / "runs"), runner="process")
    submitted = time.perf_counter()
    run_id = manager.submit(TrainRequest(dataset, spec, config, label="cifar memory bench"))
    polled: dict[int, int] = {}
    while (snap := manager.snapshot(run_id)).active:
        for pid in manager.training_pids():
            if (hwm := _vm_hwm(pid)) is not None:
                polled[pid] = max(polled.get(pid, 0), hwm)
        time.sleep(0.1)
    took = time.perf_counter() - submitted
    manager.shutdown()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    print(f"run {run_id}: {snap.state} in {took:.1f} s ({snap.message})")
    print(f"training process peak RSS: {_mb(peak)} = {peak / 2**30:.2f} GB; goal 1.5 GB: "
          f"ratio {peak / GOAL_BYTES:.2f} ({'met' if peak <= GOAL_BYTES else 'NOT met'})")
    print(f"  polled VmHWM of the training pid, last seen: {', '.join(_mb(v) for v in polled.values()) or 'none'}")
    print(f"  the Data page's estimate: {_mb(estimate.training_process)} (TensorFlow {_mb(TENSORFLOW_BYTES)}, "
          f"data 2 x {_mb(estimate.data)}, batch {_mb(estimate.batch)}, model {_mb(estimate.model)})")
    print(f"this process (the app server's share: the dataset as loaded) peak RSS: {_mb(own)}")
    print(f"load averages at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
