"""Safe readers for user uploads: CSV (tabular), NPZ (arrays x, y) and ZIP of image folders.

Uploads are hostile input on a shared server (DESIGN.md §6): every reader caps bytes before parsing,
never unpickles (`allow_pickle=False`, object dtypes refused from the .npy header), never extracts a ZIP
to disk, checks an image's pixel count before decoding it, and turns every problem into an `UploadError`
whose message names the file and what is allowed. The client's file name is only ever shown, sanitised by
`safe_label`, never used as a path.
"""

from __future__ import annotations

import csv
import io
import math
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

import numpy as np
import pandas as pd

from core.datasets import Dataset, DatasetError

__all__ = [
    "CSV_ENCODINGS",
    "CsvInfo",
    "UploadError",
    "UploadLimits",
    "inspect_csv",
    "read_csv",
    "read_image_zip",
    "read_npz",
    "read_upload",
    "safe_label",
    "upload_kind",
]

CSV_ENCODINGS = ("utf-8", "cp1252", "latin-1")  # tried in this order (utf-8-sig when a BOM is present)
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
_MB = 1024 * 1024


class UploadError(DatasetError):
    """An upload was refused; the message names the file and the problem, for the user."""


@dataclass(frozen=True)
class UploadLimits:
    """Caps applied by every reader (the server's maxUploadSize is only the outer fence)."""

    max_bytes: int = 50 * _MB  # size of the uploaded file itself (matches server.maxUploadSize = 50)
    max_rows: int = 200_000  # CSV data rows
    max_columns: int = 500  # CSV columns before one-hot encoding
    max_categories: int = 20  # distinct values a text feature may have and still be one-hot encoded
    max_features: int = 2_000  # CSV features after one-hot encoding
    max_classes: int = 200  # distinct target values (classification only)
    max_array_bytes: int = 512 * _MB  # NPZ: declared size of all arrays; ZIP: size of the decoded images
    max_members: int = 20_000  # ZIP / NPZ members
    max_total_bytes: int = 512 * _MB  # ZIP: declared uncompressed size of all members
    max_ratio: float = 100.0  # ZIP: uncompressed / compressed size of one member (zip bombs)
    max_pixels: int = 4096 * 4096  # one image's width x height, checked before decoding


@dataclass(frozen=True, eq=False)
class CsvInfo:
    """What `inspect_csv` found, so the page can offer the target column before building the Dataset."""

    label: str  # sanitised file name, safe to show
    encoding: str  # the encoding that decoded the file
    separator: str  # the detected field separator
    columns: tuple[str, ...]  # header names, made unique
    n_rows: int  # data rows
    preview: pd.DataFrame = field(repr=False)  # first rows, as text
    suggested_target: str = ""  # the last column with few distinct values, else the last column
    notes: tuple[str, ...] = ()  # what was tried or adjusted (encodings that failed, dropped empty field)


def safe_label(filename: str | None) -> str:
    """The client's file name reduced to a short plain label: base name, safe characters only."""
    base = re.split(r"[\\/]", str(filename or ""))[-1]
    label = re.sub(r"[^A-Za-z0-9._ ()-]+", "_", base).strip(" ._")[:60]
    return label or "upload"


def upload_kind(filename: str | None) -> Literal["csv", "npz", "zip"]:
    """Which reader handles a file, from its extension (an extension check only; readers verify content)."""
    suffix = PurePosixPath(str(filename or "").replace("\\", "/")).suffix.lower()
    kinds = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".npz": "npz", ".zip": "zip"}
    if suffix not in kinds:
        raise UploadError(f"{safe_label(filename)}: unsupported file type {suffix or '(none)'!r}; "
                          f"upload a .csv, .npz or .zip")
    return kinds[suffix]  # type: ignore[return-value]


def _looks_like(data: bytes) -> str:
    """What the first bytes say the file really is, as a hint for a wrong extension ('' when unsure)."""
    head = data[:8]
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return " It looks like a ZIP archive: name it .npz if it holds NumPy arrays, .zip if it holds images."
    if head.startswith(b"\x93NUMPY"):
        return " It looks like a single .npy array: save x and y together with numpy.savez to an .npz."
    if head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8\xff"):
        return " It looks like a single image: put images in one folder per class and upload a .zip of them."
    try:
        text = data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return ""
    if "\x00" not in text and ("," in text or ";" in text or "\t" in text) and "\n" in text:
        return " It looks like text: if it is a table, name it .csv."
    return ""


def _check_size(data: bytes, label: str, limits: UploadLimits) -> None:
    if len(data) > limits.max_bytes:
        raise UploadError(f"{label} is {len(data) / _MB:.1f} MB; the limit is {limits.max_bytes / _MB:.0f} MB")
    if not data:
        raise UploadError(f"{label} is empty")


# --- CSV ----------------------------------------------------------------------------------------------

def _decode(data: bytes, label: str) -> tuple[str, str, list[str]]:
    """Text, the encoding that worked, and notes on those that failed."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data.decode("utf-8-sig"), "utf-8-sig", []
    notes = []
    for enc in CSV_ENCODINGS:
        try:
            return data.decode(enc), enc, notes
        except UnicodeDecodeError as exc:
            notes.append(f"not {enc} (byte 0x{data[exc.start]:02x} at position {exc.start})")
    raise UploadError(f"{label}: could not decode the text ({'; '.join(notes)})")  # latin-1 never fails


def _separator(text: str) -> str:
    """csv.Sniffer on the first lines; otherwise the candidate that splits the header most."""
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        header = text.splitlines()[0] if text else ""
        return max(",;\t|", key=header.count)


def _rows(data: bytes, label: str, limits: UploadLimits) -> tuple[list[str], list[list[str]], str, str, list[str]]:
    """Header, data rows (all the same width), encoding, separator and notes; ragged files are refused."""
    _check_size(data, label, limits)
    text, encoding, notes = _decode(data, label)
    if not text.strip():
        raise UploadError(f"{label} is empty")
    if "\x00" in text:
        raise UploadError(f"{label} is not CSV text (it contains NUL bytes, so it is a binary file)."
                          + _looks_like(data))
    sep = _separator(text)
    try:
        rows = [r for r in csv.reader(io.StringIO(text), delimiter=sep) if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise UploadError(f"{label}: not valid CSV ({exc})") from exc
    header, body = [c.strip() for c in rows[0]], rows[1:]
    if not body:
        raise UploadError(f"{label} has a header but no data rows")
    if len(body) > limits.max_rows:
        raise UploadError(f"{label} has {len(body):,} rows; the limit is {limits.max_rows:,}")
    if len(header) > limits.max_columns:
        raise UploadError(f"{label} has {len(header)} columns; the limit is {limits.max_columns}")
    widths = {len(r) for r in body}
    if widths == {len(header) + 1} and all(not r[-1].strip() for r in body):
        body = [r[:-1] for r in body]  # a separator at the end of every data line
        notes.append("dropped an empty field at the end of every row")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise UploadError(f"{label}: line {i + 2} has {len(r)} fields but the header has {len(header)} "
                              f"(separator {sep!r}); every row needs one value per column")
    if len(header) < 2:
        raise UploadError(f"{label} has one column (separator {sep!r}); it needs feature columns and a "
                          f"target column")
    names: list[str] = []
    for i, h in enumerate(header):
        name = h or f"column_{i + 1}"
        while name in names:
            name += "_"
        names.append(name)
    return names, body, encoding, sep, notes


_MISSING = {"", "nan", "na", "n/a", "null", "none"}  # read as missing numbers, then refused as not finite


def _numeric(col: pd.Series, sep: str) -> pd.Series | None:
    """The column as floats (decimal commas accepted in ';'-separated files), or None if it is text."""
    filled = col.str.strip()
    missing = filled.str.lower().isin(_MISSING)
    for text in (filled, filled.str.replace(",", ".", regex=False)) if sep != "," else (filled,):
        values = pd.to_numeric(text.mask(missing), errors="coerce")
        if not (values.isna() & ~missing).any():
            return values
    return None


def inspect_csv(data: bytes, filename: str, limits: UploadLimits = UploadLimits()) -> CsvInfo:
    """Step one of a CSV upload: encoding, separator, columns and a preview, so the user picks the target."""
    label = safe_label(filename)
    names, body, encoding, sep, notes = _rows(data, label, limits)
    frame = pd.DataFrame(body, columns=names, dtype=str)
    suggested = names[-1]
    for name in reversed(names):
        if frame[name].str.strip().nunique() <= min(limits.max_classes, 50):
            suggested = name
            break
    if encoding != "utf-8":
        notes.append(f"read as {encoding}")
    return CsvInfo(label, encoding, sep, tuple(names), len(body), frame.head(10), suggested, tuple(notes))


def read_csv(data: bytes, filename: str, target: str, limits: UploadLimits = UploadLimits()) -> Dataset:
    """Step two: a tabular Dataset with `target` as the class column; text features one-hot encoded."""
    label = safe_label(filename)
    names, body, encoding, sep, notes = _rows(data, label, limits)
    frame = pd.DataFrame(body, columns=names, dtype=str)
    if target not in names:
        raise UploadError(f"{label}: target column {target!r} is not in the file; columns: {', '.join(names)}")
    labels = frame[target].str.strip()
    missing = np.flatnonzero((labels == "").to_numpy())
    if missing.size:
        raise UploadError(f"{label}: target column {target!r} is empty in {missing.size} row(s), first at "
                          f"line {missing[0] + 2}; every row needs a class")
    classes = sorted(labels.unique(), key=lambda v: (_as_float(v) is None, _as_float(v) or 0.0, v))
    if len(classes) < 2:
        raise UploadError(f"{label}: target column {target!r} has a single value {classes[0]!r}; "
                          f"classification needs at least two classes")
    if len(classes) > limits.max_classes:
        raise UploadError(f"{label}: target column {target!r} has {len(classes)} distinct values; at most "
                          f"{limits.max_classes} classes are allowed (is it a class column?)")
    y = pd.Categorical(labels, categories=classes).codes.astype(np.int64)
    parts, feature_names = [], []
    for name in names:
        if name == target:
            continue
        values = _numeric(frame[name], sep)
        if values is None:
            text = frame[name].str.strip()
            as_number = pd.to_numeric(text, errors="coerce")
            if as_number.notna().mean() >= 0.5:  # mostly numbers: the odd text value is a data error
                bad = np.flatnonzero(as_number.isna().to_numpy() & (text != "").to_numpy())
                raise UploadError(f"{label}: column {name!r} is numeric except {bad.size} value(s) such as "
                                  f"{text.iloc[bad[0]][:30]!r} at line {bad[0] + 2}; fix or remove them")
            levels = sorted(text.unique())
            if len(levels) > limits.max_categories:
                example = text[pd.to_numeric(text, errors="coerce").isna()].iloc[0]
                raise UploadError(f"{label}: column {name!r} is not numeric (e.g. {example[:30]!r}) and has "
                                  f"{len(levels)} distinct values; text columns are one-hot encoded only "
                                  f"up to {limits.max_categories} values: drop or encode it")
            if "" in levels:
                row = int(np.flatnonzero((text == "").to_numpy())[0])
                raise UploadError(f"{label}: column {name!r} has an empty value at line {row + 2}")
            onehot = pd.get_dummies(pd.Categorical(text, categories=levels)).to_numpy(dtype=np.float32)
            parts.append(onehot)
            feature_names += [f"{name}={v}" for v in levels]
            notes.append(f"one-hot encoded {name!r} ({len(levels)} values)")
            continue
        arr = values.to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            what = "missing" if np.isnan(arr[bad[0]]) else "infinite"
            raise UploadError(f"{label}: column {name!r} has {bad.size} missing or infinite value(s), first "
                              f"{what} at line {bad[0] + 2}; features must be finite numbers")
        if np.abs(arr).max(initial=0) > np.finfo(np.float32).max:
            raise UploadError(f"{label}: column {name!r} has values too large for float32")
        parts.append(arr[:, None].astype(np.float32))
        feature_names.append(name)
    n_features = sum(p.shape[1] for p in parts)
    if n_features > limits.max_features:
        raise UploadError(f"{label}: {n_features} features after one-hot encoding; the limit is "
                          f"{limits.max_features}")
    x = np.concatenate(parts, axis=1)
    src = (f"uploaded CSV {label}: {len(y):,} rows, {n_features} features, target {target!r} "
           f"({encoding}, separator {sep!r})" + (f"; {'; '.join(notes)}" if notes else ""))
    return Dataset(f"upload: {label}", x, y, tuple(classes), "tabular", feature_names=tuple(feature_names),
                   source=src)


def _as_float(value: str) -> float | None:
    try:
        out = float(value)
    except ValueError:
        return None
    return out if math.isfinite(out) else None


# --- NPZ ----------------------------------------------------------------------------------------------

def _npy_header(zf: zipfile.ZipFile, member: str, label: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a .npy header, read from the zip member before any data."""
    try:
        with zf.open(member) as fp:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
            else:
                raise UploadError(f"{label}: array {member!r} uses .npy format {version}; "
                                  f"save it with numpy.savez (format 1.0 or 2.0)")
    except UploadError:
        raise
    except (ValueError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise UploadError(f"{label}: array {member!r} is truncated or corrupt ({exc})") from exc
    return shape, dtype


def read_npz(data: bytes, filename: str, limits: UploadLimits = UploadLimits()) -> Dataset:
    """Arrays x and y (optional class_names) from numpy.savez: 2-D x is tabular, 3-D/4-D x are images."""
    label = safe_label(filename)
    _check_size(data, label, limits)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise UploadError(f"{label} is not a valid .npz file (it must be a numpy.savez zip): {exc}."
                          + _looks_like(data)) from exc
    with zf:
        members = zf.namelist()
        if len(members) > limits.max_members:
            raise UploadError(f"{label} holds {len(members)} arrays; the limit is {limits.max_members}")
        arrays = {m[:-4]: m for m in members if m.endswith(".npy")}
        missing = [k for k in ("x", "y") if k not in arrays]
        if missing and not arrays and members:
            raise UploadError(f"{label} holds no NumPy arrays (found e.g. {_member_label(members[0])!r}): if it is "
                              "a ZIP of image folders, name it .zip; an .npz is saved with numpy.savez(f, x=..., y=...)")
        if missing:
            raise UploadError(f"{label} has no array named {' or '.join(missing)}; found "
                              f"{', '.join(sorted(arrays)) or 'none'}; save with numpy.savez(f, x=..., y=...)")
        wanted = [k for k in ("x", "y", "class_names") if k in arrays]
        total = 0
        for key in wanted:
            shape, dtype = _npy_header(zf, arrays[key], label)
            if dtype.hasobject:
                raise UploadError(f"{label}: array {key!r} holds Python objects (dtype object), which would "
                                  f"need unpickling; only numeric or string arrays are accepted")
            total += math.prod(shape) * dtype.itemsize
        if total > limits.max_array_bytes:
            raise UploadError(f"{label}: its arrays declare {total / _MB:,.0f} MB; the limit is "
                              f"{limits.max_array_bytes / _MB:.0f} MB")
        try:
            loaded = {}
            for key in wanted:
                with zf.open(arrays[key]) as fp:
                    loaded[key] = np.lib.format.read_array(fp, allow_pickle=False)
        except (ValueError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise UploadError(f"{label} is truncated or corrupt ({exc})") from exc
    return _arrays_to_dataset(loaded, label, limits)


def _arrays_to_dataset(arrays: dict[str, np.ndarray], label: str, limits: UploadLimits) -> Dataset:
    x, y = arrays["x"], arrays["y"]
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UploadError(f"{label}: y must be 1-D (one label per sample), got shape {y.shape}")
    if x.shape[:1] != y.shape[:1]:
        raise UploadError(f"{label}: x has {x.shape[0] if x.ndim else 0} samples but y has {len(y)}")
    if x.dtype.kind not in "biuf":
        raise UploadError(f"{label}: x must be numeric, got dtype {x.dtype}")
    if x.ndim not in (2, 3, 4):
        raise UploadError(f"{label}: x must be 2-D (samples, features), 3-D (n, h, w) or 4-D (n, h, w, c); "
                          f"got shape {x.shape}")
    if x.ndim == 4 and x.shape[3] not in (1, 3, 4):
        raise UploadError(f"{label}: 4-D x must be channels-last with 1, 3 or 4 channels, got shape {x.shape}")
    xf = x.astype(np.float32)
    if not np.isfinite(xf).all():
        raise UploadError(f"{label}: x contains NaN or infinite values; features must be finite numbers")
    if y.dtype.kind not in "biuU":
        raise UploadError(f"{label}: y must hold integer or string labels, got dtype {y.dtype}")
    names_given = arrays.get("class_names")
    if y.dtype.kind in "biu" and names_given is not None:
        names = tuple(str(v) for v in np.asarray(names_given).reshape(-1))
        if y.min() < 0 or y.max() >= len(names):
            raise UploadError(f"{label}: labels must lie in 0..{len(names) - 1} (one per class name), got "
                              f"{y.min()}..{y.max()}")
        codes = y.astype(np.int64)
    else:
        values, codes = np.unique(y, return_inverse=True)
        names = tuple(str(v) for v in values)
        codes = codes.astype(np.int64)
    present = len(np.unique(codes))
    if present < 2:
        raise UploadError(f"{label}: y has a single class ({names[int(codes[0])] if len(codes) else 'none'}); "
                          f"classification needs at least two")
    if len(names) > limits.max_classes:
        raise UploadError(f"{label}: y has {len(names)} classes; the limit is {limits.max_classes}")
    note = ""
    if x.ndim == 2:
        return Dataset(f"upload: {label}", xf, codes, names, "tabular",
                       feature_names=tuple(f"x{i}" for i in range(x.shape[1])),
                       source=f"uploaded NPZ {label}: {len(codes):,} rows, {x.shape[1]} features")
    if x.ndim == 3:
        xf = xf[..., None]
    if x.dtype == np.uint8:
        xf /= 255.0
        note = "; uint8 pixels scaled to [0, 1]"
    elif xf.min() < 0 or xf.max() > 1:
        lo, hi = float(xf.min()), float(xf.max())
        xf = (xf - lo) / (hi - lo if hi > lo else 1.0)
        note = f"; values {lo:g}..{hi:g} scaled to [0, 1]"
    return Dataset(f"upload: {label}", xf, codes, names, "image",
                   source=f"uploaded NPZ {label}: {len(codes):,} images of {xf.shape[1]}x{xf.shape[2]}x"
                          f"{xf.shape[3]}{note}")


# --- ZIP of image folders ------------------------------------------------------------------------------

def _member_label(name: str) -> str:
    """A ZIP member's path as plain text (its folders matter in messages; odd characters do not)."""
    return re.sub(r"[^A-Za-z0-9._/ ()-]+", "_", name)[:80]


def _check_member_name(name: str, label: str) -> None:
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in name.split("/"):
        raise UploadError(f"{label}: refused, member {_member_label(name)!r} has an unsafe path "
                          f"(absolute, '..' or backslashes)")


def read_image_zip(data: bytes, filename: str, *, size: int = 32, color: Literal["grayscale", "rgb"] = "rgb",
                   limits: UploadLimits = UploadLimits()) -> Dataset:
    """One folder per class of PNG/JPEG images, decoded in memory and resized to size x size."""
    from PIL import Image, UnidentifiedImageError

    label = safe_label(filename)
    if not 4 <= size <= 256:
        raise UploadError(f"image size must be between 4 and 256 pixels, got {size}")
    if color not in ("grayscale", "rgb"):
        raise UploadError(f"colour must be 'grayscale' or 'rgb', got {color!r}")
    _check_size(data, label, limits)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise UploadError(f"{label} is not a valid ZIP file (truncated or corrupt?): {exc}."
                          + _looks_like(data)) from exc
    channels = 1 if color == "grayscale" else 3
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise UploadError(f"{label} has {len(infos):,} members; the limit is {limits.max_members:,}")
        total = sum(i.file_size for i in infos)
        if total > limits.max_total_bytes:
            raise UploadError(f"{label} declares {total / _MB:,.0f} MB uncompressed; the limit is "
                              f"{limits.max_total_bytes / _MB:.0f} MB")
        picked: list[tuple[zipfile.ZipInfo, str]] = []
        skipped = {"non-image": 0, "symlink": 0, "outside a class folder": 0}
        for info in infos:
            _check_member_name(info.filename, label)
            parts = [p for p in info.filename.split("/") if p]
            if info.is_dir() or not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                skipped["symlink"] += 1
                continue
            if info.file_size > 64 * 1024 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
                raise UploadError(f"{label}: member {_member_label(info.filename)!r} expands "
                                  f"{info.file_size / max(info.compress_size, 1):,.0f}x; the limit is "
                                  f"{limits.max_ratio:g}x (zip bomb?)")
            if PurePosixPath(parts[-1]).suffix.lower() not in _IMAGE_SUFFIXES:
                skipped["non-image"] += 1
            elif len(parts) < 2:
                skipped["outside a class folder"] += 1
            else:
                picked.append((info, parts[-2]))
        if not picked:
            found = ", ".join(f"{n} {k}" for k, n in skipped.items() if n) or "no files"
            raise UploadError(f"{label} has no PNG/JPEG images in class folders ({found}); put one folder per "
                              f"class, e.g. cats/1.png, dogs/2.jpg")
        classes = sorted({c for _, c in picked})
        if len(classes) < 2:
            raise UploadError(f"{label}: found a single class folder {safe_label(classes[0])!r}; "
                              f"classification needs at least two")
        if len(classes) > limits.max_classes:
            raise UploadError(f"{label}: {len(classes)} class folders; the limit is {limits.max_classes}")
        need = len(picked) * size * size * channels * 4
        if need > limits.max_array_bytes:
            raise UploadError(f"{label}: {len(picked):,} images at {size}x{size} would take {need / _MB:,.0f} MB; "
                              f"the limit is {limits.max_array_bytes / _MB:.0f} MB: choose a smaller size")
        x = np.empty((len(picked), size, size, channels), np.float32)
        y = np.empty(len(picked), np.int64)
        kept, corrupt = 0, []
        for info, cls in picked:
            img = _decode_image(zf, info, label, limits, Image, UnidentifiedImageError, corrupt)
            if img is None:
                continue
            img = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
            x[kept] = np.asarray(img, np.float32).reshape(size, size, channels) / 255.0
            y[kept] = classes.index(cls)
            kept += 1
    if kept == 0:
        raise UploadError(f"{label}: none of its {len(picked)} images could be decoded "
                          f"(e.g. {corrupt[0]})")
    x, y = x[:kept], y[:kept]
    if len(np.unique(y)) < 2:
        raise UploadError(f"{label}: only one class has readable images; classification needs two")
    notes = [f"skipped {n} {k} file(s)" for k, n in skipped.items() if n]
    if corrupt:
        notes.append(f"skipped {len(corrupt)} unreadable image(s), e.g. {corrupt[0]}")
    return Dataset(f"upload: {label}", x, y, tuple(safe_label(c) for c in classes), "image",
                   source=f"uploaded ZIP {label}: {kept:,} images in {len(classes)} class folders, resized to "
                          f"{size}x{size} {color}" + (f"; {'; '.join(notes)}" if notes else ""))


def _decode_image(zf, info, label, limits, Image, UnidentifiedImageError, corrupt):  # noqa: N803
    """One member decoded in memory, its pixel count checked before decoding; None (noted) if unreadable."""
    name = _member_label(info.filename)
    try:
        raw = zf.read(info)
        img = Image.open(io.BytesIO(raw))
        w, h = img.size
        if w * h > limits.max_pixels:
            raise UploadError(f"{label}: image {name!r} is {w}x{h} pixels ({w * h / 1e6:.1f} MP); the limit "
                              f"is {limits.max_pixels / 1e6:.1f} MP per image")
        if img.format not in ("PNG", "JPEG"):
            corrupt.append(f"{name}: {img.format} is not PNG/JPEG")
            return None
        img.load()
        return img
    except Image.DecompressionBombError as exc:
        raise UploadError(f"{label}: image {name!r} is too large to decode safely ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        if isinstance(exc, UploadError):
            raise
        corrupt.append(f"{name}: {type(exc).__name__}")
        return None


def read_upload(data: bytes, filename: str, *, target: str | None = None, image_size: int = 32,
                color: Literal["grayscale", "rgb"] = "rgb", limits: UploadLimits = UploadLimits()) -> Dataset:
    """Dispatch on the extension: CSV needs `target`; ZIP uses `image_size` and `color`."""
    kind = upload_kind(filename)
    if kind == "csv":
        if target is None:
            target = inspect_csv(data, filename, limits).suggested_target
        return read_csv(data, filename, target, limits)
    if kind == "npz":
        return read_npz(data, filename, limits)
    return read_image_zip(data, filename, size=image_size, color=color, limits=limits)
