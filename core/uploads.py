"""Safe readers for user uploads: CSV (tabular), NPZ (arrays x, y) and ZIP of image folders.

Uploads are hostile input on a shared server, so every reader bounds the work of the whole upload before
doing it: bytes, then a CSV's lines, rows and cells, an NPZ's declared array sizes, the summed pixels of a
ZIP's images (read from their headers), and the memory the result will take (`UploadLimits.memory_budget`);
a CPU-time deadline checked in every loop is the backstop. Readers never unpickle (`allow_pickle=False`,
object dtypes refused from the .npy header), never extract a ZIP to disk, and turn every problem into an
`UploadError` whose message names the file, what it holds and what is allowed. The client's file name is
only ever shown, sanitised by `safe_label`, never used as a path.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
import stat
import time
import warnings
import zipfile
import zlib
from collections.abc import Iterator
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
    "decode_csv_bytes",
    "inspect_csv",
    "read_csv",
    "read_image_zip",
    "read_npz",
    "read_upload",
    "safe_label",
    "upload_kind",
]

CSV_ENCODINGS = ("utf-8", "cp1252", "latin-1")  # tried in this order when there is no byte-order mark
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xef\xbb\xbf", "utf-8-sig"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))  # UTF-32 first: its LE mark starts like UTF-16's
_SEPARATORS = (",", ";", "\t", "|")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
_IMAGE_FORMATS = ("PNG", "JPEG")  # the only decoders Pillow may run on an upload
_MB = 1024 * 1024
_CHUNK = _MB  # bytes of a CSV decoded at a time while scanning it
_SAMPLE_CHARS = 64 * 1024  # text used to detect the separator
_SUGGEST = 50  # a column with at most this many distinct values may be the target
_CHUNK_CELLS = 2_000_000  # cells pandas parses at a time (~16 MB as float64)


class UploadError(DatasetError):
    """An upload was refused; the message names the file and the problem, for the user."""


@dataclass(frozen=True)
class UploadLimits:
    """Caps applied by every reader (the server's maxUploadSize is only the outer fence)."""

    max_bytes: int = 50 * _MB  # size of the uploaded file itself (matches server.maxUploadSize = 50)
    max_rows: int = 200_000  # CSV data rows
    max_columns: int = 500  # CSV columns before one-hot encoding
    max_cells: int = 20_000_000  # CSV rows x columns (each becomes a 4-byte float)
    max_line_chars: int = 1_000_000  # one line of a CSV (a parser holds a whole line, ~16 bytes per field)
    max_label_chars: int = 100  # a column name, text category or class name
    max_categories: int = 20  # distinct values a text feature may have and still be one-hot encoded
    max_features: int = 2_000  # CSV features after one-hot encoding
    max_classes: int = 200  # distinct target values (classification only)
    max_array_bytes: int = 512 * _MB  # NPZ: declared size of all arrays; ZIP: size of the decoded images
    max_members: int = 20_000  # ZIP / NPZ members
    max_total_bytes: int = 512 * _MB  # ZIP: declared uncompressed size of all members
    max_ratio: float = 100.0  # ZIP: uncompressed / compressed size of one member (zip bombs)
    max_pixels: int = 4096 * 4096  # one image's width x height, checked before decoding
    max_total_pixels: int = 500_000_000  # ZIP: width x height x channels of all images, summed from headers
    max_seconds: float = 20.0  # CPU seconds one upload may take: a backstop behind the budgets above
    memory_factor: float = 10.0  # peak memory while reading: at most this many times the file size,
    min_memory: int = 64 * _MB  # but small files may use this much (a 100 KB zip of icons is fine),
    max_memory: int = 1024 * _MB  # and no file more than this

    def memory_budget(self, n_bytes: int) -> int:
        """The memory a reader may use for an upload of `n_bytes`: a multiple of its size, within bounds."""
        return int(min(self.max_memory, max(self.min_memory, self.memory_factor * n_bytes)))


@dataclass(frozen=True, eq=False)
class CsvInfo:
    """What `inspect_csv` found, so the page can offer the target column before building the Dataset."""

    label: str  # sanitised file name, safe to show
    encoding: str  # the codec that decoded the file (utf-8-sig, utf-16, utf-32: it had a byte-order mark)
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


_SIGNATURES = (
    ((b"PK\x03\x04", b"PK\x05\x06"),
     " It looks like a ZIP archive: name it .npz if it holds NumPy arrays, .zip if it holds images."),
    ((b"\x93NUMPY",), " It looks like a single .npy array: save x and y together with numpy.savez to an .npz."),
    ((b"\x89PNG", b"\xff\xd8\xff", b"GIF8"),
     " It looks like a single image: put images in one folder per class and upload a .zip of them."),
    ((b"%PDF-",), " It looks like a PDF document."),
    ((b"\x1f\x8b",), " It looks like a gzip file: decompress it first."),
    ((b"SQLite format 3\x00",), " It looks like an SQLite database: export the table as CSV."),
    ((b"\xd0\xcf\x11\xe0",), " It looks like an old Excel or Word file: save the sheet as CSV."),
)


def _signature(data: bytes) -> str:
    """A hint naming the binary format the first bytes show ('' for none known)."""
    for magics, hint in _SIGNATURES:
        if data.startswith(magics):
            return hint
    return ""


def _looks_like(data: bytes) -> str:
    """What the first bytes say the file really is, as a hint for a wrong extension ('' when unsure)."""
    if hint := _signature(data):
        return hint
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


def _check_memory(need: int, data: bytes, label: str, limits: UploadLimits, what: str, hint: str = "") -> None:
    """Refuse, before allocating, a result whose memory exceeds the file's budget."""
    budget = limits.memory_budget(len(data))
    if need > budget:
        raise UploadError(f"{label}: {what} would take {need / _MB:,.0f} MB of memory; a {len(data) / _MB:,.1f} MB "
                          f"upload may use {budget / _MB:,.0f} MB ({limits.memory_factor:g}x its size, at least "
                          f"{limits.min_memory / _MB:,.0f} MB, at most {limits.max_memory / _MB:,.0f} MB){hint}")


def _cpu_time() -> float:
    """CPU seconds of this thread (uploads are read in a page's thread, so other visitors don't count)."""
    return time.thread_time()


class _Deadline:
    """CPU time one upload may take, checked in every loop: the backstop if a budget lets too much through."""

    def __init__(self, label: str, limits: UploadLimits) -> None:
        self.label, self.limit, self.start = label, limits.max_seconds, _cpu_time()

    def check(self) -> None:
        spent = _cpu_time() - self.start
        if spent > self.limit:
            raise UploadError(f"{self.label}: reading it took {spent:,.1f} s of CPU time; the cap per upload is "
                              f"{self.limit:g} s. Upload a smaller file")


# --- CSV: bytes to text ---------------------------------------------------------------------------------

def _decode_chunks(data: bytes, codec: str) -> Iterator[str]:
    """`data` decoded a megabyte at a time, so checking a whole file never holds its whole text.

    A UnicodeDecodeError carries positions in `data`, not in the chunk."""
    decoder = codecs.getincrementaldecoder(codec)()
    view = memoryview(data)
    for start in range(0, len(data), _CHUNK):
        pending = len(decoder.getstate()[0])
        try:
            yield decoder.decode(view[start:start + _CHUNK], final=start + _CHUNK >= len(data))
        except UnicodeDecodeError as exc:
            raise UnicodeDecodeError(exc.encoding, data, start - pending + exc.start, start - pending + exc.end,
                                     exc.reason) from None


def _utf16_without_bom(data: bytes) -> bool:
    """Whether the first bytes are ASCII text with a NUL after (or before) every character."""
    head = data[:4096]
    even, odd = head[0::2], head[1::2]
    return len(head) >= 8 and ((odd.count(0) >= 0.9 * len(odd) and not even.count(0))
                               or (even.count(0) >= 0.9 * len(even) and not odd.count(0)))


def _encoding(data: bytes, label: str) -> tuple[str, list[str]]:
    """The codec that decodes all of `data`, and notes on the ones that failed; binary data is refused."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                for _ in _decode_chunks(data, codec):
                    pass
            except UnicodeDecodeError as exc:
                raise UploadError(f"{label} is not a CSV: it starts with a {codec.upper()} byte-order mark but "
                                  f"is not valid {codec.upper()} text ({exc.reason} at byte {exc.start:,})") from None
            return codec, []
    nul, hint = data.find(b"\x00"), _signature(data)
    if nul >= 0 or hint:
        if not hint and _utf16_without_bom(data):
            hint = (" It looks like UTF-16 text without a byte-order mark: save it as UTF-8, or as UTF-16 with "
                    "a byte-order mark (\"Unicode text\").")
        why = (f"it contains NUL bytes (the first at byte {nul:,}), so it is a binary file" if nul >= 0
               else "its first bytes show it is a binary file")
        raise UploadError(f"{label} is not a CSV: {why}.{hint}")
    notes = []
    for codec in CSV_ENCODINGS:
        try:
            for _ in _decode_chunks(data, codec):
                pass
        except UnicodeDecodeError as exc:
            notes.append(f"not {codec} (byte 0x{data[exc.start]:02x} at position {exc.start})")
            continue
        sample = data[:_SAMPLE_CHARS].decode(codec, errors="ignore")
        controls = len(re.findall(r"[\x01-\x08\x0e-\x1f\x7f]", sample))
        if controls > len(sample) // 100:
            raise UploadError(f"{label} is not a CSV: {controls:,} of its first {len(sample):,} characters are "
                              f"control characters, so it is a binary file")
        return codec, notes
    raise UploadError(f"{label}: could not decode the text ({'; '.join(notes)})")  # latin-1 never fails


def decode_csv_bytes(data: bytes, label: str = "the file") -> tuple[str, str]:
    """The text of uploaded CSV bytes and the codec that decodes them (`data.decode(codec) == text`).

    One decision for every CSV reader: a UTF-8/16/32 byte-order mark decides (what spreadsheets save as
    "Unicode text"); otherwise UTF-8, then cp1252, then latin-1. Binary data (a known file signature, NUL
    bytes without a byte-order mark, control characters) raises UploadError saying it is not a CSV."""
    codec, _ = _encoding(data, label)
    return data.decode(codec), codec


# --- CSV: layout ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layout:
    """How a CSV is laid out, from its first lines: codec, separator, header, trailing separator."""

    codec: str
    sep: str
    names: tuple[str, ...]  # header names, unique
    trailing: bool  # every line ends with a separator: one empty field more than the header
    notes: tuple[str, ...]
    newline: str = "\n"  # "\r" for a file with classic Mac line ends

    @property
    def width(self) -> int:
        return len(self.names) + self.trailing


def _head_text(data: bytes, codec: str, limits: UploadLimits, label: str) -> str:
    """The first lines of the text, up to `max_line_chars`, ending at a line break unless that is the end."""
    decoder = codecs.getincrementaldecoder(codec)()
    size = limits.max_line_chars * 4 + 8  # enough bytes for that many characters in any codec
    head = decoder.decode(data[:size], final=len(data) <= size)
    whole = len(data) <= size
    head = head[:limits.max_line_chars + 1]
    if not whole or len(head) > limits.max_line_chars:
        cut = max(head.rfind("\n"), head.rfind("\r"))
        if cut < 0:
            raise UploadError(f"{label}: its first line is longer than {limits.max_line_chars:,} characters; "
                              f"that is not a table header")
        head = head[:cut + 1]
    return head


def _first_rows(text: str, sep: str, n: int) -> list[list[str]]:
    """Up to `n` non-blank rows from the start of `text` (fewer when a row is malformed or unfinished)."""
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=sep):
            if any(c.strip() for c in row):
                rows.append(row)
                if len(rows) == n:
                    break
    except csv.Error:  # an unclosed quote, a field over csv's size limit: pandas will say where
        pass
    return rows


def _separator(head: str) -> str:
    """The candidate that splits the first lines into the same number (> 1) of fields most consistently.

    csv.Sniffer is not used: its regular expressions take time quadratic in the sample (8 s on 48 KB)."""
    sample = head[:_SAMPLE_CHARS]
    if len(head) > _SAMPLE_CHARS:
        sample = sample[:sample.rfind("\n") + 1] or sample

    def score(sep: str) -> tuple[bool, float, int]:
        rows = _first_rows(sample, sep, 50)
        if not rows:
            return False, 0.0, 0
        n = len(rows[0])
        fits = sum(len(r) == n or (len(r) == n + 1 and not r[-1].strip()) for r in rows[1:])
        return n > 1, fits / max(1, len(rows) - 1), n

    return max(_SEPARATORS, key=score)


def _layout(data: bytes, label: str, limits: UploadLimits) -> _Layout:
    """Codec, separator and header, from the first lines only; refuses what is not a usable table header."""
    _check_size(data, label, limits)
    codec, notes = _encoding(data, label)
    head = _head_text(data, codec, limits, label)
    if not head.strip():
        if len(data) <= limits.max_line_chars:
            raise UploadError(f"{label} is empty")
        raise UploadError(f"{label}: its first {limits.max_line_chars:,} characters are blank")
    sep = _separator(head)
    rows = _first_rows(head, sep, 2)
    if not rows:
        raise UploadError(f"{label}: not valid CSV (its first line cannot be read as fields)")
    header = [c.strip() for c in rows[0]]
    if len(header) > limits.max_columns:
        raise UploadError(f"{label} has {len(header):,} columns; the limit is {limits.max_columns}")
    if len(header) < 2:
        raise UploadError(f"{label} has one column (separator {sep!r}); it needs feature columns and a "
                          f"target column")
    for i, h in enumerate(header):
        if len(h) > limits.max_label_chars:
            raise UploadError(f"{label}: column {i + 1}'s name is {len(h):,} characters long; names may have at "
                              f"most {limits.max_label_chars}")
    names: list[str] = []
    for i, h in enumerate(header):
        name = h or f"column_{i + 1}"
        while name in names:
            name += "_"
        names.append(name)
    first = rows[1] if len(rows) > 1 else []
    trailing = len(first) == len(header) + 1 and not first[-1].strip()
    if trailing:
        notes.append("dropped an empty field at the end of every row")
    newline = "\r" if "\r" in head and "\n" not in head else "\n"
    return _Layout(codec, sep, tuple(names), trailing, tuple(notes), newline)


def _fields(record: str, sep: str) -> list[str] | None:
    """A record's fields as the csv module reads them; None while a quoted field in it is still open."""
    try:
        return next(csv.reader([record], delimiter=sep, strict=True), [""])
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return None
        return next(csv.reader([record], delimiter=sep), [""])  # pandas, like csv, lets a stray quote be


def _scan_lines(data: bytes, lay: _Layout, label: str, limits: UploadLimits, deadline: _Deadline) -> int | None:
    """Check every record before pandas parses any: its length, its number of fields; count the rows.

    pandas pads a short row with empty strings without a word, and a line of millions of separators costs
    its tokenizer ~16 bytes a field: both are caught here, a megabyte of text at a time. A line without
    quotes is counted with str.count; one with quotes is read by the csv module, joined first with the
    lines a quoted field spans. Returns the data rows, or None if a record is too odd to check here (a
    quoted field longer than a line may be, a field over csv's size limit): pandas then checks it."""
    n, sep, cap, nl = len(lay.names), lay.sep, limits.max_line_chars, lay.newline
    rows, done, exact, header_seen, carry = 0, 0, True, False, ""
    pending: list[str] = []  # lines of a record whose quoted field is still open
    pending_at, pending_len = 0, 0

    def too_long(number: int, length: int) -> UploadError:
        return UploadError(f"{label}: line {number:,} is {length:,} characters long or more; the limit is "
                           f"{cap:,} characters per line")

    def check(count: int, last: str, blank: bool, number: int) -> None:
        nonlocal rows, header_seen
        if blank:
            return
        if not header_seen:
            header_seen = True
            return
        rows += 1
        if count == n + lay.trailing and not (lay.trailing and last.strip()):
            return
        if lay.trailing and count == n:
            raise UploadError(f"{label}: line {number} has {count} fields, without the extra separator at the "
                              f"end that the lines before it have; every row needs one value per column")
        raise UploadError(f"{label}: line {number} has {count} fields but the header has {n} "
                          f"(separator {sep!r}); every row needs one value per column")

    def quoted(record: str, number: int) -> bool:
        """Check a record with quotes; False while its quoted field is still open."""
        fields = _fields(record, sep)
        if fields is None:
            return False
        check(len(fields), fields[-1], False, number)  # a quoted empty field is a row to pandas
        return True

    def lines(text: str, first: int) -> None:
        nonlocal rows, exact, pending, pending_at, pending_len
        if exact and rows > limits.max_rows:  # refused anyway: only count the rest, without splitting
            rows += text.count(nl) + 1
            return
        parts = text.split(nl)
        if max(map(len, parts)) > cap:
            at = next(i for i, part in enumerate(parts) if len(part) > cap)
            raise too_long(first + at, len(parts[at]))
        if not exact:
            return
        for i, line in enumerate(parts):
            if pending:
                pending.append(line)
                pending_len += len(line) + 1
                if pending_len > cap:  # a quoted field longer than a line may be: pandas will check it
                    exact, pending = False, []
                    return
                if line.count('"') % 2 and quoted(nl.join(pending).rstrip("\r"), pending_at):
                    pending = []
            elif '"' not in line:
                line = line.rstrip("\r")  # pandas skips a line of spaces, not one of tab separators
                check(line.count(sep) + 1, line.rsplit(sep, 1)[-1], not line.strip() and sep not in line, first + i)
            elif not quoted(line.rstrip("\r"), first + i):
                pending, pending_at, pending_len = [line], first + i, len(line)
            if rows > limits.max_rows:
                rest = parts[i + 1:]
                rows += len(rest) - rest.count("") - rest.count("\r")
                return

    try:
        for text in _decode_chunks(data, lay.codec):
            deadline.check()
            text = carry + text
            cut = text.rfind(nl)
            if cut < 0:
                if len(text) > cap:
                    raise too_long(done + 1, len(text))
                carry = text
                continue
            lines(text[:cut], done + 1)
            done += text.count(nl, 0, cut) + 1
            carry = text[cut + 1:]
        if carry:
            lines(carry, done + 1)
    except csv.Error:  # e.g. a field over csv's size limit
        return None
    if pending:
        raise UploadError(f"{label}: the quoted field that starts on line {pending_at} is never closed "
                          f"(a lone '\"'?)")
    if not exact:
        return None
    if rows > limits.max_rows:
        raise UploadError(f"{label} has {rows:,} rows; the limit is {limits.max_rows:,}")
    return rows


# --- CSV: parsing ---------------------------------------------------------------------------------------

_MISSING = {"", "nan", "na", "n/a", "null", "none"}  # read as missing numbers, then refused as not finite


def _numeric(text: pd.Series, sep: str) -> tuple[np.ndarray | None, np.ndarray]:
    """Stripped text as float64 (decimal commas accepted when ',' is not the separator), or None if it is
    text; and which values read as numbers as they stand (one parse serves both)."""
    missing = text.str.lower().isin(_MISSING)
    first = None
    for candidate in (text, text.str.replace(",", ".", regex=False)) if sep != "," else (text,):
        values = pd.to_numeric(candidate.mask(missing), errors="coerce")
        first = values.notna().to_numpy() if first is None else first
        if not (values.isna() & ~missing).any():
            return values.to_numpy(np.float64, na_value=np.nan), first
    assert first is not None
    return None, first


@dataclass(eq=False)
class _Column:
    """What one pass over a CSV learned about a column, kept compact: float32 numbers or int32 codes."""

    name: str
    is_target: bool = False
    keep: bool = True  # keep values (read_csv) or only statistics (inspect_csv)
    parts: list[np.ndarray] = field(default_factory=list)  # float32, chunks that read as numbers
    codes: list[np.ndarray] = field(default_factory=list)  # int32 into `levels`, chunks of text
    levels: dict[str, int] | None = field(default_factory=dict)  # distinct texts; None past the cap
    numbers: set[float] | None = field(default_factory=set)  # distinct numbers, for inspect_csv's suggestion
    numeric_chunks: int = 0
    text_chunks: int = 0
    numeric_like: int = 0  # values that read as numbers
    n_text: int = 0  # non-empty values that are not numbers
    first_text: tuple[int, str] | None = None  # (row, value) of the first of them
    n_bad: int = 0  # missing or infinite numbers
    first_bad: tuple[int, str] | None = None  # (row, "missing" / "infinite")
    first_huge: int | None = None  # row of the first number too large for float32
    n_empty: int = 0
    first_empty: int | None = None
    first_long: tuple[int, int] | None = None  # (row, length) of the first text longer than a label may be

    def add(self, s: pd.Series, start: int, sep: str, limits: UploadLimits, label: str) -> None:
        """One chunk of the column; `start` is its first row's index among the data rows.

        Text is factorized first and only its distinct values are parsed as numbers: a text column costs
        one hash pass instead of a number parse per cell."""
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and not self.is_target:
            self._add_numbers(s.to_numpy(np.float64), start)
            return
        codes, uniques = pd.factorize(s.astype(str).str.strip())
        if self.is_target:
            self._add_text(codes, uniques, start, limits.max_classes, limits, label)
            return
        values, number = _numeric(pd.Series(uniques), sep)
        if values is not None:
            self._add_numbers(values[codes], start)
            return
        other = (~number & (uniques != ""))[codes]
        self.numeric_like += int(number[codes].sum())
        self.n_text += int(other.sum())
        if self.first_text is None:
            at = int(np.argmax(other))  # a chunk is text only when some value is neither a number nor missing
            self.first_text = (start + at, str(uniques[codes[at]]))
        self._add_text(codes, uniques, start, max(limits.max_categories, limits.max_classes), limits, label)

    def _add_numbers(self, values: np.ndarray, start: int) -> None:
        self.numeric_chunks += 1
        finite = np.isfinite(values)
        self.numeric_like += int((~np.isnan(values)).sum())
        if not finite.all():
            self.n_bad += int((~finite).sum())
            if self.first_bad is None:
                at = int(np.argmin(finite))
                self.first_bad = (start + at, "missing" if np.isnan(values[at]) else "infinite")
        huge = np.abs(np.where(finite, values, 0.0)) > np.finfo(np.float32).max
        if self.first_huge is None and huge.any():
            self.first_huge = start + int(np.argmax(huge))
        if self.keep:
            with np.errstate(over="ignore"):
                self.parts.append(values.astype(np.float32))
        elif self.numbers is not None:
            uniques = pd.unique(values)
            self.numbers = None if len(uniques) > _SUGGEST else self.numbers | set(uniques.tolist())
            if self.numbers is not None and len(self.numbers) > _SUGGEST:
                self.numbers = None

    def _add_text(self, codes: np.ndarray, uniques: pd.Index, start: int, cap: int, limits: UploadLimits,
                  label: str) -> None:
        self.text_chunks += 1
        empty = (uniques == "")[codes]
        if empty.any():
            self.n_empty += int(empty.sum())
            if self.first_empty is None:
                self.first_empty = start + int(np.argmax(empty))
        if self.levels is None:
            return
        remap = [self.levels.setdefault(str(u), len(self.levels)) for u in uniques[:cap + 1]]
        if len(self.levels) > cap:
            self.levels, self.codes = None, []
            if self.is_target:
                raise UploadError(f"{label}: target column {self.name!r} has more than {cap} distinct values; "
                                  f"at most {cap} classes are allowed (is it a class column?)")
            return
        long = np.asarray(uniques.str.len()) > limits.max_label_chars
        if self.first_long is None and long.any():
            at = int(np.argmax(long[codes]))
            self.first_long = (start + at, len(uniques[codes[at]]))
        if self.keep:
            self.codes.append(np.asarray(remap, np.int32)[codes])

    def width(self, max_categories: int) -> int:
        """Features this column makes so far: 1 for numbers, one per text value (a lower bound); 1 for a text
        column past the category cap, which is refused with its own message."""
        n = len(self.levels) if self.text_chunks and self.levels is not None else 1
        return n if n <= max_categories else 1

    def distinct(self) -> int | None:
        """Distinct values seen (texts and numbers), None when more than were tracked."""
        if self.levels is None or self.numbers is None:
            return None
        return len(self.levels) + len(self.numbers)


def _parser_error(exc: Exception, lay: _Layout, label: str) -> UploadError:
    text = str(exc)
    if m := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text):
        return UploadError(f"{label}: line {m[2]} has {m[3]} fields but the header has {len(lay.names)} "
                           f"(separator {lay.sep!r}); every row needs one value per column")
    if m := re.search(r"EOF inside string starting at row (\d+)", text):
        return UploadError(f"{label}: the quoted field that starts on line {int(m[1]) + 1} is never closed "
                           f"(a lone '\"'?)")
    return UploadError(f"{label}: not valid CSV ({text.strip()[:200]})")


def _check_features(data: bytes, rows: int, columns: list[_Column], label: str, limits: UploadLimits) -> None:
    """Refuse as soon as the features, counted so far, exceed their cap or the file's memory budget."""
    n_features = sum(c.width(limits.max_categories) for c in columns if not c.is_target)
    if n_features > limits.max_features:
        raise UploadError(f"{label}: {n_features:,} features after one-hot encoding; the limit is "
                          f"{limits.max_features:,}")
    _check_memory(rows * (len(columns) + n_features) * 4, data, label, limits,
                  f"{rows:,} rows x {n_features:,} features (after one-hot encoding) as float32")


def _parse(data: bytes, lay: _Layout, label: str, limits: UploadLimits, deadline: _Deadline,
           target: str | None, keep: bool, rows_known: int | None) -> tuple[int, list[_Column]]:
    """One chunked pass of pandas' C parser: rows, and per column numbers or codes (or only statistics)."""
    columns = [_Column(name, is_target=name == target, keep=keep) for name in lay.names]
    dtype = {i: str for i, c in enumerate(columns) if c.is_target}
    if lay.trailing:
        dtype[len(columns)] = str
    chunk_rows = max(1, min(50_000, _CHUNK_CELLS // lay.width))
    rows = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            reader = pd.read_csv(io.BytesIO(data), sep=lay.sep, encoding=lay.codec, engine="c", header=0,
                                 names=list(range(lay.width)), index_col=False, dtype=dtype or None,
                                 na_filter=False, chunksize=chunk_rows)
            with reader:
                for chunk in reader:
                    deadline.check()
                    if rows + len(chunk) > limits.max_rows:
                        raise UploadError(f"{label} has more than {limits.max_rows:,} rows; the limit is "
                                          f"{limits.max_rows:,}")
                    if (rows + len(chunk)) * len(columns) > limits.max_cells:
                        raise UploadError(f"{label} has more than {limits.max_cells:,} cells (rows x columns, "
                                          f"{len(columns)} columns); the limit is {limits.max_cells:,}")
                    if lay.trailing:
                        extra = chunk[len(columns)].astype(str).str.strip() != ""
                        if extra.any():
                            at = rows + int(np.argmax(extra.to_numpy()))
                            raise UploadError(f"{label}: line {at + 2} has {lay.width} fields but the header has "
                                              f"{len(columns)} (separator {lay.sep!r}); every row needs one "
                                              f"value per column")
                    for i, col in enumerate(columns):
                        col.add(chunk[i], rows, lay.sep, limits, label)
                    rows += len(chunk)
                    if keep:  # what the features will take at least, with the rows known so far (or all)
                        _check_features(data, max(rows, rows_known or 0), columns, label, limits)
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as exc:
        if isinstance(exc, UploadError):
            raise
        raise _parser_error(exc, lay, label) from exc
    if rows == 0:
        raise UploadError(f"{label} has a header but no data rows")
    return rows, columns


def _structure(data: bytes, filename: str, limits: UploadLimits) -> tuple[str, _Layout, _Deadline, int | None]:
    """Label, layout, deadline and data rows (None: not known before parsing), after every line-level check."""
    label = safe_label(filename)
    deadline = _Deadline(label, limits)
    lay = _layout(data, label, limits)
    rows = _scan_lines(data, lay, label, limits, deadline)
    if rows == 0:
        raise UploadError(f"{label} has a header but no data rows")
    if rows is not None and rows * len(lay.names) > limits.max_cells:
        raise UploadError(f"{label} has {rows:,} rows x {len(lay.names)} columns = {rows * len(lay.names):,} "
                          f"cells; the limit is {limits.max_cells:,}")
    return label, lay, deadline, rows


def inspect_csv(data: bytes, filename: str, limits: UploadLimits = UploadLimits()) -> CsvInfo:
    """Step one of a CSV upload: encoding, separator, columns and a preview, so the user picks the target."""
    label, lay, deadline, rows = _structure(data, filename, limits)
    n_rows, columns = _parse(data, lay, label, limits, deadline, target=None, keep=False, rows_known=rows)
    suggested = lay.names[-1]
    for col in reversed(columns):
        distinct = col.distinct()
        if distinct is not None and distinct <= min(limits.max_classes, _SUGGEST):
            suggested = col.name
            break
    preview = pd.read_csv(io.BytesIO(data), sep=lay.sep, encoding=lay.codec, engine="c", header=0,
                          names=list(range(lay.width)), index_col=False, dtype=str, na_filter=False, nrows=10)
    preview = preview.iloc[:, :len(lay.names)].map(lambda v: v[:200])
    preview.columns = list(lay.names)
    notes = list(lay.notes)
    if lay.codec != "utf-8":
        notes.append(f"read as {lay.codec}")
    return CsvInfo(label, lay.codec, lay.sep, lay.names, n_rows, preview, suggested, tuple(notes))


def _sort_key(value: str) -> tuple[bool, float, str]:
    number = _as_float(value)
    return number is None, number or 0.0, value


def _check_column(col: _Column, rows: int, label: str, limits: UploadLimits) -> None:
    """Refuse a feature column that is neither finite numbers nor text with few distinct values."""
    name = col.name
    if not col.text_chunks:
        if col.first_bad is not None:
            row, what = col.first_bad
            raise UploadError(f"{label}: column {name!r} has {col.n_bad} missing or infinite value(s), first "
                              f"{what} at line {row + 2}; features must be finite numbers")
        if col.first_huge is not None:
            raise UploadError(f"{label}: column {name!r} has values too large for float32, first at line "
                              f"{col.first_huge + 2}")
        return
    assert col.first_text is not None  # a chunk is text only when some value is neither a number nor missing
    row, example = col.first_text
    if col.numeric_like / rows >= 0.5:  # mostly numbers: the odd text value is a data error
        raise UploadError(f"{label}: column {name!r} is numeric except {col.n_text} value(s) such as "
                          f"{example[:30]!r} at line {row + 2}; fix or remove them")
    if col.numeric_chunks:
        raise UploadError(f"{label}: column {name!r} has numbers in some rows and text in others (e.g. "
                          f"{example[:30]!r} at line {row + 2}); make it all numbers or all text")
    if col.levels is None or len(col.levels) > limits.max_categories:
        count = f"more than {max(limits.max_categories, limits.max_classes)}" if col.levels is None \
            else f"{len(col.levels)}"
        raise UploadError(f"{label}: column {name!r} is not numeric (e.g. {example[:30]!r}) and has {count} "
                          f"distinct values; text columns are one-hot encoded only up to "
                          f"{limits.max_categories} values: drop or encode it")
    if col.first_empty is not None:
        raise UploadError(f"{label}: column {name!r} has an empty value at line {col.first_empty + 2}")
    if col.first_long is not None:
        raise UploadError(f"{label}: column {name!r} has a value of {col.first_long[1]:,} characters at line "
                          f"{col.first_long[0] + 2}; category names may have at most {limits.max_label_chars}")


def read_csv(data: bytes, filename: str, target: str, limits: UploadLimits = UploadLimits()) -> Dataset:
    """Step two: a tabular Dataset with `target` as the class column; text features one-hot encoded.

    Numbers go from pandas' C parser straight to float32 and text to int32 codes, a chunk at a time, so
    the file's text is never held as Python strings; the features are allocated once, after the budget."""
    label, lay, deadline, rows_known = _structure(data, filename, limits)
    if target not in lay.names:
        raise UploadError(f"{label}: target column {target!r} is not in the file; columns: "
                          f"{', '.join(lay.names)}")
    rows, columns = _parse(data, lay, label, limits, deadline, target=target, keep=True, rows_known=rows_known)
    tcol = next(c for c in columns if c.is_target)
    if tcol.n_empty:
        raise UploadError(f"{label}: target column {target!r} is empty in {tcol.n_empty} row(s), first at "
                          f"line {tcol.first_empty + 2}; every row needs a class")
    assert tcol.levels is not None
    classes = sorted(tcol.levels, key=_sort_key)
    if len(classes) < 2:
        raise UploadError(f"{label}: target column {target!r} has a single value {classes[0]!r}; "
                          f"classification needs at least two classes")
    if tcol.first_long is not None:
        raise UploadError(f"{label}: target column {target!r} has a value of {tcol.first_long[1]:,} characters "
                          f"at line {tcol.first_long[0] + 2}; class names may have at most "
                          f"{limits.max_label_chars}")
    order = np.empty(len(classes), np.int64)
    order[[tcol.levels[c] for c in classes]] = np.arange(len(classes))
    y = order[np.concatenate(tcol.codes)]
    tcol.codes = []
    features = [c for c in columns if not c.is_target]
    for col in features:
        _check_column(col, rows, label, limits)
    widths = [c.width(limits.max_categories) for c in features]
    n_features = sum(widths)
    if n_features > limits.max_features:
        raise UploadError(f"{label}: {n_features} features after one-hot encoding; the limit is "
                          f"{limits.max_features}")
    held = sum(a.nbytes for c in features for a in (*c.parts, *c.codes))
    _check_memory(held + rows * n_features * 4, data, label, limits,
                  f"{rows:,} rows x {n_features:,} features (after one-hot encoding) as float32")
    x = np.empty((rows, n_features), np.float32)
    feature_names: list[str] = []
    notes = list(lay.notes)
    j = 0
    for col, width in zip(features, widths, strict=True):
        deadline.check()
        if not col.text_chunks:
            x[:, j] = np.concatenate(col.parts)
            feature_names.append(col.name)
        else:
            assert col.levels is not None
            levels = sorted(col.levels)
            order = np.empty(len(levels), np.int64)
            order[[col.levels[v] for v in levels]] = np.arange(len(levels))
            x[:, j:j + width] = 0.0
            x[np.arange(rows), j + order[np.concatenate(col.codes)]] = 1.0
            feature_names += [f"{col.name}={v}" for v in levels]
            notes.append(f"one-hot encoded {col.name!r} ({len(levels)} values)")
        col.parts, col.codes = [], []
        j += width
    src = (f"uploaded CSV {label}: {rows:,} rows, {n_features} features, target {target!r} "
           f"({lay.codec}, separator {lay.sep!r})" + (f"; {'; '.join(notes)}" if notes else ""))
    return Dataset(f"upload: {label}", x, y, tuple(classes), "tabular", feature_names=tuple(feature_names),
                   source=src)


def _as_float(value: str) -> float | None:
    try:
        out = float(value)
    except ValueError:
        return None
    return out if math.isfinite(out) else None


# --- NPZ ----------------------------------------------------------------------------------------------

def _zip_entries(data: bytes) -> int:
    """Entries in a ZIP's central directory, counted from their signatures before zipfile parses them.

    zipfile builds an object per entry (~500 bytes) for any number of them: a 50 MB directory of empty
    entries would cost seconds and ~0.5 GB before the member cap could be checked. May overcount (a name
    holding the signature), never undercount: zipfile refuses an entry without it."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0:
        return 0  # not a zip: zipfile will say so
    size = int.from_bytes(data[end + 12:end + 16], "little")
    if size == 0xFFFFFFFF or size > end:
        return data.count(b"PK\x01\x02")
    return data.count(b"PK\x01\x02", max(0, end - size - 76), end)  # 76: ZIP64 records may sit between


def _open_zip(data: bytes, label: str, limits: UploadLimits, what: str, hint: str) -> zipfile.ZipFile:
    """The upload as a ZipFile, after the member cap (from the central directory's signatures)."""
    entries = _zip_entries(data)
    if entries > limits.max_members:
        raise UploadError(f"{label} has {entries:,} members; the limit is {limits.max_members:,}")
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UploadError(f"{label} is not a valid {what}: {exc}.{hint}") from exc


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
    """Arrays x and y (optional class_names) from numpy.savez: 2-D x is tabular, 3-D/4-D x are images.

    Sizes come from the .npy headers: the declared bytes, and the float32 copy of x, must fit the
    file's memory budget before any array is read (a compressed .npz can declare far more than it weighs)."""
    label = safe_label(filename)
    _check_size(data, label, limits)
    zf = _open_zip(data, label, limits, ".npz file (it must be a numpy.savez zip)", _looks_like(data))
    with zf:
        members = zf.namelist()
        if len(members) > limits.max_members:
            raise UploadError(f"{label} holds {len(members):,} arrays; the limit is {limits.max_members:,}")
        arrays = {m[:-4]: m for m in members if m.endswith(".npy")}
        missing = [k for k in ("x", "y") if k not in arrays]
        if missing and not arrays and members:
            raise UploadError(f"{label} holds no NumPy arrays (found e.g. {_member_label(members[0])!r}): if it is "
                              "a ZIP of image folders, name it .zip; an .npz is saved with numpy.savez(f, x=..., y=...)")
        if missing:
            raise UploadError(f"{label} has no array named {' or '.join(missing)}; found "
                              f"{', '.join(sorted(arrays)[:20]) or 'none'}; save with numpy.savez(f, x=..., y=...)")
        wanted = [k for k in ("x", "y", "class_names") if k in arrays]
        total, x_values = 0, 0
        for key in wanted:
            shape, dtype = _npy_header(zf, arrays[key], label)
            if dtype.hasobject:
                raise UploadError(f"{label}: array {key!r} holds Python objects (dtype object), which would "
                                  f"need unpickling; only numeric or string arrays are accepted")
            total += math.prod(shape) * dtype.itemsize
            if key == "x":
                x_values = math.prod(shape) if dtype != np.float32 else 0
        if total > limits.max_array_bytes:
            raise UploadError(f"{label}: its arrays declare {total / _MB:,.0f} MB; the limit is "
                              f"{limits.max_array_bytes / _MB:.0f} MB")
        _check_memory(total + 4 * x_values, data, label, limits,
                      "its arrays" + (" and x as float32" if x_values else ""),
                      ". Save it uncompressed (numpy.savez) or with fewer samples")
        try:
            loaded = {}
            for key in wanted:
                with zf.open(arrays[key]) as fp:
                    loaded[key] = np.lib.format.read_array(fp, allow_pickle=False)
        except (ValueError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise UploadError(f"{label} is truncated or corrupt ({exc})") from exc
    return _arrays_to_dataset(loaded, label, limits)


def _all_finite(a: np.ndarray) -> bool:
    """np.isfinite(a).all() a million values at a time (no boolean copy of a large array)."""
    flat = a.reshape(-1)
    return all(np.isfinite(flat[i:i + _MB]).all() for i in range(0, flat.size, _MB))


def _arrays_to_dataset(arrays: dict[str, np.ndarray], label: str, limits: UploadLimits) -> Dataset:
    """Check and convert the loaded arrays; x is converted to float32 once and scaled in place."""
    x, y = arrays.pop("x"), arrays["y"]
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
    if y.dtype.kind not in "biuU":
        raise UploadError(f"{label}: y must hold integer or string labels, got dtype {y.dtype}")
    names_given = arrays.get("class_names")
    if y.dtype.kind in "biu" and names_given is not None:
        if names_given.size > limits.max_classes:
            raise UploadError(f"{label}: class_names has {names_given.size:,} entries; the limit is "
                              f"{limits.max_classes} classes")
        names = tuple(str(v) for v in np.asarray(names_given).reshape(-1))
        if y.min() < 0 or y.max() >= len(names):
            raise UploadError(f"{label}: labels must lie in 0..{len(names) - 1} (one per class name), got "
                              f"{y.min()}..{y.max()}")
        codes = y.astype(np.int64)
    else:
        values, codes = np.unique(y, return_inverse=True)
        if len(values) > limits.max_classes:
            raise UploadError(f"{label}: y has {len(values):,} classes; the limit is {limits.max_classes}")
        names = tuple(str(v) for v in values)
        codes = codes.astype(np.int64)
    longest = max(names, key=len, default="")
    if len(longest) > limits.max_label_chars:
        raise UploadError(f"{label}: a class name is {len(longest):,} characters long; class names may have at "
                          f"most {limits.max_label_chars}")
    present = len(np.unique(codes))
    if present < 2:
        raise UploadError(f"{label}: y has a single class ({names[int(codes[0])] if len(codes) else 'none'}); "
                          f"classification needs at least two")
    if len(names) > limits.max_classes:
        raise UploadError(f"{label}: y has {len(names)} classes; the limit is {limits.max_classes}")
    source_dtype, shape = x.dtype, x.shape
    xf = x.astype(np.float32, copy=False)
    del x
    if not _all_finite(xf):
        raise UploadError(f"{label}: x contains NaN or infinite values; features must be finite numbers")
    note = ""
    if len(shape) == 2:
        return Dataset(f"upload: {label}", xf, codes, names, "tabular",
                       feature_names=tuple(f"x{i}" for i in range(shape[1])),
                       source=f"uploaded NPZ {label}: {len(codes):,} rows, {shape[1]} features")
    if len(shape) == 3:
        xf = xf[..., None]
    if source_dtype == np.uint8:
        xf /= 255.0
        note = "; uint8 pixels scaled to [0, 1]"
    else:
        lo, hi = float(xf.min()), float(xf.max())
        if lo < 0 or hi > 1:
            xf -= lo
            xf /= hi - lo if hi > lo else 1.0
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


_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _open_image(zf: zipfile.ZipFile, info: zipfile.ZipInfo):
    """A member streamed from the zip and opened by Pillow: header only, PNG and JPEG decoders only."""
    from PIL import Image

    fp = zf.open(info)
    try:
        return fp, Image.open(fp, formats=_IMAGE_FORMATS)
    except BaseException:
        fp.close()
        raise


def _reduce_jpeg(img, mode: str, size: int) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale when that still covers `size` (Pillow's `draft`):
    a photo then costs a fraction of its full decode, and its header says so."""
    if img.format == "JPEG":
        img.draft(mode, (size, size))


def _image_header(zf, info, mode: str, size: int, channels: int, label: str, limits: UploadLimits,
                  corrupt: list[str]) -> tuple[int, int, int] | None:
    """(width, height, values per pixel) the decoder will produce, from the header alone; None if unreadable."""
    from PIL import Image, UnidentifiedImageError

    name = _member_label(info.filename)
    try:
        fp, img = _open_image(zf, info)
        with fp, img:
            w, h = img.size
            if w * h > limits.max_pixels:
                raise UploadError(f"{label}: image {name!r} is {w}x{h} pixels ({w * h / 1e6:.1f} MP); the limit "
                                  f"is {limits.max_pixels / 1e6:.1f} MP per image")
            _reduce_jpeg(img, mode, size)
            w, h = img.size
            return w, h, max(len(img.getbands()), channels)
    except Image.DecompressionBombError as exc:
        raise UploadError(f"{label}: image {name!r} is too large to decode safely ({exc})") from exc
    except UnidentifiedImageError:
        corrupt.append(f"{name}: not a PNG or JPEG image")
    except _UNREADABLE as exc:
        if isinstance(exc, UploadError):
            raise
        corrupt.append(f"{name}: {type(exc).__name__}")
    return None


def _decode_image(zf, info, mode: str, size: int, corrupt: list[str]):
    """One member decoded in memory and resized to size x size; None (noted in `corrupt`) if unreadable."""
    from PIL import Image

    try:
        fp, img = _open_image(zf, info)
        with fp, img:
            _reduce_jpeg(img, mode, size)
            return img.convert(mode).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    except _UNREADABLE as exc:
        corrupt.append(f"{_member_label(info.filename)}: {type(exc).__name__}")
        return None


def read_image_zip(data: bytes, filename: str, *, size: int = 32, color: Literal["grayscale", "rgb"] = "rgb",
                   limits: UploadLimits = UploadLimits()) -> Dataset:
    """One folder per class of PNG/JPEG images, decoded in memory and resized to size x size.

    Every image's header is read first: the per-image cap, the sum of pixels over the whole zip and the
    memory of the result are checked before the first image is decoded."""
    label = safe_label(filename)
    if not 4 <= size <= 256:
        raise UploadError(f"image size must be between 4 and 256 pixels, got {size}")
    if color not in ("grayscale", "rgb"):
        raise UploadError(f"colour must be 'grayscale' or 'rgb', got {color!r}")
    _check_size(data, label, limits)
    deadline = _Deadline(label, limits)
    zf = _open_zip(data, label, limits, "ZIP file (truncated or corrupt?)", _looks_like(data))
    channels, mode = (1, "L") if color == "grayscale" else (3, "RGB")
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
        corrupt: list[str] = []
        readable, pixels, largest = [], 0, (0, 0)
        for info, cls in picked:
            deadline.check()
            header = _image_header(zf, info, mode, size, channels, label, limits, corrupt)
            if header is not None:
                w, h, values = header
                pixels += w * h * values
                largest = max(largest, (w, h), key=lambda s: s[0] * s[1])
                readable.append((info, cls))
        if pixels > limits.max_total_pixels:
            raise UploadError(f"{label}: its {len(readable):,} images total {pixels:,} pixel values (width x height "
                              f"x channels, as decoded); the cap per upload is {limits.max_total_pixels:,}. "
                              f"Upload fewer or smaller images")
        _check_memory(need + 8 * largest[0] * largest[1], data, label, limits,
                      f"{len(picked):,} images at {size}x{size}, and decoding the largest "
                      f"({largest[0]}x{largest[1]}),", ". Choose a smaller size, or upload fewer or smaller images")
        x = np.empty((len(readable), size, size, channels), np.float32)
        y = np.empty(len(readable), np.int64)
        kept = 0
        for info, cls in readable:
            deadline.check()
            img = _decode_image(zf, info, mode, size, corrupt)
            if img is None:
                continue
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
