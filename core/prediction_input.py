"""One user input for prediction: an uploaded image, or a CSV of rows, as a run's model takes them.

The input is as hostile as any upload: sizes are checked before anything is decoded. A CSV is decoded and
its separator found by the upload reader's own functions (core.uploads), so a file that can train a model
(UTF-16, cp1252, `;`, tab or `|`-separated) can be predicted on too. Problems raise ModelFileError, whose
message is meant for the user.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core import tabular
from core.datasets import model_input
from core.i18n import _
from core.model_files import ModelFileError
from core.uploads import UploadError, csv_separator, decode_csv_bytes

__all__ = ["border_brightness", "read_csv_rows", "read_image", "should_invert"]

_MAX_IMAGE_BYTES = 10 * 1024 * 1024
_MAX_IMAGE_PIXELS = 16_000_000
_IMAGE_FORMATS = {"PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"}
_MAX_CSV_BYTES = 256 * 1024
_MAX_CSV_ROWS = 100


def read_image(data: bytes, input_shape: Sequence[int], *, invert: bool = False) -> np.ndarray:
    """One uploaded image as a (1, h, w, c) float32 batch in [0, 1] matching the run's input shape.

    The pixel count is read from the header and checked before any decoding."""
    from PIL import Image, UnidentifiedImageError

    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ModelFileError(_("this model does not take images (input shape {shape})").format(
            shape=tuple(input_shape)))
    if not data:
        raise ModelFileError(_("the image file is empty"))
    if len(data) > _MAX_IMAGE_BYTES:
        raise ModelFileError(_("the image is {size} MB; the cap is {cap} MB").format(
            size=f"{len(data) / 1e6:.1f}", cap=f"{_MAX_IMAGE_BYTES / 1e6:.0f}"))
    try:
        img = Image.open(io.BytesIO(data))
        fmt = img.format
        w, h = img.size
    except Image.DecompressionBombError as exc:  # PIL refuses the header of a huge image outright
        raise ModelFileError(_("the image is too large to decode safely ({error}); the cap is {cap} pixels").format(
            error=exc, cap=f"{_MAX_IMAGE_PIXELS:,}")) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ModelFileError(_("the file is not an image PIL can read (PNG, JPEG, GIF, BMP, WEBP, TIFF)")) from exc
    if fmt not in _IMAGE_FORMATS:
        raise ModelFileError(_("image format {format} is not accepted; use one of {formats}").format(
            format=fmt, formats=", ".join(sorted(_IMAGE_FORMATS))))
    if w * h > _MAX_IMAGE_PIXELS:
        raise ModelFileError(_("the image is {width}×{height} = {pixels} pixels; the cap is {cap}").format(
            width=w, height=h, pixels=f"{w * h:,}", cap=f"{_MAX_IMAGE_PIXELS:,}"))
    try:
        img.seek(0)
        img = img.convert("L" if input_shape[-1] == 1 else "RGB")
        img = img.resize((int(input_shape[1]), int(input_shape[0])), Image.Resampling.LANCZOS)
    except (OSError, ValueError) as exc:
        raise ModelFileError(_("the image could not be decoded ({error})").format(error=exc)) from exc
    arr = np.asarray(img, dtype=np.float32) / 255.0
    if invert:
        arr = 1.0 - arr
    return arr.reshape(1, *[int(d) for d in input_shape])


def border_brightness(images: np.ndarray) -> float:
    """Mean of the outermost ring of pixels of a (n, h, w, c) batch in [0, 1]: the background's brightness."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or min(x.shape[1:3]) < 2:
        raise ValueError(f"expected a (n, h, w, c) image batch, got shape {x.shape}")
    ring = np.concatenate([x[:, 0].ravel(), x[:, -1].ravel(), x[:, 1:-1, 0].ravel(), x[:, 1:-1, -1].ravel()])
    return float(ring.mean())


def should_invert(image: np.ndarray, training_images: np.ndarray | None) -> bool:
    """True when an uploaded image's background is light and the training images' dark (or the reverse).

    Digits and MNIST are light ink on black; a digit drawn on paper is the opposite and, fed as it is, gets
    a confident wrong answer. Natural images (CIFAR) have no such background and are left alone."""
    if training_images is None or len(training_images) == 0:
        return False
    mine, theirs = border_brightness(image), border_brightness(model_input(training_images[:500]))
    return (theirs < 0.25 and mine > 0.5) or (theirs > 0.75 and mine < 0.5)


def read_csv_rows(data: bytes, feature_names: Sequence[str] = (), *,
                  preparation: dict[str, Any] | None = None) -> np.ndarray:
    """Up to 100 rows for prediction, with a header naming the columns (any order; others are ignored) or
    exactly one value per column, in order.

    Without `preparation`: numbers, one per feature (decimal commas read as in an upload), returned as
    float32 for the caller to scale. With a run's preparation (core.tabular, checked first): the raw columns
    it names, as typed in the original table (text, dates, gaps written "NA", "?", …), prepared exactly as
    the run's training rows were — the model's inputs are returned."""
    text = _csv_text(data)
    if preparation is not None:
        try:
            preparation = tabular.check_preparation(preparation)
        except tabular.PreparationError as exc:
            raise ModelFileError(_("this run's preparation cannot be used: {error}").format(error=exc)) from exc
        feature_names = [c["name"] for c in preparation["columns"]]
    names = [str(f) for f in feature_names]
    sep = csv_separator(text, names)
    has_header = _has_header(text, sep, names)
    frame = _columns(_rows(text, sep, has_header), names, has_header, by_column=preparation is not None)
    if preparation is not None:
        return tabular.prepare_rows(preparation, frame)
    values = np.column_stack([tabular.parse_numbers(frame[n], decimal_comma=sep != ",") for n in names])
    if not np.isfinite(values).all():
        r, c = np.argwhere(~np.isfinite(values))[0]
        raise ModelFileError(_("row {row}, column {column} is not a finite number: {value}").format(
            row=r + 1, column=repr(names[c]), value=repr(str(frame.iat[r, c])[:20])))
    return values.astype(np.float32)


def _csv_text(data: bytes) -> str:
    """The text of the CSV, under the size cap, decoded as an upload is (core.uploads.decode_csv_bytes)."""
    if not data.strip():
        raise ModelFileError(_("the CSV is empty"))
    if len(data) > _MAX_CSV_BYTES:
        raise ModelFileError(_("the CSV is {size} KB; the cap for prediction is {cap} KB").format(
            size=f"{len(data) / 1e3:.0f}", cap=f"{_MAX_CSV_BYTES / 1e3:.0f}"))
    try:
        text, _encoding = decode_csv_bytes(data, _("the CSV"))
    except UploadError as exc:
        raise ModelFileError(str(exc)) from exc
    return text


def _has_header(text: str, sep: str, names: Sequence[str]) -> bool:
    """Whether the first non-blank row names at least one of the columns."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        cells = next(csv.reader([first], delimiter=sep), [])
    except csv.Error:  # a field over the csv module's size limit: no column name
        return False
    return any(cell.strip() in names for cell in cells)


def _rows(text: str, sep: str, has_header: bool) -> pd.DataFrame:
    """The rows as text cells (columns named by the header, if there is one), at most _MAX_CSV_ROWS."""
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, header=0 if has_header else None,
                            nrows=_MAX_CSV_ROWS + 1, index_col=False, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ModelFileError(_("the CSV could not be parsed ({error})").format(error=exc)) from exc
    if len(frame) > _MAX_CSV_ROWS:
        raise ModelFileError(_("the CSV has more than {n} rows; predict at most {n} at once").format(n=_MAX_CSV_ROWS))
    if len(frame) == 0:
        raise ModelFileError(_("the CSV has a header but no rows"))
    if has_header:
        frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _columns(frame: pd.DataFrame, names: Sequence[str], has_header: bool, *, by_column: bool) -> pd.DataFrame:
    """The rows' cells under the model's column names, in its order: by header name, else by position
    (by_column: the names are a table's raw columns, else the model's numeric features)."""
    listed = f"{', '.join(names[:8])}{'…' if len(names) > 8 else ''}"
    if has_header:
        missing = [n for n in names if n not in frame.columns]
        if missing:
            message = (_("the CSV lacks the column(s) {missing}; the model needs {n} columns: {listed}") if by_column
                       else _("the CSV lacks the column(s) {missing}; the model needs {n} features: {listed}"))
            raise ModelFileError(message.format(missing=", ".join(missing[:5]), n=len(names), listed=listed))
        return frame.loc[:, ~frame.columns.duplicated()][list(names)]
    if frame.shape[1] != len(names):
        message = (_("each row must have {n} values (one per column: {listed}), got {got}") if by_column
                   else _("each row must have {n} values (one per feature: {listed}), got {got}"))
        raise ModelFileError(message.format(n=len(names), listed=listed, got=frame.shape[1]))
    frame.columns = list(names)
    return frame
