"""What a user predicts on: one uploaded image, or a CSV of rows, read as the run's model takes them.

A prediction CSV goes through the upload reader's decoding and separator detection, so a file that trains
a model (cp1252, `|`-separated, decimal commas, a header with accents and commas in its names) is
predicted on with the same rows it would train with.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from core.model_files import ModelFileError
from core.prediction_input import border_brightness, read_csv_rows, read_image, should_invert


def _png(size, mode="L", color=255):
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def test_read_image_resizes_scales_and_caps_pixels():
    x = read_image(_png((40, 30), "RGB", (255, 255, 255)), (8, 8, 1))
    assert x.shape == (1, 8, 8, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x, 1.0)
    np.testing.assert_allclose(read_image(_png((16, 16)), (8, 8, 1), invert=True), 0.0)
    assert read_image(_png((16, 16)), (32, 32, 3)).shape == (1, 32, 32, 3)
    with pytest.raises(ModelFileError, match=r"5000×4000 = 20,000,000 pixels; the cap is 16,000,000"):
        read_image(_png((5000, 4000)), (8, 8, 1))
    with pytest.raises(ModelFileError, match="not an image"):
        read_image(b"GIF89a-not-really", (8, 8, 1))


def test_read_image_refuses_a_huge_header_with_a_message():
    """A 20000x20000 PNG header trips PIL's own bomb check in Image.open: a message, not a traceback."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
    data = b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")
    with pytest.raises(ModelFileError, match="too large to decode safely.*the cap is 16,000,000 pixels"):
        read_image(data, (8, 8, 1))
    with pytest.raises(ModelFileError, match="does not take images"):
        read_image(_png((8, 8)), (4,))


def test_read_csv_rows_with_and_without_header():
    names = ("a", "b", "c")
    np.testing.assert_allclose(read_csv_rows(b"c,a,b\n3,1,2\n", names), [[1, 2, 3]])
    np.testing.assert_allclose(read_csv_rows(b"1;2;-0.5\n", names), [[1, 2, -0.5]])
    with pytest.raises(ModelFileError, match="lacks the column"):
        read_csv_rows(b"a,b\n1,2\n", names)
    with pytest.raises(ModelFileError, match="each row must have 3 values"):
        read_csv_rows(b"1,2\n", names)
    with pytest.raises(ModelFileError, match="row 1, column 'b' is not a finite number: '=cmd'"):
        read_csv_rows(b"a,b,c\n1,=cmd,3\n", names)


def test_read_csv_rows_with_a_runs_preparation_reads_raw_rows_as_the_table_had_them():
    """A row as it appears in the uploaded table (text, dates, gaps, extra columns such as the ID and the
    target) gives exactly the run's training inputs for that row."""
    import pandas as pd

    from core.datasets import split_dataset
    from core.uploads import read_csv
    from tests.core.test_tabular import titanic_like

    data = titanic_like(200)
    ds = read_csv(data, "titanic.csv")
    split = split_dataset(ds, seed=0)
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    rows = ds.table.rows[split.test_idx[:4]]
    chosen = frame.iloc[rows][list(reversed(frame.columns))]  # every column, in another order
    x = read_csv_rows(chosen.to_csv(index=False).encode(), preparation=split.preparation)
    np.testing.assert_allclose(x, split.x_test[:4], rtol=1e-5, atol=2e-6)
    names = [c["name"] for c in split.preparation["columns"]]
    typed = ",".join(["1", "female", "NA", "0", "0", "?", "S", "1912-04-05"]) + "\n"  # one value per column
    assert names == ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked", "Boarded"]
    assert np.isfinite(read_csv_rows(typed.encode(), preparation=split.preparation)).all()  # gaps filled in
    with pytest.raises(ModelFileError, match="lacks the column.*Fare"):
        read_csv_rows(b"Pclass,Sex,Age,SibSp,Parch,Embarked,Boarded\n1,male,3,0,0,S,1912-04-02\n",
                      preparation=split.preparation)
    with pytest.raises(ModelFileError, match="each row must have 8 values"):
        read_csv_rows(b"1,2\n", preparation=split.preparation)
    with pytest.raises(ModelFileError, match="preparation cannot be used: .*finite number"):
        read_csv_rows(typed.encode(), preparation={**split.preparation, "mean": [float("inf")] * 14})


def test_a_light_background_upload_is_inverted_for_dark_background_training_images():
    dark_digits = np.zeros((5, 8, 8, 1), np.float32)
    dark_digits[:, 2:6, 3:5] = 1.0  # light ink on black, like digits and MNIST
    paper = read_image(_png((40, 40), "L", 255), (8, 8, 1))  # a white sheet
    assert border_brightness(paper) == pytest.approx(1.0) and border_brightness(dark_digits) == 0.0
    assert should_invert(paper, dark_digits)
    assert not should_invert(1.0 - paper, dark_digits)  # already light ink on black
    assert should_invert(1.0 - paper, 1.0 - dark_digits)  # the reverse pairing too
    photos = np.full((5, 8, 8, 3), 0.5, np.float32)  # natural images: no dark or light background
    assert not should_invert(read_image(_png((40, 40), "RGB", (255, 255, 255)), (8, 8, 3)), photos)
    assert not should_invert(paper, None)  # the training data is not at hand: leave it alone


def test_read_csv_rows_reads_what_the_upload_reader_reads():
    """Prediction CSVs go through the same decoder as uploads: a spreadsheet's UTF-16 'Unicode text'
    (tab-separated, with a byte-order mark), cp1252 and pipe-separated files are read, binary is refused."""
    names = ["a", "b"]
    utf16 = "a\tb\r\n1,5\t2\r\n".replace("1,5", "1.5").encode("utf-16")
    np.testing.assert_allclose(read_csv_rows(utf16, names), [[1.5, 2]])
    np.testing.assert_allclose(read_csv_rows("b|a\n2|1\n".encode("cp1252"), names), [[1, 2]])
    with pytest.raises(ModelFileError, match="not a CSV"):
        read_csv_rows(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", names)


def _measures(n: int = 80, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """A French spreadsheet's export: accented names with commas in them, decimal commas, a category."""
    rng = np.random.default_rng(seed)
    header = ["Poids (kg, brut)", "Température (°C, air)", "Catégorie", "Qualité"]
    rows = [[f"{rng.uniform(1, 50):.1f}".replace(".", ","), f"{rng.uniform(-5, 30):.2f}".replace(".", ","),
             str(rng.choice(["élevé", "moyen", "bas"])), str(rng.choice(["bonne", "mauvaise"]))]
            for _ in range(n)]
    return header, rows


def _pipes(header: list[str] | None, rows: list[list[str]]) -> bytes:
    lines = ([header] if header else []) + rows
    return "".join("|".join(line) + "\n" for line in lines).encode("cp1252")


def test_a_pipe_separated_cp1252_table_that_trains_a_model_is_predicted_on_row_for_row():
    """The training upload reads this file; its test rows, given back for prediction (every column in
    another order, or one value per feature without a header), give exactly the run's test inputs."""
    from core.datasets import split_dataset
    from core.uploads import read_csv

    header, rows = _measures()
    ds = read_csv(_pipes(header, rows), "mesures.csv", target="Qualité")
    split = split_dataset(ds, seed=0)
    chosen = [rows[r] for r in ds.table.rows[split.test_idx[:4]]]
    order = [3, 2, 1, 0]  # the target too, in another order: on commas, header and rows split in 3 as well
    named = _pipes([header[c] for c in order], [[row[c] for c in order] for row in chosen])
    np.testing.assert_allclose(read_csv_rows(named, preparation=split.preparation), split.x_test[:4],
                               rtol=1e-5, atol=2e-6)
    bare = _pipes(None, [row[:3] for row in chosen])  # one value per column, in the run's order
    np.testing.assert_allclose(read_csv_rows(bare, preparation=split.preparation), split.x_test[:4],
                               rtol=1e-5, atol=2e-6)


def test_a_pipe_separated_cp1252_csv_of_numbers_is_read_by_its_accented_header():
    names = ["Poids (kg, brut)", "Température"]
    data = "Température|Poids (kg, brut)\n21|12,5\n-3,25|7\n".encode("cp1252")
    np.testing.assert_allclose(read_csv_rows(data, names), [[12.5, 21], [7, -3.25]])
    np.testing.assert_allclose(read_csv_rows(b"1,5|2,5\n", ["a", "b"]), [[1.5, 2.5]])  # no header
