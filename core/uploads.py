"""Safe readers for user uploads: CSV (tabular), NPZ (arrays x, y) and ZIP of image folders.

Uploads are hostile input on a shared server, so every reader bounds the work of the whole upload before
doing it: bytes, then a CSV's lines, rows and cells, an NPZ's declared array sizes, the summed pixels of a
ZIP's images (read from their headers), and the memory the result will take (`UploadLimits.memory_budget`);
a CPU-time deadline checked in every loop is the backstop. Readers never unpickle (`allow_pickle=False`,
object dtypes refused from the .npy header), never extract a ZIP to disk, and turn every problem into an
`UploadError` whose message names the file, what it holds and what is allowed. The client's file name is
only ever shown, sanitised by `safe_label`, never used as a path.

A CSV is parsed once (`inspect_csv`): numbers to float32, text to int32 codes (up to `max_levels` distinct
values a column), text that reads as dates to date parts; gaps ("NA", "", "?", "null", …) are counted, not
refused. core.tabular profiles the columns (kind, default role, suggested target) and `table_dataset` builds
the Dataset the user's choices make.
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
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

import numpy as np
import pandas as pd

from core import tabular
from core.datasets import Dataset, DatasetError
from core.i18n import _

__all__ = [
    "CSV_ENCODINGS",
    "CsvInfo",
    "UploadError",
    "UploadLimits",
    "csv_separator",
    "decode_csv_bytes",
    "inspect_csv",
    "read_csv",
    "read_image_zip",
    "read_npz",
    "read_upload",
    "safe_label",
    "table_dataset",
    "upload_kind",
]

# Tried in this order when there is no byte-order mark; gb18030 (what Chinese Excel saves) only when the text
# reads as Chinese (see _reads_as_chinese).
CSV_ENCODINGS = ("utf-8", "gb18030", "cp1252", "latin-1")
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xef\xbb\xbf", "utf-8-sig"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))  # UTF-32 first: its LE mark starts like UTF-16's
_SEPARATORS = (",", ";", "\t", "|")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
_IMAGE_FORMATS = ("PNG", "JPEG")  # the only decoders Pillow may run on an upload
_MB = 1024 * 1024
_CHUNK = _MB  # bytes of a CSV decoded at a time while scanning it
_SAMPLE_CHARS = 64 * 1024  # text used to detect the separator
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
    max_categories: int = 20  # a text feature is one-hot encoded with its top k values (+ "other"): k by default
    max_levels: int = 5_000  # distinct values the reader keeps per text column (beyond: too many to encode)
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
    suggested_target: str = ""  # see core.tabular.suggest_target ("" when no column looks like classes)
    notes: tuple[str, ...] = ()  # what was tried or adjusted (encodings that failed, dropped empty field)
    table: Any = field(default=None, repr=False)  # core.tabular.Table: every column as read, and its profile
    n_bytes: int = 0  # size of the file (its memory budget)

    @property
    def target_reason(self) -> str:
        """Why the suggested target was suggested (or why none was)."""
        return self.table.target_reason if self.table is not None else ""


def safe_label(filename: str | None) -> str:
    """The client's file name reduced to a short plain label: base name, safe characters only (letters and
    digits of any script, so 猫 or Müller stay as they are; no markup, control or invisible characters)."""
    base = re.split(r"[\\/]", str(filename or ""))[-1]
    label = re.sub(r"[^\w.() -]+", "_", base).strip(" ._")[:60]
    return label or "upload"


def upload_kind(filename: str | None) -> Literal["csv", "npz", "zip"]:
    """Which reader handles a file, from its extension (an extension check only; readers verify content)."""
    suffix = PurePosixPath(str(filename or "").replace("\\", "/")).suffix.lower()
    kinds = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".npz": "npz", ".zip": "zip"}
    if suffix not in kinds:
        raise UploadError(_("{label}: unsupported file type {suffix}; upload a .csv, .npz or .zip").format(
            label=safe_label(filename), suffix=repr(suffix or _("(none)"))))
    return kinds[suffix]  # type: ignore[return-value]


_SIGNATURES = (
    ((b"PK\x03\x04", b"PK\x05\x06"), "zip"), ((b"\x93NUMPY",), "npy"),
    ((b"\x89PNG", b"\xff\xd8\xff", b"GIF8"), "image"), ((b"%PDF-",), "pdf"), ((b"\x1f\x8b",), "gzip"),
    ((b"SQLite format 3\x00",), "sqlite"), ((b"\xd0\xcf\x11\xe0",), "office"),
)


def _format_hint(kind: str) -> str:
    """What to do with a file of a known binary format, in the visitor's language (a leading space)."""
    return {
        "zip": _(" It looks like a ZIP archive: name it .npz if it holds NumPy arrays, .zip if it holds images."),
        "npy": _(" It looks like a single .npy array: save x and y together with numpy.savez to an .npz."),
        "image": _(" It looks like a single image: put images in one folder per class and upload a .zip of them."),
        "pdf": _(" It looks like a PDF document."),
        "gzip": _(" It looks like a gzip file: decompress it first."),
        "sqlite": _(" It looks like an SQLite database: export the table as CSV."),
        "office": _(" It looks like an old Excel or Word file: save the sheet as CSV."),
    }[kind]


def _signature(data: bytes) -> str:
    """A hint naming the binary format the first bytes show ('' for none known)."""
    for magics, kind in _SIGNATURES:
        if data.startswith(magics):
            return _format_hint(kind)
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
        return _(" It looks like text: if it is a table, name it .csv.")
    return ""


def _check_size(data: bytes, label: str, limits: UploadLimits) -> None:
    if len(data) > limits.max_bytes:
        raise UploadError(_("{label} is {size} MB; the limit is {most} MB").format(
            label=label, size=f"{len(data) / _MB:.1f}", most=f"{limits.max_bytes / _MB:.0f}"))
    if not data:
        raise UploadError(_("{label} is empty").format(label=label))


def _check_memory(need: int, data: bytes, label: str, limits: UploadLimits, what: str, hint: str = "") -> None:
    """Refuse, before allocating, a result whose memory exceeds the file's budget."""
    budget = limits.memory_budget(len(data))
    if need > budget:
        raise UploadError(_memory_message(label, what, need, len(data), budget, limits) + hint)


def _memory_message(label: str, what: str, need: int, n_bytes: int, budget: int, limits: UploadLimits) -> str:
    return _("{label}: {what} would take {need} MB of memory; a {size} MB upload may use {budget} MB ({factor}x its "
             "size, at least {least} MB, at most {most} MB)").format(
        label=label, what=what, need=f"{need / _MB:,.0f}", size=f"{n_bytes / _MB:,.1f}", budget=f"{budget / _MB:,.0f}",
        factor=f"{limits.memory_factor:g}", least=f"{limits.min_memory / _MB:,.0f}",
        most=f"{limits.max_memory / _MB:,.0f}")


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
            raise UploadError(_("{label}: reading it took {spent} s of CPU time; the cap per upload is {cap} s. "
                                "Upload a smaller file").format(label=self.label, spent=f"{spent:,.1f}",
                                                                 cap=f"{self.limit:g}"))


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
                for _chunk in _decode_chunks(data, codec):
                    pass
            except UnicodeDecodeError as exc:
                raise UploadError(_("{label} is not a CSV: it starts with a {codec} byte-order mark but is not valid "
                                    "{codec} text ({reason} at byte {at})").format(
                    label=label, codec=codec.upper(), reason=exc.reason, at=f"{exc.start:,}")) from None
            return codec, []
    nul, hint = data.find(b"\x00"), _signature(data)
    if nul >= 0 or hint:
        if not hint and _utf16_without_bom(data):
            hint = _(" It looks like UTF-16 text without a byte-order mark: save it as UTF-8, or as UTF-16 with "
                     "a byte-order mark (\"Unicode text\").")
        why = (_("it contains NUL bytes (the first at byte {at}), so it is a binary file").format(at=f"{nul:,}")
               if nul >= 0 else _("its first bytes show it is a binary file"))
        raise UploadError(_("{label} is not a CSV: {why}.{hint}").format(label=label, why=why, hint=hint))
    notes = []
    for codec in CSV_ENCODINGS:
        try:
            if codec == "gb18030":
                if not _reads_as_chinese(data):
                    continue
            else:
                for _chunk in _decode_chunks(data, codec):
                    pass
        except UnicodeDecodeError as exc:
            notes.append(_("not {codec} (byte {byte} at position {at})").format(
                codec=codec, byte=f"0x{data[exc.start]:02x}", at=exc.start))
            continue
        sample = data[:_SAMPLE_CHARS].decode(codec, errors="ignore")
        controls = len(re.findall(r"[\x01-\x08\x0e-\x1f\x7f]", sample))
        if controls > len(sample) // 100:
            raise UploadError(_("{label} is not a CSV: {n} of its first {total} characters are control characters, "
                                "so it is a binary file").format(label=label, n=f"{controls:,}",
                                                                  total=f"{len(sample):,}"))
        return codec, notes
    raise UploadError(_("{label}: could not decode the text ({notes})").format(  # latin-1 never fails
        label=label, notes=_("; ").join(notes)))


def _reads_as_chinese(data: bytes) -> bool:
    """Whether GB18030 (what Chinese Excel saves; a superset of GBK) reads `data` as Chinese: every byte
    decodes and nearly all characters beyond ASCII are among GB2312's common ones. Western text in cp1252
    often decodes too, but its accented letters pair with the letter after them into rare ideographs
    (Orl-é-ans reads Orl閍ns). Raises UnicodeDecodeError where a byte does not decode."""
    wide = common = 0
    for text in _decode_chunks(data, "gb18030"):
        beyond = "".join(re.findall(r"[^\x00-\x7f]+", text))
        wide += len(beyond)
        common += len(beyond.encode("gb2312", errors="ignore")) // 2  # two bytes a character
    return common >= 0.9 * wide > 0


def decode_csv_bytes(data: bytes, label: str | None = None) -> tuple[str, str]:
    """The text of uploaded CSV bytes and the codec that decodes them (`data.decode(codec) == text`).

    One decision for every CSV reader: a UTF-8/16/32 byte-order mark decides (what spreadsheets save as
    "Unicode text"); otherwise UTF-8, then GB18030 where the text reads as Chinese, then cp1252, then latin-1.
    Binary data (a known file signature, NUL bytes without a byte-order mark, control characters) raises
    UploadError saying it is not a CSV."""
    codec = _encoding(data, label or _("the file"))[0]
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
            raise UploadError(_("{label}: its first line is longer than {most} characters; that is not a table "
                                "header").format(label=label, most=f"{limits.max_line_chars:,}"))
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


def csv_separator(head: str, columns: Collection[str] = ()) -> str:
    """The separator of CSV text (its first lines suffice): the candidate that splits them into the same
    number (> 1) of fields most consistently.

    A reader that knows the columns (a prediction CSV, whose header is optional and may be a single row)
    passes their names: a separator whose first row names more of them wins, then one that splits it into
    that many fields. A comma, also a decimal mark and common in text, loses a tie: "1,5|2" reads as 1,5 and 2.
    csv.Sniffer is not used: its regular expressions take time quadratic in the sample (8 s on 48 KB)."""
    sample = head[:_SAMPLE_CHARS]
    if len(head) > _SAMPLE_CHARS:
        sample = sample[:sample.rfind("\n") + 1] or sample
    expected = set(columns)

    def score(sep: str) -> tuple[int, bool, bool, float, int, bool]:
        rows = _first_rows(sample, sep, 50)
        if not rows:
            return 0, False, False, 0.0, 0, False
        n = len(rows[0])
        named = sum(cell.strip() in expected for cell in rows[0])
        fits = sum(len(r) == n or (len(r) == n + 1 and not r[-1].strip()) for r in rows[1:])
        return named, n == len(expected), n > 1, fits / max(1, len(rows) - 1), n, sep != ","

    return max(_SEPARATORS, key=score)


def _layout(data: bytes, label: str, limits: UploadLimits) -> _Layout:
    """Codec, separator and header, from the first lines only; refuses what is not a usable table header."""
    _check_size(data, label, limits)
    codec, notes = _encoding(data, label)
    head = _head_text(data, codec, limits, label)
    if not head.strip():
        if len(data) <= limits.max_line_chars:
            raise UploadError(_("{label} is empty").format(label=label))
        raise UploadError(_("{label}: its first {n} characters are blank").format(
            label=label, n=f"{limits.max_line_chars:,}"))
    sep = csv_separator(head)
    rows = _first_rows(head, sep, 2)
    if not rows:
        raise UploadError(_("{label}: not valid CSV (its first line cannot be read as fields)").format(label=label))
    header = [c.strip() for c in rows[0]]
    if len(header) > limits.max_columns:
        raise UploadError(_("{label} has {n} columns; the limit is {most}").format(
            label=label, n=f"{len(header):,}", most=limits.max_columns))
    if len(header) < 2:
        raise UploadError(_("{label} has one column (separator {sep}); it needs feature columns and a target "
                            "column").format(label=label, sep=repr(sep)))
    for i, h in enumerate(header):
        if len(h) > limits.max_label_chars:
            raise UploadError(_("{label}: column {i}'s name is {n} characters long; names may have at most "
                                "{most}").format(label=label, i=i + 1, n=f"{len(h):,}", most=limits.max_label_chars))
    names: list[str] = []
    for i, h in enumerate(header):
        name = h or f"column_{i + 1}"
        while name in names:
            name += "_"
        names.append(name)
    first = rows[1] if len(rows) > 1 else []
    trailing = len(first) == len(header) + 1 and not first[-1].strip()
    if trailing:
        notes.append(_("dropped an empty field at the end of every row"))
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


def _fields_message(label: str, line: int | str, count: int | str, n: int, sep: str) -> str:
    return _("{label}: line {line} has {count} fields but the header has {n} (separator {sep}); every row needs one "
             "value per column").format(label=label, line=line, count=count, n=n, sep=repr(sep))


def _unclosed_message(label: str, line: int) -> str:
    return _("{label}: the quoted field that starts on line {line} is never closed (a lone '\"'?)").format(
        label=label, line=line)


@dataclass
class _LineScan:
    """What _scan_lines knows between chunks of text: the rows counted, and a record whose quoted field is
    still open (its lines so far)."""

    lay: _Layout
    label: str
    limits: UploadLimits
    rows: int = 0
    exact: bool = True  # False once a record is too odd to check here: pandas checks it
    header_seen: bool = False
    pending: list[str] = field(default_factory=list)
    pending_at: int = 0  # the line the open record starts on
    pending_len: int = 0

    def too_long(self, number: int, length: int) -> UploadError:
        return UploadError(_("{label}: line {line} is {n} characters long or more; the limit is {most} characters "
                             "per line").format(label=self.label, line=f"{number:,}", n=f"{length:,}",
                                                most=f"{self.limits.max_line_chars:,}"))

    def lines(self, text: str, first: int) -> None:
        """Check the complete lines of `text`, the first of which is line number `first`."""
        nl, cap, max_rows = self.lay.newline, self.limits.max_line_chars, self.limits.max_rows
        if self.exact and self.rows > max_rows:  # refused anyway: only count the rest, without splitting
            self.rows += text.count(nl) + 1
            return
        parts = text.split(nl)
        if max(map(len, parts)) > cap:
            at = next(i for i, part in enumerate(parts) if len(part) > cap)
            raise self.too_long(first + at, len(parts[at]))
        if not self.exact:
            return
        for i, line in enumerate(parts):
            if not self._line(line, first + i):
                return
            if self.rows > max_rows:
                rest = parts[i + 1:]
                self.rows += len(rest) - rest.count("") - rest.count("\r")
                return

    def _line(self, line: str, number: int) -> bool:
        """Check one line, or add it to the open quoted record; False once the scan cannot be exact."""
        sep = self.lay.sep
        if self.pending:
            self.pending.append(line)
            self.pending_len += len(line) + 1
            if self.pending_len > self.limits.max_line_chars:  # a quoted field longer than a line may be
                self.exact, self.pending = False, []
                return False
            if line.count('"') % 2 and self._quoted(self.lay.newline.join(self.pending).rstrip("\r"),
                                                    self.pending_at):
                self.pending = []
        elif '"' not in line:
            line = line.rstrip("\r")  # pandas skips a line of spaces, not one of tab separators
            self._check(line.count(sep) + 1, line.rsplit(sep, 1)[-1], not line.strip() and sep not in line, number)
        elif not self._quoted(line.rstrip("\r"), number):
            self.pending, self.pending_at, self.pending_len = [line], number, len(line)
        return True

    def _quoted(self, record: str, number: int) -> bool:
        """Check a record with quotes; False while its quoted field is still open."""
        fields = _fields(record, self.lay.sep)
        if fields is None:
            return False
        self._check(len(fields), fields[-1], False, number)  # a quoted empty field is a row to pandas
        return True

    def _check(self, count: int, last: str, blank: bool, number: int) -> None:
        """Count a data row (not a blank line, not the header); refuse it unless it has a field per column."""
        lay, label, n = self.lay, self.label, len(self.lay.names)
        if blank:
            return
        if not self.header_seen:
            self.header_seen = True
            return
        self.rows += 1
        if count == n + lay.trailing and not (lay.trailing and last.strip()):
            return
        if lay.trailing and count == n:
            raise UploadError(_("{label}: line {line} has {count} fields, without the extra separator at the end "
                                "that the lines before it have; every row needs one value per column").format(
                label=label, line=number, count=count))
        raise UploadError(_fields_message(label, number, count, n, lay.sep))

    def counted_rows(self) -> int | None:
        """The data rows once every line is checked; None when pandas must check a record."""
        if self.pending:
            raise UploadError(_unclosed_message(self.label, self.pending_at))
        if not self.exact:
            return None
        if self.rows > self.limits.max_rows:
            raise UploadError(_("{label} has {n} rows; the limit is {most}").format(
                label=self.label, n=f"{self.rows:,}", most=f"{self.limits.max_rows:,}"))
        return self.rows


def _scan_lines(data: bytes, lay: _Layout, label: str, limits: UploadLimits, deadline: _Deadline) -> int | None:
    """Check every record before pandas parses any: its length, its number of fields; count the rows.

    pandas pads a short row with empty strings without a word, and a line of millions of separators costs
    its tokenizer ~16 bytes a field: both are caught here, a megabyte of text at a time. A line without
    quotes is counted with str.count; one with quotes is read by the csv module, joined first with the
    lines a quoted field spans. Returns the data rows, or None if a record is too odd to check here (a
    quoted field longer than a line may be, a field over csv's size limit): pandas then checks it."""
    scan = _LineScan(lay, label, limits)
    done, carry, nl = 0, "", lay.newline
    try:
        for text in _decode_chunks(data, lay.codec):
            deadline.check()
            text = carry + text
            cut = text.rfind(nl)
            if cut < 0:
                if len(text) > limits.max_line_chars:
                    raise scan.too_long(done + 1, len(text))
                carry = text
                continue
            scan.lines(text[:cut], done + 1)
            done += text.count(nl, 0, cut) + 1
            carry = text[cut + 1:]
        if carry:
            scan.lines(carry, done + 1)
    except csv.Error:  # e.g. a field over csv's size limit
        return None
    return scan.counted_rows()


# --- CSV: parsing ---------------------------------------------------------------------------------------

_MISSING = set(tabular.MISSING_MARKERS)  # cells read as missing ("NA", "", "?", "null", "-", …)


def _numeric(text: pd.Series, sep: str) -> tuple[np.ndarray | None, np.ndarray, bool]:
    """Stripped text as float64 (decimal commas accepted when ',' is not the separator), or None if it is
    text; which values read as numbers as they stand (one parse serves both); whether commas were decimal."""
    missing = text.str.lower().isin(_MISSING)
    first = None
    for comma, candidate in enumerate((text, text.str.replace(",", ".", regex=False)) if sep != "," else (text,)):
        values = pd.to_numeric(candidate.mask(missing), errors="coerce")
        first = values.notna().to_numpy() if first is None else first
        if not (values.isna() & ~missing).any():
            return values.to_numpy(np.float64, na_value=np.nan), first, bool(comma)
    assert first is not None
    return None, first, False


@dataclass(eq=False)
class _Column:
    """What one pass over a CSV learned about a column, kept compact: float32 numbers or int32 codes, and
    date parts when its text reads as dates."""

    name: str
    is_target: bool = False
    parts: list[np.ndarray] = field(default_factory=list)  # float32, chunks that read as numbers
    codes: list[np.ndarray] = field(default_factory=list)  # int32 into `levels` (-1 missing), chunks of text
    levels: dict[str, int] | None = field(default_factory=dict)  # distinct texts; None past the cap
    level_bytes: int = 0  # memory the levels take, roughly
    numeric_chunks: int = 0
    text_chunks: int = 0
    numeric_like: int = 0  # values that read as numbers
    n_text: int = 0  # non-missing values that are not numbers
    first_text: tuple[int, str] | None = None  # (row, value) of the first of them
    n_missing: int = 0  # missing markers and NaN
    n_infinite: int = 0
    first_huge: int | None = None  # row of the first number too large for float32
    first_long: tuple[int, int] | None = None  # (row, length) of the first text longer than a label may be
    present: int = 0  # non-missing text cells
    chars: int = 0
    words: int = 0
    repeats: bool = False  # a text value seen twice within a chunk
    decimal_comma: bool = False
    date_format: str | bool | None = None  # None: undecided; False: not dates
    dates: list[np.ndarray] = field(default_factory=list)  # (rows, 4) float32 parts per chunk
    date_ok: int = 0
    date_bad: int = 0
    first_unparsed: str = ""

    def add(self, s: pd.Series, start: int, sep: str, limits: UploadLimits, label: str) -> None:
        """One chunk of the column; `start` is its first row's index among the data rows.

        Text is factorized first and only its distinct values are parsed as numbers or dates: a text
        column costs one hash pass instead of a parse per cell."""
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            self._add_numbers(s.to_numpy(np.float64), start)
            return
        codes, uniques = pd.factorize(s.astype(str).str.strip())
        values, number, comma = _numeric(pd.Series(uniques), sep)
        if values is not None and np.isnan(values).all():
            self._add_blank(len(codes))
            return
        if values is not None:
            self.decimal_comma |= comma
            self._add_numbers(values[codes], start)
            return
        missing = np.asarray(pd.Series(uniques).str.lower().isin(_MISSING))
        other = (~number & ~missing)[codes]
        self.numeric_like += int(number[codes].sum())
        self.n_text += int(other.sum())
        if self.first_text is None and other.any():
            at = int(np.argmax(other))
            self.first_text = (start + at, str(uniques[codes[at]]))
        cap = limits.max_classes if self.is_target else max(limits.max_levels, limits.max_classes)
        self._add_text(codes, uniques, missing, start, cap, limits, label)

    def _add_blank(self, n: int) -> None:
        """A chunk where every cell is missing: it fits numbers, text and dates alike."""
        self.n_missing += n
        self.parts.append(np.full(n, np.nan, np.float32))
        if self.levels is not None:
            self.codes.append(np.full(n, -1, np.int32))
        if isinstance(self.date_format, str):
            self.dates.append(np.full((n, 4), np.nan, np.float32))

    def _add_numbers(self, values: np.ndarray, start: int) -> None:
        self.numeric_chunks += 1
        nan, inf = np.isnan(values), np.isinf(values)
        self.n_missing += int(nan.sum())
        self.n_infinite += int(inf.sum())
        self.numeric_like += int((~nan).sum())
        huge = np.abs(np.where(nan | inf, 0.0, values)) > np.finfo(np.float32).max
        if self.first_huge is None and huge.any():
            self.first_huge = start + int(np.argmax(huge))
        with np.errstate(over="ignore"):
            self.parts.append(values.astype(np.float32))

    def _add_text(self, codes: np.ndarray, uniques: pd.Index, missing: np.ndarray, start: int, cap: int,
                  limits: UploadLimits, label: str) -> None:
        self.text_chunks += 1
        miss = missing[codes]
        self.n_missing += int(miss.sum())
        present = ~miss
        self.present += int(present.sum())
        text = pd.Series(uniques)
        lengths = text.str.len().to_numpy()
        words = text.str.count(r"\S+").to_numpy()
        self.chars += int(lengths[codes][present].sum())
        self.words += int(words[codes][present].sum())
        if not self.repeats and (np.bincount(codes[present], minlength=len(uniques)) > 1).any():
            self.repeats = True
        long = (lengths > limits.max_label_chars) & ~missing
        if self.first_long is None and long.any():
            at = int(np.argmax(long[codes]))
            self.first_long = (start + at, int(lengths[codes[at]]))
        self._add_dates(codes, uniques, missing, start)
        if self.levels is None:
            return
        new = [str(u) for u, m in zip(uniques, missing, strict=True) if not m and u not in self.levels]
        if len(self.levels) + len(new) > cap:
            self.levels, self.codes, self.level_bytes = None, [], 0
            if self.is_target:
                raise UploadError(_("{label}: target column {name} has more than {n} distinct values; at most {n} "
                                    "classes are allowed (is it a class column?)").format(
                    label=label, name=repr(self.name), n=cap))
            return
        for u in new:
            self.levels[u] = len(self.levels)
            self.level_bytes += 120 + len(u)
        remap = np.array([-1 if m else self.levels[str(u)] for u, m in zip(uniques, missing, strict=True)],
                         np.int32)
        self.codes.append(remap[codes] if len(codes) else np.zeros(0, np.int32))

    def _add_dates(self, codes: np.ndarray, uniques: pd.Index, missing: np.ndarray, start: int) -> None:
        """Date parts of this chunk while the column reads as dates (format guessed from its first values)."""
        if self.date_format is False or self.numeric_chunks:
            return
        if self.date_format is None:
            sample = [str(u) for u, m in zip(uniques[:200], missing[:200], strict=True) if not m][:50]
            if not sample:
                return  # only missing values so far: undecided
            fmt = tabular.guess_date_format(sample)
            if fmt is None:
                self.date_format, self.dates = False, []
                return
            self.date_format = fmt
            if start:
                self.dates.append(np.full((start, 4), np.nan, np.float32))
        parts = tabular.date_parts(np.where(missing, None, np.asarray(uniques, dtype=object)), str(self.date_format))
        ok = np.isfinite(parts[:, 0])
        bad = (~ok & ~missing)[codes]
        self.date_ok += int(ok[codes].sum())
        self.date_bad += int(bad.sum())
        if not self.first_unparsed and bad.any():
            self.first_unparsed = str(uniques[codes[int(np.argmax(bad))]])
        if self.date_bad > 0.1 * (self.date_ok + self.date_bad) and self.date_bad > 50:
            self.date_format, self.dates = False, []  # hopeless: stop paying for it
            return
        self.dates.append(parts.astype(np.float32)[codes])

    def width(self, max_categories: int) -> int:
        """Features this column makes so far (a lower bound): 1 for numbers, 4 for dates, one per text value
        up to `max_categories`, 1 for a text column past it."""
        if self.date_format and self.dates:
            return 4
        n = len(self.levels) if self.text_chunks and self.levels is not None else 1
        return n if n <= max_categories else 1

    def held(self) -> int:
        """Bytes this column holds so far."""
        return sum(a.nbytes for a in (*self.parts, *self.codes, *self.dates)) + self.level_bytes

    def finish(self, rows: int, limits: UploadLimits) -> tabular.RawColumn:
        """The column as core.tabular profiles it; what makes it unusable is said in `problem`."""
        name, problem = self.name, ""
        if self.text_chunks and self.n_text and self.numeric_like / rows >= 0.5:  # the odd text: a data error
            assert self.first_text is not None
            row, example = self.first_text
            problem = _("column {name} is numeric except {n} value(s) such as {example} at line {line}; fix or "
                        "remove them").format(name=repr(name), n=self.n_text, example=repr(example[:30]), line=row + 2)
        elif self.text_chunks and self.numeric_chunks:
            assert self.first_text is not None
            row, example = self.first_text
            problem = _("column {name} has numbers in some rows and text in others (e.g. {example} at line {line}); "
                        "make it all numbers or all text").format(name=repr(name), example=repr(example[:30]),
                                                                  line=row + 2)
        elif not self.text_chunks and self.first_huge is not None:
            problem = _("column {name} has values too large for float32, first at line {line}").format(
                name=repr(name), line=self.first_huge + 2)
        raw = tabular.RawColumn(name, n_missing=self.n_missing, n_infinite=self.n_infinite, n_text=self.present,
                                chars=self.chars, words=self.words, first_long=self.first_long, problem=problem,
                                decimal_comma=self.decimal_comma)
        if problem:
            raw.numbers = None
        elif not self.text_chunks:
            raw.numbers = np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)
        else:
            raw.levels = None if self.levels is None else tuple(self.levels)
            raw.codes = np.concatenate(self.codes) if self.levels is not None and self.codes else None
            raw.unique = not self.repeats and (self.levels is None or len(self.levels) == self.present)
            dated = self.date_ok + self.date_bad
            if self.date_format and self.dates and self.date_ok and self.date_ok >= 0.9 * dated:
                raw.dates = np.concatenate(self.dates)
                raw.date_format = str(self.date_format)
                raw.date_unparsed, raw.first_unparsed = self.date_bad, self.first_unparsed
            if raw.codes is None and raw.dates is None:
                raw.codes = np.zeros(0, np.int32)  # levels past the cap: nothing per row is kept
        self.parts, self.codes, self.dates = [], [], []
        return raw


def _parser_error(exc: Exception, lay: _Layout, label: str) -> UploadError:
    text = str(exc)
    if m := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text):
        return UploadError(_fields_message(label, m[2], m[3], len(lay.names), lay.sep))
    if m := re.search(r"EOF inside string starting at row (\d+)", text):
        return UploadError(_unclosed_message(label, int(m[1]) + 1))
    return UploadError(_("{label}: not valid CSV ({error})").format(label=label, error=text.strip()[:200]))


def _check_features(data: bytes, rows: int, columns: list[_Column], label: str, limits: UploadLimits) -> None:
    """Refuse as soon as the features, counted so far, exceed their cap or the file's memory budget."""
    n_features = sum(c.width(limits.max_categories) for c in columns if not c.is_target)
    if n_features > limits.max_features:
        raise UploadError(_("{label}: {n} features after one-hot encoding; the limit is {most}").format(
            label=label, n=f"{n_features:,}", most=f"{limits.max_features:,}"))
    dates = sum(c.width(limits.max_categories) == 4 for c in columns)
    levels = sum(c.level_bytes for c in columns)
    _check_memory(rows * (len(columns) + n_features + 4 * dates) * 4 + levels, data, label, limits,
                  _("{n} rows x {features} features (after one-hot encoding) as float32").format(
                      n=f"{rows:,}", features=f"{n_features:,}"))


def _parse(data: bytes, lay: _Layout, label: str, limits: UploadLimits, deadline: _Deadline,
           target: str | None, rows_known: int | None) -> tuple[int, list[_Column]]:
    """One chunked pass of pandas' C parser: rows, and per column numbers or codes (and date parts)."""
    columns = [_Column(name, is_target=name == target) for name in lay.names]
    dtype = {len(columns): str} if lay.trailing else None
    chunk_rows = max(1, min(50_000, _CHUNK_CELLS // lay.width))
    rows = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            reader = pd.read_csv(io.BytesIO(data), sep=lay.sep, encoding=lay.codec, engine="c", header=0,
                                 names=list(range(lay.width)), index_col=False, dtype=dtype,
                                 na_filter=False, chunksize=chunk_rows)
            with reader:
                for chunk in reader:
                    deadline.check()
                    if rows + len(chunk) > limits.max_rows:
                        raise UploadError(_("{label} has more than {most} rows; the limit is {most}").format(
                            label=label, most=f"{limits.max_rows:,}"))
                    if (rows + len(chunk)) * len(columns) > limits.max_cells:
                        raise UploadError(_("{label} has more than {most} cells (rows x columns, {n} columns); "
                                            "the limit is {most}").format(label=label, most=f"{limits.max_cells:,}",
                                                                          n=len(columns)))
                    if lay.trailing:
                        extra = chunk[len(columns)].astype(str).str.strip() != ""
                        if extra.any():
                            at = rows + int(np.argmax(extra.to_numpy()))
                            raise UploadError(_fields_message(label, at + 2, lay.width, len(columns), lay.sep))
                    for i, col in enumerate(columns):
                        col.add(chunk[i], rows, lay.sep, limits, label)
                    rows += len(chunk)
                    # what the features will take at least, with the rows known so far (or all)
                    _check_features(data, max(rows, rows_known or 0), columns, label, limits)
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as exc:
        if isinstance(exc, UploadError):
            raise
        raise _parser_error(exc, lay, label) from exc
    if rows == 0:
        raise UploadError(_("{label} has a header but no data rows").format(label=label))
    return rows, columns


def _structure(data: bytes, filename: str, limits: UploadLimits) -> tuple[str, _Layout, _Deadline, int | None]:
    """Label, layout, deadline and data rows (None: not known before parsing), after every line-level check."""
    label = safe_label(filename)
    deadline = _Deadline(label, limits)
    lay = _layout(data, label, limits)
    rows = _scan_lines(data, lay, label, limits, deadline)
    if rows == 0:
        raise UploadError(_("{label} has a header but no data rows").format(label=label))
    if rows is not None and rows * len(lay.names) > limits.max_cells:
        raise UploadError(_("{label} has {rows} rows x {columns} columns = {cells} cells; the limit is {most}").format(
            label=label, rows=f"{rows:,}", columns=len(lay.names), cells=f"{rows * len(lay.names):,}",
            most=f"{limits.max_cells:,}"))
    return label, lay, deadline, rows


def _read_table(data: bytes, filename: str, limits: UploadLimits, target: str | None = None
                ) -> tuple[str, _Layout, tabular.Table]:
    """Every line checked, every column parsed once and profiled (core.tabular)."""
    label, lay, deadline, rows = _structure(data, filename, limits)
    if target is not None and target not in lay.names:
        raise UploadError(_("{label}: target column {name} is not in the file; columns: {columns}").format(
            label=label, name=repr(target), columns=", ".join(lay.names)))
    n_rows, columns = _parse(data, lay, label, limits, deadline, target=target, rows_known=rows)
    raw = []
    for col in columns:
        deadline.check()
        raw.append(col.finish(n_rows, limits))
    notes = list(lay.notes)
    if lay.codec != "utf-8":
        notes.append(_("read as {codec}").format(codec=lay.codec))
    return label, lay, tabular.profile_table(label, lay.codec, lay.sep, n_rows, raw, limits, notes)


def inspect_csv(data: bytes, filename: str, limits: UploadLimits = UploadLimits()) -> CsvInfo:
    """Step one of a CSV upload: encoding, separator, every column read and profiled (kind, missing values,
    default role), the suggested target and a preview, so the user can choose before the Dataset is built."""
    label, lay, table = _read_table(data, filename, limits)
    preview = pd.read_csv(io.BytesIO(data), sep=lay.sep, encoding=lay.codec, engine="c", header=0,
                          names=list(range(lay.width)), index_col=False, dtype=str, na_filter=False, nrows=10)
    preview = preview.iloc[:, :len(lay.names)].map(lambda v: v[:200])
    preview.columns = list(lay.names)
    return CsvInfo(label, lay.codec, lay.sep, lay.names, table.n_rows, preview, table.suggested_target,
                   table.notes, table=table, n_bytes=len(data))


def _sort_key(value: str) -> tuple[bool, float, str]:
    number = _as_float(value)
    return number is None, number or 0.0, value


def table_dataset(info: CsvInfo, choices: tabular.Choices, limits: UploadLimits = UploadLimits()) -> Dataset:
    """Step two: the Dataset an inspected CSV makes with the user's choices (target, roles, missing values,
    top k categories). Refuses, before allocating, features over the file's memory budget."""
    budget = limits.memory_budget(info.n_bytes)

    def check_memory(need: int, what: str) -> None:
        if need > budget:
            raise UploadError(_memory_message(info.label, what, need, info.n_bytes, budget, limits))

    try:
        return tabular.build_dataset(info.table, choices, check_memory=check_memory, source_notes=info.notes)
    except tabular.TableError as exc:
        raise UploadError(str(exc)) from exc


def read_csv(data: bytes, filename: str, target: str | None = None, limits: UploadLimits = UploadLimits(), *,
             roles: dict[str, str] | None = None, missing: Literal["impute", "drop"] = "impute",
             numbers: Literal["median", "mean"] = "median", top_k: int | None = None) -> Dataset:
    """Both steps at once: a tabular Dataset with `target` (None: the suggested one) as the class column and
    the other columns in their default roles unless `roles` says otherwise.

    Numbers go from pandas' C parser straight to float32 and text to int32 codes, a chunk at a time, so
    the file's text is never held as Python strings; the features are allocated once, after the budget."""
    label, lay, table = _read_table(data, filename, limits, target)
    info = CsvInfo(label, lay.codec, lay.sep, lay.names, table.n_rows, pd.DataFrame(), table.suggested_target,
                   table.notes, table=table, n_bytes=len(data))
    choices = tabular.Choices(target, dict(roles or {}), missing, numbers,
                              limits.max_categories if top_k is None else int(top_k))
    return table_dataset(info, choices, limits)


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
        raise UploadError(_members_message(label, entries, limits))
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UploadError(_("{label} is not a valid {what}: {error}.{hint}").format(
            label=label, what=what, error=exc, hint=hint)) from exc


def _members_message(label: str, n: int, limits: UploadLimits) -> str:
    return _("{label} has {n} members; the limit is {most}").format(label=label, n=f"{n:,}",
                                                                    most=f"{limits.max_members:,}")


def _npy_header(zf: zipfile.ZipFile, member: str, label: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a .npy header, read from the zip member before any data."""
    try:
        with zf.open(member) as fp:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, _order, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, _order, dtype = np.lib.format.read_array_header_2_0(fp)
            else:
                raise UploadError(_("{label}: array {member} uses .npy format {version}; save it with numpy.savez "
                                    "(format 1.0 or 2.0)").format(label=label, member=repr(member), version=version))
    except UploadError:
        raise
    except (ValueError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise UploadError(_("{label}: array {member} is truncated or corrupt ({error})").format(
            label=label, member=repr(member), error=exc)) from exc
    return shape, dtype


def read_npz(data: bytes, filename: str, limits: UploadLimits = UploadLimits()) -> Dataset:
    """Arrays x and y (optional class_names) from numpy.savez: 2-D x is tabular, 3-D/4-D x are images.

    Sizes come from the .npy headers: the declared bytes, and the float32 copy of x, must fit the
    file's memory budget before any array is read (a compressed .npz can declare far more than it weighs)."""
    label = safe_label(filename)
    _check_size(data, label, limits)
    zf = _open_zip(data, label, limits, _(".npz file (it must be a numpy.savez zip)"), _looks_like(data))
    with zf:
        members = zf.namelist()
        if len(members) > limits.max_members:
            raise UploadError(_("{label} holds {n} arrays; the limit is {most}").format(
                label=label, n=f"{len(members):,}", most=f"{limits.max_members:,}"))
        arrays = {m[:-4]: m for m in members if m.endswith(".npy")}
        missing = [k for k in ("x", "y") if k not in arrays]
        if missing and not arrays and members:
            raise UploadError(_("{label} holds no NumPy arrays (found e.g. {member}): if it is a ZIP of image "
                                "folders, name it .zip; an .npz is saved with numpy.savez(f, x=..., y=...)").format(
                label=label, member=repr(_member_label(members[0]))))
        if missing:
            raise UploadError(_("{label} has no array named {names}; found {found}; save with numpy.savez(f, x=..., "
                                "y=...)").format(label=label, names=_(" or ").join(missing),
                                                 found=", ".join(sorted(arrays)[:20]) or _("none")))
        wanted = [k for k in ("x", "y", "class_names") if k in arrays]
        total, x_values = 0, 0
        for key in wanted:
            shape, dtype = _npy_header(zf, arrays[key], label)
            if dtype.hasobject:
                raise UploadError(_("{label}: array {key} holds Python objects (dtype object), which would need "
                                    "unpickling; only numeric or string arrays are accepted").format(
                    label=label, key=repr(key)))
            total += math.prod(shape) * dtype.itemsize
            if key == "x":
                x_values = math.prod(shape) if dtype != np.float32 else 0
        if total > limits.max_array_bytes:
            raise UploadError(_("{label}: its arrays declare {size} MB; the limit is {most} MB").format(
                label=label, size=f"{total / _MB:,.0f}", most=f"{limits.max_array_bytes / _MB:.0f}"))
        _check_memory(total + 4 * x_values, data, label, limits,
                      _("its arrays and x as float32") if x_values else _("its arrays"),
                      _(". Save it uncompressed (numpy.savez) or with fewer samples"))
        try:
            loaded = {}
            for key in wanted:
                with zf.open(arrays[key]) as fp:
                    loaded[key] = np.lib.format.read_array(fp, allow_pickle=False)
        except (ValueError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise UploadError(_("{label} is truncated or corrupt ({error})").format(label=label, error=exc)) from exc
    return _arrays_to_dataset(loaded, label, limits)


def _all_finite(a: np.ndarray) -> bool:
    """np.isfinite(a).all() a million values at a time (no boolean copy of a large array)."""
    flat = a.reshape(-1)
    return all(np.isfinite(flat[i:i + _MB]).all() for i in range(0, flat.size, _MB))


def _arrays_to_dataset(arrays: dict[str, np.ndarray], label: str, limits: UploadLimits) -> Dataset:
    """Check and convert the loaded arrays; x is converted to float32 once and scaled in place."""
    x = arrays.pop("x")
    y = _checked_npz_shapes(x, arrays["y"], label)
    names, codes = _npz_classes(y, arrays.get("class_names"), label, limits)
    source_dtype, shape = x.dtype, x.shape
    xf = x.astype(np.float32, copy=False)
    del x
    if not _all_finite(xf):
        raise UploadError(_("{label}: x contains NaN or infinite values; features must be finite numbers").format(
            label=label))
    if len(shape) == 2:
        return Dataset(f"upload: {label}", xf, codes, names, "tabular",
                       feature_names=tuple(f"x{i}" for i in range(shape[1])),
                       source=_("uploaded NPZ {label}: {n} rows, {features} features").format(
                           label=label, n=f"{len(codes):,}", features=shape[1]))
    if len(shape) == 3:
        xf = xf[..., None]
    note = _scale_pixels(xf, source_dtype)
    return Dataset(f"upload: {label}", xf, codes, names, "image",
                   source=_("uploaded NPZ {label}: {n} images of {shape}").format(
                       label=label, n=f"{len(codes):,}", shape=f"{xf.shape[1]}x{xf.shape[2]}x{xf.shape[3]}") + note)


def _checked_npz_shapes(x: np.ndarray, y: np.ndarray, label: str) -> np.ndarray:
    """Refuse x and y that are not samples of features or images and one label each; y as 1-D."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UploadError(_("{label}: y must be 1-D (one label per sample), got shape {shape}").format(
            label=label, shape=y.shape))
    if x.shape[:1] != y.shape[:1]:
        raise UploadError(_("{label}: x has {x} samples but y has {y}").format(
            label=label, x=x.shape[0] if x.ndim else 0, y=len(y)))
    if x.dtype.kind not in "biuf":
        raise UploadError(_("{label}: x must be numeric, got dtype {dtype}").format(label=label, dtype=x.dtype))
    if x.ndim not in (2, 3, 4):
        raise UploadError(_("{label}: x must be 2-D (samples, features), 3-D (n, h, w) or 4-D (n, h, w, c); got "
                            "shape {shape}").format(label=label, shape=x.shape))
    if x.ndim == 4 and x.shape[3] not in (1, 3, 4):
        raise UploadError(_("{label}: 4-D x must be channels-last with 1, 3 or 4 channels, got shape {shape}").format(
            label=label, shape=x.shape))
    if y.dtype.kind not in "biuU":
        raise UploadError(_("{label}: y must hold integer or string labels, got dtype {dtype}").format(
            label=label, dtype=y.dtype))
    return y


def _npz_classes(y: np.ndarray, names_given: np.ndarray | None, label: str, limits: UploadLimits
                 ) -> tuple[tuple[str, ...], np.ndarray]:
    """Class names and each sample's class index: integer labels index class_names when it is given, else
    the sorted distinct labels are the classes."""
    if y.dtype.kind in "biu" and names_given is not None:
        if names_given.size > limits.max_classes:
            raise UploadError(_("{label}: class_names has {n} entries; the limit is {most} classes").format(
                label=label, n=f"{names_given.size:,}", most=limits.max_classes))
        names = tuple(str(v) for v in np.asarray(names_given).reshape(-1))
        if y.min() < 0 or y.max() >= len(names):
            raise UploadError(_("{label}: labels must lie in 0..{last} (one per class name), got {lo}..{hi}").format(
                label=label, last=len(names) - 1, lo=y.min(), hi=y.max()))
        codes = y.astype(np.int64)
    else:
        values, codes = np.unique(y, return_inverse=True)
        if len(values) > limits.max_classes:
            raise UploadError(_classes_message(label, f"{len(values):,}", limits))
        names = tuple(str(v) for v in values)
        codes = codes.astype(np.int64)
    longest = max(names, key=len, default="")
    if len(longest) > limits.max_label_chars:
        raise UploadError(_("{label}: a class name is {n} characters long; class names may have at most "
                            "{most}").format(label=label, n=f"{len(longest):,}", most=limits.max_label_chars))
    present = len(np.unique(codes))
    if present < 2:
        raise UploadError(_("{label}: y has a single class ({name}); classification needs at least two").format(
            label=label, name=names[int(codes[0])] if len(codes) else _("none")))
    if len(names) > limits.max_classes:
        raise UploadError(_classes_message(label, len(names), limits))
    return names, codes


def _classes_message(label: str, n: int | str, limits: UploadLimits) -> str:
    return _("{label}: y has {n} classes; the limit is {most}").format(label=label, n=n, most=limits.max_classes)


def _scale_pixels(xf: np.ndarray, source_dtype: np.dtype) -> str:
    """Scale images to [0, 1] in place (uint8 by 255, others by their range when outside it); says how."""
    if source_dtype == np.uint8:
        xf /= 255.0
        return _("; uint8 pixels scaled to [0, 1]")
    lo, hi = float(xf.min()), float(xf.max())
    if lo < 0 or hi > 1:
        xf -= lo
        xf /= hi - lo if hi > lo else 1.0
        return _("; values {lo}..{hi} scaled to [0, 1]").format(lo=f"{lo:g}", hi=f"{hi:g}")
    return ""


# --- ZIP of image folders ------------------------------------------------------------------------------

def _member_label(name: str) -> str:
    """A ZIP member's path as plain text (its folders matter in messages; odd characters do not)."""
    return re.sub(r"[^\w./ ()-]+", "_", name)[:80]


def _read_member_names(zf: zipfile.ZipFile) -> None:
    """Members' paths as their archiver meant them, in `filename` (zipfile checks `orig_filename`, kept).

    Without the UTF-8 flag zipfile reads a name as cp437, but macOS writes UTF-8 and Windows' own
    "compressed folder" the local code page (GBK on a Chinese Windows: 猫/1.png). One reading for the whole
    archive, which has more text to judge by than one name (GBK's 猫 alone is valid UTF-8, è): UTF-8 when
    every such name decodes, else GB18030 when they read as Chinese, else cp437 as zipfile read them."""
    legacy = [i for i in zf.infolist() if not i.flag_bits & 0x800 and not i.filename.isascii()]
    raw = b"\n".join(i.filename.encode("cp437") for i in legacy)
    try:
        raw.decode("utf-8")
        codec = "utf-8"
    except UnicodeDecodeError:
        try:
            codec = "gb18030" if _reads_as_chinese(raw) else ""
        except UnicodeDecodeError:
            codec = ""
    if codec:
        for info in legacy:
            info.filename = info.filename.encode("cp437").decode(codec)


def _check_member_name(name: str, label: str) -> None:
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in name.split("/"):
        raise UploadError(_("{label}: refused, member {member} has an unsafe path (absolute, '..' or "
                            "backslashes)").format(label=label, member=repr(_member_label(name))))


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
                raise UploadError(_("{label}: image {name} is {w}x{h} pixels ({mp} MP); the limit is {most} MP per "
                                    "image").format(label=label, name=repr(name), w=w, h=h, mp=f"{w * h / 1e6:.1f}",
                                                    most=f"{limits.max_pixels / 1e6:.1f}"))
            _reduce_jpeg(img, mode, size)
            w, h = img.size
            return w, h, max(len(img.getbands()), channels)
    except Image.DecompressionBombError as exc:
        raise UploadError(_("{label}: image {name} is too large to decode safely ({error})").format(
            label=label, name=repr(name), error=exc)) from exc
    except UnidentifiedImageError:
        corrupt.append(_("{name}: not a PNG or JPEG image").format(name=name))
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


@dataclass
class _ImageZip:
    """An image ZIP being read: the open archive, what its images become, and the members that could not
    be read (for the notes and the messages)."""

    zf: zipfile.ZipFile
    label: str
    limits: UploadLimits
    deadline: _Deadline
    size: int
    color: Literal["grayscale", "rgb"]
    corrupt: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return 1 if self.color == "grayscale" else 3

    @property
    def mode(self) -> str:
        """Pillow's mode for the colour."""
        return "L" if self.color == "grayscale" else "RGB"


def _image_members(z: _ImageZip) -> tuple[list[tuple[zipfile.ZipInfo, str]], dict[str, int]]:
    """The images in class folders as (member, class folder), and how many files of each kind were
    skipped; refuses too many members or declared bytes, an unsafe path and a zip bomb before any is read."""
    label, limits = z.label, z.limits
    infos = z.zf.infolist()
    if len(infos) > limits.max_members:
        raise UploadError(_members_message(label, len(infos), limits))
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        raise UploadError(_("{label} declares {size} MB uncompressed; the limit is {most} MB").format(
            label=label, size=f"{total / _MB:,.0f}", most=f"{limits.max_total_bytes / _MB:.0f}"))
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
            raise UploadError(_("{label}: member {member} expands {ratio}x; the limit is {most}x (zip bomb?)").format(
                label=label, member=repr(_member_label(info.filename)),
                ratio=f"{info.file_size / max(info.compress_size, 1):,.0f}", most=f"{limits.max_ratio:g}"))
        if PurePosixPath(parts[-1]).suffix.lower() not in _IMAGE_SUFFIXES:
            skipped["non-image"] += 1
        elif len(parts) < 2:
            skipped["outside a class folder"] += 1
        else:
            picked.append((info, parts[-2]))
    return picked, skipped


def _image_classes(z: _ImageZip, picked: list[tuple[zipfile.ZipInfo, str]], skipped: dict[str, int]) -> list[str]:
    """The class folders, sorted; refuses no image, a single class, too many classes, and a result over
    the array cap."""
    label, limits = z.label, z.limits
    if not picked:
        found = _(", ").join(_skipped_text(k, n, counted=True) for k, n in skipped.items() if n) or _("no files")
        raise UploadError(_("{label} has no PNG/JPEG images in class folders ({found}); put one folder per class, "
                            "e.g. cats/1.png, dogs/2.jpg").format(label=label, found=found))
    classes = sorted({c for _info, c in picked})
    if len(classes) < 2:
        raise UploadError(_("{label}: found a single class folder {name}; classification needs at least two").format(
            label=label, name=repr(safe_label(classes[0]))))
    if len(classes) > limits.max_classes:
        raise UploadError(_("{label}: {n} class folders; the limit is {most}").format(
            label=label, n=len(classes), most=limits.max_classes))
    need = _array_bytes(z, len(picked))
    if need > limits.max_array_bytes:
        raise UploadError(_("{label}: {n} images at {size}x{size} would take {need} MB; the limit is {most} MB: "
                            "choose a smaller size").format(label=label, n=f"{len(picked):,}", size=z.size,
                                                            need=f"{need / _MB:,.0f}",
                                                            most=f"{limits.max_array_bytes / _MB:.0f}"))
    return classes


def _skipped_text(kind: str, n: int, *, counted: bool = False) -> str:
    """Files of a kind a ZIP of images skips: "2 non-image" (counted) or "skipped 2 non-image file(s)"."""
    return ({"non-image": _("{n} non-image"), "symlink": _("{n} symlink"),
             "outside a class folder": _("{n} outside a class folder")} if counted else
            {"non-image": _("skipped {n} non-image file(s)"), "symlink": _("skipped {n} symlink file(s)"),
             "outside a class folder": _("skipped {n} outside a class folder file(s)")})[kind].format(n=n)


def _array_bytes(z: _ImageZip, n_images: int) -> int:
    """Memory of n images as the float32 array the Dataset holds."""
    return n_images * z.size * z.size * z.channels * 4


def _measure_images(z: _ImageZip, picked: list[tuple[zipfile.ZipInfo, str]], data: bytes
                    ) -> list[tuple[zipfile.ZipInfo, str]]:
    """The members whose headers can be read, once their summed pixels and the memory of the result (and
    of decoding the largest) are known to be under the caps: nothing is decoded before this says so."""
    label, limits = z.label, z.limits
    readable, pixels, largest = [], 0, (0, 0)
    for info, cls in picked:
        z.deadline.check()
        header = _image_header(z.zf, info, z.mode, z.size, z.channels, label, limits, z.corrupt)
        if header is not None:
            w, h, values = header
            pixels += w * h * values
            largest = max(largest, (w, h), key=lambda s: s[0] * s[1])
            readable.append((info, cls))
    if pixels > limits.max_total_pixels:
        raise UploadError(_("{label}: its {n} images total {pixels} pixel values (width x height x channels, as "
                            "decoded); the cap per upload is {most}. Upload fewer or smaller images").format(
            label=label, n=f"{len(readable):,}", pixels=f"{pixels:,}", most=f"{limits.max_total_pixels:,}"))
    _check_memory(_array_bytes(z, len(picked)) + 8 * largest[0] * largest[1], data, label, limits,
                  _("{n} images at {size}x{size}, and decoding the largest ({w}x{h}),").format(
                      n=f"{len(picked):,}", size=z.size, w=largest[0], h=largest[1]),
                  _(". Choose a smaller size, or upload fewer or smaller images"))
    return readable


def _decode_images(z: _ImageZip, readable: list[tuple[zipfile.ZipInfo, str]], classes: list[str]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """x (n, size, size, channels) in [0, 1] and y (class indices) of the images that decode."""
    size, channels = z.size, z.channels
    x = np.empty((len(readable), size, size, channels), np.float32)
    y = np.empty(len(readable), np.int64)
    kept = 0
    for info, cls in readable:
        z.deadline.check()
        img = _decode_image(z.zf, info, z.mode, size, z.corrupt)
        if img is None:
            continue
        x[kept] = np.asarray(img, np.float32).reshape(size, size, channels) / 255.0
        y[kept] = classes.index(cls)
        kept += 1
    return x[:kept], y[:kept]


def read_image_zip(data: bytes, filename: str, *, size: int = 32, color: Literal["grayscale", "rgb"] = "rgb",
                   limits: UploadLimits = UploadLimits()) -> Dataset:
    """One folder per class of PNG/JPEG images, decoded in memory and resized to size x size.

    Every image's header is read first: the per-image cap, the sum of pixels over the whole zip and the
    memory of the result are checked before the first image is decoded."""
    label = safe_label(filename)
    if not 4 <= size <= 256:
        raise UploadError(_("image size must be between 4 and 256 pixels, got {size}").format(size=size))
    if color not in ("grayscale", "rgb"):
        raise UploadError(_("colour must be 'grayscale' or 'rgb', got {color}").format(color=repr(color)))
    _check_size(data, label, limits)
    deadline = _Deadline(label, limits)
    with _open_zip(data, label, limits, _("ZIP file (truncated or corrupt?)"), _looks_like(data)) as zf:
        _read_member_names(zf)
        z = _ImageZip(zf, label, limits, deadline, size, color)
        picked, skipped = _image_members(z)
        classes = _image_classes(z, picked, skipped)
        x, y = _decode_images(z, _measure_images(z, picked, data), classes)
    if len(x) == 0:
        raise UploadError(_("{label}: none of its {n} images could be decoded (e.g. {example})").format(
            label=label, n=len(picked), example=z.corrupt[0]))
    if len(np.unique(y)) < 2:
        raise UploadError(_("{label}: only one class has readable images; classification needs two").format(
            label=label))
    notes = [_skipped_text(k, n) for k, n in skipped.items() if n]
    if z.corrupt:
        notes.append(_("skipped {n} unreadable image(s), e.g. {example}").format(n=len(z.corrupt),
                                                                               example=z.corrupt[0]))
    source = (_("uploaded ZIP {label}: {n} images in {k} class folders, resized to {size}x{size} rgb") if
              color == "rgb" else
              _("uploaded ZIP {label}: {n} images in {k} class folders, resized to {size}x{size} grayscale")).format(
        label=label, n=f"{len(x):,}", k=len(classes), size=size)
    return Dataset(f"upload: {label}", x, y, tuple(safe_label(c) for c in classes), "image",
                   source=_("; ").join([source, *notes]))


def read_upload(data: bytes, filename: str, *, target: str | None = None, image_size: int = 32,
                color: Literal["grayscale", "rgb"] = "rgb", limits: UploadLimits = UploadLimits()) -> Dataset:
    """Dispatch on the extension: CSV needs `target`; ZIP uses `image_size` and `color`."""
    kind = upload_kind(filename)
    if kind == "csv":
        return read_csv(data, filename, target, limits)
    if kind == "npz":
        return read_npz(data, filename, limits)
    return read_image_zip(data, filename, size=image_size, color=color, limits=limits)
