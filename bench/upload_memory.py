"""Peak memory and CPU time of reading uploads near the caps, and of hostile uploads (budget: peak <= 10x the
file size, at least 64 MB allowed, never more than 1 GB; hostile files refused within a second or two).

Each case is generated in its real format (CSV text in several encodings, numpy.savez files, ZIPs of PNG and
JPEG images) and read through the app's reader (`core.uploads.read_upload`) in a fresh Python process, so
the peak RSS is that case's alone: the child imports everything and reads the file's bytes first (the app
holds them too), then resets the kernel's high-water mark and reads the upload. Printed per case: file size,
outcome, peak RSS increase, its ratio to the file size, and the reader's CPU seconds.

    .venv/bin/python bench/upload_memory.py [--only csv-numeric,zip-png] [--keep DIR] [--root CHECKOUT]

--root measures another checkout's core.uploads (e.g. a copy from before a change) on the same files.
Linux only (reads /proc/self/status and resets the high-water mark through /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
RNG = np.random.default_rng(0)

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy, pandas, PIL.Image, PIL.PngImagePlugin, PIL.JpegImagePlugin  # imported before the baseline
from core.uploads import UploadError, UploadLimits, read_upload

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

path, name, options = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
data = open(path, "rb").read()
read_upload(b"a,label\n1,x\n2,y\n", "warm.csv")  # first-call costs (pandas' parser setup) are not the file's
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current RSS
start = time.thread_time()
try:
    ds = read_upload(data, name, **options)
    outcome = f"read: {ds.n_samples:,} x {'x'.join(map(str, ds.input_shape))} {ds.kind}"
except UploadError as exc:
    outcome = f"refused: {exc}"
cpu = time.thread_time() - start
limits = UploadLimits()
budget = limits.memory_budget(len(data)) if hasattr(limits, "memory_budget") else 0  # older checkouts: none
print(json.dumps({"peak": status("VmHWM") - base, "cpu": cpu, "outcome": outcome, "budget": budget}))
"""


# --- generators: each writes one file and returns (file name as uploaded, reader options) --------------

def csv_numeric(path: Path):
    """200,000 rows x 40 float columns + a class column: ~48 MB, the row cap."""
    import pandas as pd

    frame = pd.DataFrame(RNG.random((200_000, 40)).round(3), columns=[f"f{i}" for i in range(40)])
    frame["label"] = np.array(["a", "b", "c"])[RNG.integers(0, 3, len(frame))]
    frame.to_csv(path, index=False, float_format="%.3f")
    return "numeric.csv", {"target": "label"}


def csv_cells(path: Path):
    """200,000 rows x 100 one-digit columns: 20,000,000 cells, the cell cap, ~40 MB."""
    digits = RNG.integers(0, 10, (200_000, 100)).astype("U1")
    digits[:, -1] = np.where(digits[:, -1] < "5", "a", "b")
    with open(path, "w") as f:
        f.write(",".join(f"c{i}" for i in range(99)) + ",label\n")
        f.writelines(",".join(row) + "\n" for row in digits)
    return "cells.csv", {"target": "label"}


def csv_text(path: Path):
    """200,000 rows: 10 numbers, 10 text columns of 8 words each (one-hot: 80 features), a class: ~30 MB."""
    import pandas as pd

    words = np.array(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"])
    frame = pd.DataFrame(RNG.random((200_000, 10)).round(2), columns=[f"n{i}" for i in range(10)])
    for i in range(10):
        frame[f"t{i}"] = words[RNG.integers(0, 8, len(frame))]
    frame["label"] = RNG.integers(0, 5, len(frame))
    frame.to_csv(path, index=False)
    return "text.csv", {"target": "label"}


def csv_utf16(path: Path):
    """A spreadsheet's "Unicode text": UTF-16 with a byte-order mark, tab-separated, ~48 MB."""
    import pandas as pd

    frame = pd.DataFrame(RNG.random((100_000, 40)).round(3), columns=[f"f{i}" for i in range(40)])
    frame["label"] = np.array(["oui", "non"])[RNG.integers(0, 2, len(frame))]
    frame.to_csv(path, index=False, sep="\t", float_format="%.3f", encoding="utf-16")
    return "unicode.txt", {"target": "label"}


def csv_cp1252(path: Path):
    """cp1252 with accented categories and a semicolon separator, ~35 MB."""
    import pandas as pd

    towns = np.array(["Orléans", "Besançon", "Nîmes", "Angoulême"])
    frame = pd.DataFrame(RNG.random((200_000, 25)).round(3), columns=[f"f{i}" for i in range(25)])
    frame["ville"] = towns[RNG.integers(0, 4, len(frame))]
    frame["label"] = np.array(["été", "hiver"])[RNG.integers(0, 2, len(frame))]
    frame.to_csv(path, index=False, sep=";", float_format="%.3f", encoding="cp1252")
    return "fr.csv", {"target": "label"}


def _save(savez, path: Path, **arrays) -> None:
    with open(path, "wb") as f:  # numpy.savez adds ".npz" to a path without it
        savez(f, **arrays)


def npz_float32(path: Path):
    """x (120,000, 100) float32 uncompressed: ~46 MB."""
    _save(np.savez, path, x=RNG.random((120_000, 100), dtype=np.float32), y=RNG.integers(0, 10, 120_000))
    return "table.npz", {}


def npz_uint8(path: Path):
    """x (16,000, 32, 32, 3) uint8 images uncompressed: ~47 MB, 188 MB as float32."""
    _save(np.savez, path, x=RNG.integers(0, 256, (16_000, 32, 32, 3), dtype=np.uint8), y=RNG.integers(0, 10, 16_000))
    return "images.npz", {}


def npz_compressed(path: Path):
    """savez_compressed of smooth uint8 images: a few MB that declare ~29 MB (x4 as float32)."""
    base = np.linspace(0, 255, 28 * 28).reshape(28, 28).astype(np.uint8)
    x = np.repeat(base[None], 12_000, axis=0) + RNG.integers(0, 4, (12_000, 28, 28), dtype=np.uint8)
    _save(np.savez_compressed, path, x=x, y=RNG.integers(0, 10, 12_000))
    return "compressed.npz", {}


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def zip_png(path: Path):
    """15,000 noisy 32x32 RGB PNGs in 10 class folders: ~48 MB."""
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(15_000):
            zf.writestr(f"set/c{i % 10}/{i}.png", _png(RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)))
    return "pngs.zip", {"image_size": 32, "color": "rgb"}


def zip_jpeg(path: Path):
    """10 phone-size photos (4000x3000 JPEG, 12 MP each) in 2 folders: ~44 MB, read at 64x64."""
    from PIL import Image

    yy, xx = np.mgrid[0:3000, 0:4000]
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(10):
            rgb = np.stack([(xx * (i + 1)) % 256, (yy * 3) % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
            rgb = rgb + RNG.integers(0, 24, rgb.shape, dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, "JPEG", quality=85)
            zf.writestr(f"c{i % 2}/{i}.jpg", buf.getvalue())
    return "photos.zip", {"image_size": 64, "color": "rgb"}


def hostile_blank_pngs(path: Path):
    """300 blank 4096x4096 PNGs, deflated: ~0.5 MB that decode to 5 G pixel values (the issue's case)."""
    blank = _png(np.zeros((4096, 4096), np.uint8))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(300):
            zf.writestr(f"c{i % 2}/{i}.png", blank)
    return "blank.zip", {}


def hostile_many_midsize(path: Path):
    """3,000 blank 2048x2048 PNGs: each under the per-image cap, 37.7 G pixel values in all."""
    blank = _png(np.zeros((2048, 2048, 3), np.uint8))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3_000):
            zf.writestr(f"c{i % 2}/{i}.png", blank)
    return "midsize.zip", {}


def hostile_members(path: Path):
    """A zip of 400,000 empty members (a central directory of ~20 MB)."""
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(400_000):
            zf.writestr(f"c{i % 2}/{i}.png", b"")
    return "members.zip", {}


def hostile_header(path: Path):
    """One 45 MB header line of 'a,a,a,...' (22 M columns)."""
    path.write_bytes(b"a," * (22 * MB) + b"label\n1,x\n")
    return "header.csv", {}


def hostile_line(path: Path):
    """A fine header, then one data line of 22 M fields."""
    path.write_bytes(b"a,label\n1,x\n" + b"1," * (22 * MB) + b"x\n")
    return "line.csv", {"target": "label"}


def hostile_quote(path: Path):
    """A quote opened on line 2 and never closed: 45 MB of short lines inside one field."""
    path.write_bytes(b"a,label\n1,\"x\n" + b"yy\n" * (15 * MB))
    return "quote.csv", {"target": "label"}


def hostile_rows(path: Path):
    """12 M rows of '1,x': 60 times the row cap."""
    path.write_bytes(b"a,label\n" + b"1,x\n" * (12 * MB))
    return "rows.csv", {"target": "label"}


def hostile_onehot(path: Path):
    """99 text columns of 20 one-letter values: 1,980 one-hot features from a 38 MB file (1.6 GB as float32)."""
    letters = np.array(list("abcdefghijklmnopqrst"))[RNG.integers(0, 20, (200_000, 99))]
    with open(path, "w") as f:
        f.write(",".join(f"t{i}" for i in range(99)) + ",label\n")
        f.writelines(",".join(row) + f",{i % 2}\n" for i, row in enumerate(letters))
    return "onehot.csv", {"target": "label"}


def hostile_npz_arrays(path: Path):
    """An .npz of 100,000 tiny arrays besides x and y."""
    arrays = {f"a{i}": np.zeros(1, np.uint8) for i in range(100_000)}
    _save(np.savez, path, x=np.zeros((4, 2)), y=np.arange(4) % 2, **arrays)
    return "arrays.npz", {}


def hostile_npz_bomb(path: Path):
    """savez_compressed of 262 MB of zeros (under the 512 MB declared cap): ~0.3 MB on disk."""
    _save(np.savez_compressed, path, x=np.zeros((16_000, 64, 64, 4), np.uint8), y=np.arange(16_000) % 2)
    return "bomb.npz", {}


CASES = {
    "csv-numeric": csv_numeric, "csv-cells": csv_cells, "csv-text": csv_text, "csv-utf16": csv_utf16,
    "csv-cp1252": csv_cp1252, "npz-float32": npz_float32, "npz-uint8": npz_uint8,
    "npz-compressed": npz_compressed, "zip-png": zip_png, "zip-jpeg": zip_jpeg,
    "hostile-blank-pngs": hostile_blank_pngs, "hostile-midsize-pngs": hostile_many_midsize,
    "hostile-zip-members": hostile_members, "hostile-csv-header": hostile_header,
    "hostile-csv-line": hostile_line, "hostile-csv-quote": hostile_quote, "hostile-csv-rows": hostile_rows,
    "hostile-csv-onehot": hostile_onehot, "hostile-npz-arrays": hostile_npz_arrays,
    "hostile-npz-bomb": hostile_npz_bomb,
}


def run_case(name: str, folder: Path, root: str) -> dict:
    path = folder / name
    upload_name, options = CASES[name](path)
    out = subprocess.run([sys.executable, "-c", CHILD, root, str(path), upload_name, json.dumps(options)],
                         capture_output=True, text=True, check=False, timeout=600)
    if out.returncode:
        raise SystemExit(f"{name}: child failed\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["size"] = path.stat().st_size
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--keep", default="", help="folder to write the generated files to (kept)")
    parser.add_argument("--root", default=str(ROOT), help="checkout whose core.uploads is measured "
                                                          "(e.g. a copy from before a change)")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    print("| case | file | outcome | peak RSS increase | x file | budget | CPU s |\n|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            r = run_case(name, folder, args.root)
            if not args.keep:
                os.unlink(folder / name)
            outcome = r["outcome"] if len(r["outcome"]) <= 150 else r["outcome"][:147] + "..."
            print(f"| {name} | {r['size'] / MB:.1f} MB | {outcome} | {r['peak'] / MB:.0f} MB | "
                  f"{r['peak'] / r['size']:.1f}x | {r['budget'] / MB:.0f} MB | {r['cpu']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
