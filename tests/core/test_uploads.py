"""Upload readers on generated files: the good cases and every hostile or broken input, each in its real format
(CSV text in the encodings spreadsheets write, numpy.savez files, ZIPs of PNG/JPEG images). Refusals are
checked by their message and by counting the work that must not have happened (no timing assertions)."""

from __future__ import annotations

import codecs
import io
import stat
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFile

import core.uploads as uploads
from core.uploads import (
    UploadError,
    UploadLimits,
    csv_separator,
    decode_csv_bytes,
    inspect_csv,
    read_csv,
    read_image_zip,
    read_npz,
    read_upload,
    safe_label,
    upload_kind,
)

# --- CSV ----------------------------------------------------------------------------------------------


def test_csv_numeric_features_and_string_target():
    data = b"sepal,petal,species\n1.0,2.5,setosa\n1.5,3.0,virginica\n2.0,0.5,setosa\n"
    info = inspect_csv(data, "flowers.csv")
    assert info.columns == ("sepal", "petal", "species") and info.suggested_target == "species"
    assert info.separator == "," and info.encoding == "utf-8" and info.n_rows == 3
    ds = read_csv(data, "flowers.csv", "species")
    assert ds.kind == "tabular" and ds.name == "upload: flowers.csv"
    np.testing.assert_allclose(ds.x, [[1.0, 2.5], [1.5, 3.0], [2.0, 0.5]])
    assert ds.class_names == ("setosa", "virginica") and ds.y.tolist() == [0, 1, 0]
    assert ds.feature_names == ("sepal", "petal") and ds.ref is None


def test_numeric_class_labels_sort_numerically():
    ds = read_csv(b"a,label\n1,10\n2,9\n3,2\n", "n.csv", "label")
    assert ds.class_names == ("2", "9", "10") and ds.y.tolist() == [2, 1, 0]


def test_semicolon_separator_and_decimal_comma():
    data = b"x;y;label\n1,5;2;a\n3,25;4;b\n"
    info = inspect_csv(data, "eu.csv")
    assert info.separator == ";"
    ds = read_csv(data, "eu.csv", "label")
    np.testing.assert_allclose(ds.x, [[1.5, 2.0], [3.25, 4.0]])


def test_cp1252_is_detected_and_reported():
    data = "temp,ville,label\n20,Orléans,a\n21,Besançon,b\n22,Orléans,a\n".encode("cp1252")
    info = inspect_csv(data, "fr.csv")
    assert info.encoding == "cp1252"
    assert any("not utf-8" in n for n in info.notes)
    ds = read_csv(data, "fr.csv", "label")
    assert ds.feature_names == ("temp", "ville=Besançon", "ville=Orléans")
    np.testing.assert_allclose(ds.x[:, 1:], [[0, 1], [1, 0], [0, 1]])


def test_latin1_fallback_when_cp1252_fails():
    data = b"a,label\n1,x\x81\n2,y\n"  # 0x81 is undefined in cp1252
    info = inspect_csv(data, "odd.csv")
    assert info.encoding == "latin-1"
    assert any("not cp1252" in n for n in info.notes)


def test_utf8_bom_does_not_leak_into_the_first_column():
    info = inspect_csv("\ufeffa,b\n1,x\n2,y\n".encode(), "bom.csv")
    assert info.columns == ("a", "b") and info.encoding == "utf-8-sig"


def test_ragged_rows_are_refused_with_the_line():
    with pytest.raises(UploadError, match=r"ragged.csv: line 3 has 2 fields but the header has 3"):
        inspect_csv(b"a,b,c\n1,2,x\n1,2\n3,4,y\n", "ragged.csv")


def test_one_extra_field_does_not_become_the_index():
    with pytest.raises(UploadError, match="line 2 has 4 fields but the header has 3"):
        read_csv(b"a,b,label\n1,2,x,9\n3,4,y,8\n", "extra.csv", "label")


def test_trailing_separator_on_every_row_is_dropped_with_a_note():
    ds = read_csv(b"a,b,label\n1,2,x,\n3,4,y,\n", "trail.csv", "label")
    np.testing.assert_allclose(ds.x, [[1, 2], [3, 4]])
    assert "dropped an empty field" in ds.source


@pytest.mark.parametrize("data, message", [
    (b"", "empty.csv is empty"),
    (b"\n \n", "empty.csv is empty"),
    (b"a,b,label\n", "header but no data rows"),
    (b"label\nx\ny\n", "one column"),
])
def test_empty_and_degenerate_files(data, message):
    with pytest.raises(UploadError, match=message):
        inspect_csv(data, "empty.csv")


def test_identifiers_are_ignored_with_the_reason_and_many_categories_keep_the_top_k():
    rows = "".join(f"{i},name{i},{i % 2}\n" for i in range(30))
    info = inspect_csv(f"n,who,label\n{rows}".encode(), "names.csv")
    kinds = {p.name: (p.kind, p.role, p.reason) for p in info.table.profiles}
    assert kinds["who"][:2] == ("identifier", "ignore") and "identifier" in kinds["who"][2]
    assert kinds["n"][:2] == ("identifier", "ignore")  # 0..29: a row number
    with pytest.raises(UploadError, match="names.csv: no feature columns"):
        read_csv(f"n,who,label\n{rows}".encode(), "names.csv", "label")
    # the same names repeated: a category with 30 values, one-hot encoded as its top 20 + "other"
    rows = "".join(f"{i * 0.5},town{i % 30},{i % 2}\n" for i in range(120))
    ds = read_csv(f"x,town,label\n{rows}".encode(), "towns.csv", "label")
    assert ds.input_shape == (1 + 21,) and ds.feature_names[-1] == "town=(other)"
    assert "town (top 20 of 30 values + other)" in " ".join(ds.table.summary)
    narrow = read_csv(f"x,town,label\n{rows}".encode(), "towns.csv", "label", top_k=5)
    assert narrow.input_shape == (1 + 6,)


def test_a_missing_target_drops_its_rows_and_says_so():
    ds = read_csv(b"a,label\n1,x\n2,\n3,y\n4,NA\n5,x\n", "t.csv", "label")
    assert ds.n_samples == 3 and ds.class_names == ("x", "y") and ds.y.tolist() == [0, 1, 0]
    assert "2 row(s) dropped because the target 'label' is missing there (lines 3, 5)" in " ".join(ds.table.summary)
    assert "2 rows dropped" in ds.source
    with pytest.raises(UploadError, match="single value 'x'"):
        read_csv(b"a,label\n1,x\n2,x\n", "t.csv", "label")
    with pytest.raises(UploadError, match="target column 'nope' is not in the file"):
        read_csv(b"a,label\n1,x\n2,y\n", "t.csv", "nope")


@pytest.mark.parametrize("value, what", [("inf", "infinite"), ("-inf", "infinite"), ("nan", "missing"),
                                         ("NA", "missing"), ("", "missing"), ("?", "missing"),
                                         ("null", "missing"), ("n/a", "missing"), ("-", "missing")])
def test_missing_and_infinite_features_are_filled_or_dropped(value, what):
    data = f"a,b,label\n1,2,x\n{value},3,y\n5,4,x\n7,5,y\n".encode()
    ds = read_csv(data, "nan.csv", "label")
    np.testing.assert_allclose(ds.x[:, 0], [1, 5, 5, 7])  # filled with the median of the other rows
    summary = " ".join(ds.table.summary)
    assert "Missing values filled in, with values fitted on the training part only: a 1 (25%) with the median" \
        in summary
    assert ("Infinite values count as missing: a (1)" in summary) == (what == "infinite")
    dropped = read_csv(data, "nan.csv", "label", missing="drop")
    np.testing.assert_allclose(dropped.x[:, 0], [1, 5, 7])
    assert "1 more row(s) dropped because a feature is missing there (a 1; line 3)" in " ".join(
        dropped.table.summary)
    mean = read_csv(data, "nan.csv", "label", numbers="mean")
    np.testing.assert_allclose(mean.x[1, 0], (1 + 5 + 7) / 3, rtol=1e-6)


def test_size_row_and_column_caps():
    data = b"a,label\n" + b"1,x\n2,y\n" * 10
    with pytest.raises(UploadError, match=r"big.csv is 0.0 MB; the limit is 0 MB"):
        inspect_csv(data, "big.csv", UploadLimits(max_bytes=20))
    with pytest.raises(UploadError, match="20 rows; the limit is 5"):
        inspect_csv(data, "big.csv", UploadLimits(max_rows=5))
    with pytest.raises(UploadError, match="2 columns; the limit is 1"):
        inspect_csv(data, "big.csv", UploadLimits(max_columns=1))


def test_binary_file_named_csv_is_refused():
    with pytest.raises(UploadError, match=r"x.csv is not a CSV: it contains NUL bytes \(the first at byte 4\)"):
        inspect_csv(b"PK\x03\x04\x00\x00binary", "x.csv")


def test_file_name_is_sanitised_for_display():
    label = safe_label("../../etc/<script>alert(1)</script>.csv")
    assert "/" not in label and "<" not in label and ">" not in label and not label.startswith(".")
    assert safe_label("C:\\Users\\me\\data set.csv") == "data set.csv"
    assert safe_label("") == "upload"
    ds = read_csv(b"a,label\n1,x\n2,y\n", "../<b>evil</b>.csv", "label")
    assert "<" not in ds.name and "/" not in ds.name.removeprefix("upload: ")


def test_upload_kind_by_extension():
    assert upload_kind("a.CSV") == "csv" and upload_kind("b.npz") == "npz" and upload_kind("c.zip") == "zip"
    with pytest.raises(UploadError, match="unsupported file type '.exe'"):
        upload_kind("setup.exe")


# --- NPZ ----------------------------------------------------------------------------------------------

def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_npz_tabular_with_class_names():
    x = np.arange(12, dtype=np.float64).reshape(6, 2)
    ds = read_npz(_npz(x=x, y=np.array([0, 1, 2, 0, 1, 2]), class_names=np.array(["a", "b", "c"])), "t.npz")
    assert ds.kind == "tabular" and ds.class_names == ("a", "b", "c")
    np.testing.assert_allclose(ds.x, x)


def test_npz_uint8_images_are_scaled_and_get_a_channel():
    x = np.random.default_rng(0).integers(0, 256, (6, 5, 4), dtype=np.uint8)
    ds = read_npz(_npz(x=x, y=np.array(["cat", "dog"] * 3)), "img.npz")
    assert ds.kind == "image" and ds.x.shape == (6, 5, 4, 1)
    np.testing.assert_allclose(ds.x[..., 0], x / 255.0, rtol=1e-6)
    assert ds.class_names == ("cat", "dog") and ds.y.tolist() == [0, 1] * 3


def test_npz_float_images_over_one_are_rescaled():
    x = np.linspace(0, 10, 6 * 4 * 4 * 3).reshape(6, 4, 4, 3)
    ds = read_npz(_npz(x=x, y=np.array([0, 1] * 3)), "f.npz")
    assert ds.x.min() == 0 and ds.x.max() == pytest.approx(1)
    np.testing.assert_allclose(ds.x, x / 10, rtol=1e-5, atol=1e-6)


def test_npz_object_array_is_refused_without_unpickling():
    x = np.array([{"a": 1}, {"b": 2}], dtype=object)
    with pytest.raises(UploadError, match=r"obj.npz: array 'x' holds Python objects"):
        read_npz(_npz(x=x, y=np.array([0, 1])), "obj.npz")


def _npy_header_only(shape, dtype="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()  # a header declaring a huge array, and no data at all


def test_npz_declared_size_is_checked_from_the_header_before_reading():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.npy", _npy_header_only((100_000, 100_000)))
        zf.writestr("y.npy", _npy_header_only((100_000,), "<i8"))
    # Reading the data would fail as truncated; the cap must fire first, from the header alone.
    with pytest.raises(UploadError, match=r"bomb.npz: its arrays declare 76,295 MB; the limit is 512 MB"):
        read_npz(buf.getvalue(), "bomb.npz")


def test_npz_truncated_and_not_a_zip():
    good = _npz(x=np.zeros((50, 3)), y=np.arange(50) % 2)
    with pytest.raises(UploadError, match="cut.npz"):
        read_npz(good[: len(good) // 2], "cut.npz")
    with pytest.raises(UploadError, match="not a valid .npz"):
        read_npz(b"hello world", "text.npz")


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((4, 2))}, "no array named y"),
    ({"x": np.zeros((4, 2)), "y": np.zeros(4, int)}, "single class"),
    ({"x": np.zeros((4, 2)), "y": np.arange(3)}, "x has 4 samples but y has 3"),
    ({"x": np.array([[np.nan, 1], [1, 2]]), "y": np.arange(2)}, "NaN or infinite"),
    ({"x": np.zeros((4, 2, 2, 2, 2)), "y": np.arange(4) % 2}, "got shape"),
    ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 5, 0]), "class_names": np.array(["a", "b"])}, r"0\.\.1"),
])
def test_npz_bad_contents(arrays, message):
    with pytest.raises(UploadError, match=message):
        read_npz(_npz(**arrays), "bad.npz")


# --- ZIP of image folders ------------------------------------------------------------------------------

def _png(size=(6, 5), color=(200, 10, 10), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def _zip(members: dict[str, bytes], symlinks=(), compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_zip_of_class_folders():
    members = {"pets/cat/1.png": _png(color=(255, 0, 0)), "pets/cat/2.PNG": _png(color=(255, 0, 0)),
               "pets/dog/1.jpg": _png(color=(0, 0, 255), fmt="JPEG"), "pets/README.txt": b"hi",
               "__MACOSX/pets/cat/._1.png": b"junk", "pets/dog/.DS_Store": b"junk"}
    ds = read_image_zip(_zip(members), "pets.zip", size=8, color="rgb")
    assert ds.x.shape == (3, 8, 8, 3) and ds.class_names == ("cat", "dog")
    assert ds.y.tolist() == [0, 0, 1]
    np.testing.assert_allclose(ds.x[0, 4, 4], [1, 0, 0], atol=1e-6)
    assert ds.x[2, 4, 4, 2] > 0.9 and ds.x[2, 4, 4, 0] < 0.1  # JPEG blue, up to compression
    assert "skipped 1 non-image file(s)" in ds.source
    grey = read_image_zip(_zip(members), "pets.zip", size=4, color="grayscale")
    assert grey.x.shape == (3, 4, 4, 1)
    np.testing.assert_allclose(grey.x[0, 0, 0, 0], Image.new("RGB", (1, 1), (255, 0, 0)).convert("L").getpixel((0, 0)) / 255)


@pytest.mark.parametrize("name", ["../evil/1.png", "/abs/cat/1.png", "cat\\..\\1.png", "a/../../b/1.png"])
def test_zip_unsafe_paths_are_refused(name):
    data = _zip({"cat/1.png": _png(), "dog/1.png": _png(), name: _png()})
    with pytest.raises(UploadError, match="unsafe path"):
        read_image_zip(data, "evil.zip")


def test_zip_symlinks_are_skipped_and_counted():
    ds = read_image_zip(_zip({"cat/1.png": _png(), "dog/1.png": _png()}, symlinks=["cat/link.png"]), "l.zip")
    assert ds.n_samples == 2 and "skipped 1 symlink" in ds.source


def test_zip_member_count_total_size_and_ratio_caps():
    data = _zip({f"c{i % 2}/{i}.png": _png() for i in range(6)})
    with pytest.raises(UploadError, match="6 members; the limit is 5"):
        read_image_zip(data, "many.zip", limits=UploadLimits(max_members=5))
    with pytest.raises(UploadError, match="declares 0 MB uncompressed"):
        read_image_zip(data, "big.zip", limits=UploadLimits(max_total_bytes=100))
    bomb = _zip({"a/1.png": _png(), "b/1.png": _png(), "a/zeros.png": bytes(5_000_000)},
                compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(UploadError, match=r"member 'a/zeros.png' expands [\d,]+x; the limit is 100x"):
        read_image_zip(bomb, "bomb.zip")


def test_zip_without_images_or_with_one_class():
    with pytest.raises(UploadError, match=r"no PNG/JPEG images in class folders \(2 non-image\)"):
        read_image_zip(_zip({"a/x.txt": b"1", "b/y.csv": b"2"}), "text.zip")
    with pytest.raises(UploadError, match="single class folder 'cat'"):
        read_image_zip(_zip({"cat/1.png": _png(), "cat/2.png": _png()}), "one.zip")


def test_zip_image_over_the_pixel_cap_is_refused_before_decoding(monkeypatch):
    big = _png(size=(2000, 1500))
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self) or None)
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(UploadError, match=r"image 'a/huge.png' is 2000x1500 pixels \(3.0 MP\); the limit is 1.0 MP"):
        read_image_zip(_zip({"a/huge.png": big, "b/1.png": _png()}), "px.zip",
                       limits=UploadLimits(max_pixels=1_000_000))
    assert not decoded and Image.MAX_IMAGE_PIXELS == before


def test_zip_corrupt_images_are_skipped_with_a_note_and_fail_when_nothing_is_left():
    good = _zip({"a/1.png": _png(), "b/1.png": _png(), "b/2.png": _png()[:30]})
    ds = read_image_zip(good, "c.zip")
    assert ds.n_samples == 2 and "skipped 1 unreadable image(s), e.g. b/2.png" in ds.source
    with pytest.raises(UploadError, match="none of its 2 images could be decoded"):
        read_image_zip(_zip({"a/1.png": b"not a png", "b/1.png": _png()[:20]}), "bad.zip")


def test_truncated_zip_is_a_clear_error():
    data = _zip({"a/1.png": _png(), "b/1.png": _png()})
    with pytest.raises(UploadError, match="cut.zip is not a valid ZIP file"):
        read_image_zip(data[:40], "cut.zip")


def test_read_upload_dispatches_on_extension():
    assert read_upload(b"a,label\n1,x\n2,y\n", "t.csv").class_names == ("x", "y")
    assert read_upload(_npz(x=np.zeros((2, 2)), y=np.arange(2)), "t.npz").kind == "tabular"
    assert read_upload(_zip({"a/1.png": _png(), "b/1.png": _png()}), "t.zip", image_size=6).input_shape == (6, 6, 3)


def test_unsafe_member_is_named_by_its_path():
    data = _zip({"cat/1.png": _png(), "dog/1.png": _png(), "../../etc/<x>.png": _png()})
    with pytest.raises(UploadError, match=r"evil.zip: refused, member '../../etc/_x_.png' has an unsafe path"):
        read_image_zip(data, "evil.zip")


def test_a_stray_text_value_in_a_numeric_column_is_refused_not_one_hot_encoded():
    data = b"h,w,label\n1.0,1,a\n2.0,2,b\nh,3,a\n3.0,4,b\n"  # e.g. a header line pasted twice
    info = inspect_csv(data, "twice.csv")
    h = info.table.profile("h")
    assert h.role == "ignore" and "column 'h' is numeric except 1 value(s) such as 'h' at line 4" in h.reason
    assert read_csv(data, "twice.csv", "label").feature_names == ("w",)  # ignored, with the reason shown
    with pytest.raises(UploadError, match=r"column 'h' is numeric except 1 value\(s\) such as 'h' at line 4"):
        read_csv(data, "twice.csv", "label", roles={"h": "feature"})


# --- a file with the wrong extension ------------------------------------------------------------------

def _npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros((6, 2), np.float32), y=np.arange(6) % 2)
    return buf.getvalue()


def _image_zip_bytes() -> bytes:
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls in ("a", "b"):
            zf.writestr(f"{cls}/1.png", png.getvalue())
    return buf.getvalue()


@pytest.mark.parametrize(("data", "name", "hint"), [
    (_npz_bytes(), "arrays.csv", "name it .npz if it holds NumPy arrays"),
    (b"a,b,label\n1,2,x\n3,4,y\n", "table.zip", "if it is a table, name it .csv"),
    (b"a,b,label\n1,2,x\n3,4,y\n", "table.npz", "if it is a table, name it .csv"),
    (_image_zip_bytes(), "images.npz", "if it is a ZIP of image folders, name it .zip"),
])
def test_a_renamed_file_gets_a_hint_about_its_real_type(data, name, hint):
    with pytest.raises(UploadError) as info:
        read_upload(data, name)
    assert hint in str(info.value)


# --- CSV encodings: what spreadsheets and editors really save -------------------------------------------

_TABLE = "température\tville\tlabel\n20.5\tOrléans\tété\n21\tBesançon\thiver\n22.25\tOrléans\tété\n"


@pytest.mark.parametrize("bom, encoding", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
                                           (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be")])
def test_unicode_text_with_a_byte_order_mark_is_read(bom, encoding):
    data = bom + _TABLE.encode(encoding)  # Excel's "Unicode text": UTF-16 LE with a BOM, tab-separated
    info = inspect_csv(data, "unicode.txt")
    assert info.encoding == encoding[:6] and info.separator == "\t"
    assert info.columns == ("température", "ville", "label") and info.n_rows == 3
    ds = read_csv(data, "unicode.txt", "label")
    np.testing.assert_allclose(ds.x, [[20.5, 0, 1], [21, 1, 0], [22.25, 0, 1]])
    assert ds.feature_names == ("température", "ville=Besançon", "ville=Orléans")
    assert ds.class_names == ("hiver", "été") and ds.y.tolist() == [1, 0, 1]


def test_utf8_with_bom_reads_the_same_as_without():
    plain = read_csv(_TABLE.encode(), "a.csv", "label")
    bom = read_csv(codecs.BOM_UTF8 + _TABLE.encode(), "b.csv", "label")
    np.testing.assert_array_equal(plain.x, bom.x)
    assert plain.feature_names == bom.feature_names and "utf-8-sig" in bom.source


def test_cp1252_with_accented_names_in_the_header_and_values():
    data = "température;ville;label\n20,5;Orléans;oui\n21;Besançon;non\n".encode("cp1252")
    info = inspect_csv(data, "fr.csv")
    assert info.encoding == "cp1252" and info.separator == ";" and info.columns[0] == "température"
    ds = read_csv(data, "fr.csv", "label")
    np.testing.assert_allclose(ds.x[:, 0], [20.5, 21])
    assert "read as cp1252" in info.notes


@pytest.mark.parametrize("sep", ["\t", ";", ",", "|"])
def test_the_separator_is_detected(sep):
    rows = [["a", "b b", "label"], ["1.5", "2", "x"], ["3", "4", "y"]]
    info = inspect_csv("\n".join(sep.join(r) for r in rows).encode(), "t.tsv")
    assert info.separator == sep and info.columns == ("a", "b b", "label")


def test_the_separator_of_rows_that_split_either_way():
    """A comma loses a tie (decimal commas); a reader that knows the columns (prediction) passes their names:
    the separator whose first row names them wins, then one that gives that many fields."""
    assert csv_separator("1,5|2\n3,5|4\n") == "|"
    assert csv_separator("Poids (kg, brut)|Taille (cm, debout)\n",
                         ["Taille (cm, debout)", "Poids (kg, brut)"]) == "|"
    assert csv_separator("Taille|Poids (kg, brut)|Note\n", ["Poids (kg, brut)", "Taille"]) == "|"
    assert csv_separator("1,5|2,5\n", ["a", "b"]) == "|"
    assert csv_separator("1,2|5,3\n", ["a", "b", "c"]) == ","


def test_quoted_fields_with_separators_and_line_breaks_are_one_field():
    data = b'"a","note","label"\r\n1,"one, two\r\nthree",x\r\n2,"say ""hi""",y\r\n'
    info = inspect_csv(data, "q.csv")
    assert info.separator == "," and info.n_rows == 2
    assert info.preview["note"].tolist() == ["one, two\r\nthree", 'say "hi"']


@pytest.mark.parametrize("data, message", [
    (Image.new("RGB", (4, 4)).tobytes() + b"\x89PNG", "NUL bytes"),
    (b"\x89PNG\r\n\x1a\n" + bytes(20), "It looks like a single image"),
    (b"PK\x03\x04" + bytes(20), "It looks like a ZIP archive"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "It looks like a PDF"),
    ("a,b\n1,2\n".encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
    (b"a,b\n" + bytes(range(1, 9)) * 10 + b",1\n", "control characters"),
    (codecs.BOM_UTF16_LE + b"a\x00,\x00\x00\xd8", "byte-order mark but is not valid UTF-16"),
])
def test_binary_files_are_not_a_csv(data, message):
    with pytest.raises(UploadError, match=r"^x.csv is not a CSV") as info:
        inspect_csv(data, "x.csv")
    assert message in str(info.value)


def test_a_real_png_renamed_csv_is_not_a_csv():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, "PNG")
    with pytest.raises(UploadError, match="photo.csv is not a CSV.*single image"):
        read_upload(buf.getvalue(), "photo.csv")


def test_decode_csv_bytes_is_the_one_decision_for_every_reader():
    for data, codec in [(_TABLE.encode(), "utf-8"), (codecs.BOM_UTF8 + _TABLE.encode(), "utf-8-sig"),
                        (_TABLE.encode("utf-16"), "utf-16"), (_TABLE.encode("utf-32"), "utf-32"),
                        (_TABLE.encode("cp1252"), "cp1252"), (b"a\n\x81\n", "latin-1")]:
        text, got = decode_csv_bytes(data)
        assert got == codec and data.decode(got) == text and not text.startswith("\ufeff")
    with pytest.raises(UploadError, match="rows.csv is not a CSV"):
        decode_csv_bytes(b"a\x00b", "rows.csv")


# --- Chinese names: what Excel and Windows save on a Chinese system ----------------------------------------

_CHINESE = "城市,温度,天气\n" + "".join(f"{['北京', '上海', '广州'][i % 3]},{15 + i % 7},{['晴', '多云', '小雨'][i % 3]}\n"
                                      for i in range(12))


@pytest.mark.parametrize("encoding, read_as", [("utf-8", "utf-8"), ("gbk", "gb18030"), ("gb18030", "gb18030")])
def test_a_table_with_chinese_columns_and_classes_is_read_in_the_encodings_chinese_excel_saves(encoding, read_as):
    """Excel on a Chinese Windows saves "CSV" in GBK (a subset of GB18030), which cp1252 or latin-1 would
    also decode, into nonsense: GB18030 is tried first where the text reads as Chinese."""
    data = _CHINESE.encode(encoding)
    text, codec = decode_csv_bytes(data)
    assert codec == read_as and text == _CHINESE
    info = inspect_csv(data, "天气.csv")
    assert info.encoding == read_as and info.columns == ("城市", "温度", "天气") and info.suggested_target == "天气"
    ds = read_csv(data, "天气.csv")
    assert ds.name == "upload: 天气.csv" and set(ds.class_names) == {"晴", "多云", "小雨"}
    assert ds.feature_names == ("城市=上海", "城市=北京", "城市=广州", "温度")
    assert [ds.class_names[k] for k in ds.y[:3]] == ["晴", "多云", "小雨"]


def test_western_text_that_also_decodes_as_gb18030_stays_cp1252():
    """An accented letter and the letter after it form a valid GB18030 pair (Orl-é-ans reads Orl閍ns), but a
    rare ideograph, not one of the common ones Chinese text is made of."""
    data = "température;ville;label\n20,5;Orléans;oui\n21;Besançon;non\n".encode("cp1252")
    assert data.decode("gb18030") != data.decode("cp1252")  # it does decode: the choice is a judgement
    assert decode_csv_bytes(data)[1] == "cp1252"


def _gbk_names_zip(members: dict[str, bytes], encoding: str) -> bytes:
    """A ZIP whose names are stored in `encoding` without the UTF-8 flag, as Windows' "compressed folder"
    (GBK on a Chinese Windows) and macOS (UTF-8) write them; zipfile itself would set the flag."""
    placeholders = {name: f"{i:0{len(name.encode(encoding))}d}" for i, name in enumerate(members)}
    data = _zip({placeholders[name]: body for name, body in members.items()})
    for name, placeholder in placeholders.items():
        data = data.replace(placeholder.encode(), name.encode(encoding))
    return data


@pytest.mark.parametrize("writer", ["zipfile (UTF-8 flag)", "gbk", "utf-8"])
def test_a_zip_of_folders_with_chinese_names_keeps_them_as_class_names(writer):
    members = {f"宠物/{cls}/{i}.png": _png(color=color) for cls, color in (("猫", (250, 0, 0)), ("狗", (0, 0, 250)))
               for i in range(2)}
    data = _zip(members) if writer.startswith("zipfile") else _gbk_names_zip(members, writer)
    ds = read_image_zip(data, "宠物.zip", size=4)
    assert ds.name == "upload: 宠物.zip" and ds.class_names == ("狗", "猫")  # sorted, as folder names are
    assert ds.y.tolist() == [1, 1, 0, 0] and ds.x[0, 0, 0, 0] > 0.9 > ds.x[2, 0, 0, 0]  # 猫: the red images
    assert "2 class folders" in ds.source


def test_file_and_class_names_keep_letters_of_every_script():
    assert safe_label("D:\\数据\\宠物 照片 (2).zip") == "宠物 照片 (2).zip"
    assert safe_label("Müller‮gnp.exe") == "Müller_gnp.exe"  # letters stay; a right-to-left override does not


# --- CSV: budgets before parsing ---------------------------------------------------------------------

@pytest.fixture
def parses(monkeypatch):
    """Calls of pandas.read_csv made while the test runs (the full parse must not start for a refusal)."""
    calls = []
    real = pd.read_csv
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: calls.append(k) or real(*a, **k))
    return calls


def test_a_huge_header_line_is_refused_before_parsing(parses):
    data = b"a," * 600_000 + b"label\n1,x\n"  # 1.2 M characters, 600,001 columns
    with pytest.raises(UploadError, match=r"wide.csv: its first line is longer than 1,000,000 characters"):
        read_upload(data, "wide.csv")
    assert not parses


def test_too_many_columns_are_refused_before_parsing(parses):
    data = (",".join(f"c{i}" for i in range(600)) + "\n" + ",".join("1" * 600) + "\n").encode()
    with pytest.raises(UploadError, match="cols.csv has 600 columns; the limit is 500"):
        inspect_csv(data, "cols.csv")
    assert not parses


def test_one_enormous_data_line_is_refused_before_parsing(parses):
    data = b"a,label\n1,x\n" + b"1," * 600_000 + b"x\n"
    with pytest.raises(UploadError, match=r"line.csv: line 3 is 1,200,001 characters long or more; the limit "
                                          r"is 1,000,000 characters per line"):
        read_csv(data, "line.csv", "label")
    assert not parses


def test_millions_of_tiny_fields_in_one_line_are_refused_before_parsing(parses):
    data = b"a,label\n1,x\n" + b"," * 400_000 + b"\n"  # 400,001 empty fields: ~6 MB of parser state
    with pytest.raises(UploadError, match=r"line 3 has 400001 fields but the header has 2"):
        read_csv(data, "fields.csv", "label")
    assert not parses


def test_a_quote_that_is_never_closed_is_refused(parses):
    data = b'a,label\n1,"x\n' + b"more text\n" * 50  # the quoted field runs to the end of the file
    with pytest.raises(UploadError, match=r"q.csv: the quoted field that starts on line 2 is never closed"):
        read_csv(data, "q.csv", "label")
    assert not parses
    # Longer than a line may be: the line check gives up on it and pandas' parser says the same.
    with pytest.raises(UploadError, match=r"q.csv: the quoted field that starts on line 2 is never closed"):
        read_csv(data, "q.csv", "label", UploadLimits(max_line_chars=200))


def test_short_rows_in_a_quoted_file_are_found_with_their_line():
    data = b'"a","b","label"\n1,2,"x"\n"3","y"\n'
    with pytest.raises(UploadError, match="line 3 has 2 fields but the header has 3"):
        read_csv(data, "q.csv", "label")


def test_the_cell_cap_is_checked_before_parsing(parses):
    rows = "".join(f"{i},{i % 7},{i % 2}\n" for i in range(1000))
    data = f"a,b,label\n{rows}".encode()
    assert read_csv(data, "cells.csv", "label", UploadLimits(max_cells=3000)).n_samples == 1000
    parses.clear()
    with pytest.raises(UploadError, match=r"cells.csv has 1,000 rows x 3 columns = 3,000 cells; the limit is "
                                          r"2,999"):
        read_csv(data, "cells.csv", "label", UploadLimits(max_cells=2999))
    assert not parses


def test_millions_of_rows_are_counted_and_refused_before_parsing(parses):
    data = b"a,label\n" + b"1,x\n" * 300_000
    with pytest.raises(UploadError, match="rows.csv has 300,000 rows; the limit is 200,000"):
        read_csv(data, "rows.csv", "label")
    assert not parses


def test_one_hot_features_over_the_memory_budget_are_refused_before_allocating(monkeypatch):
    letters = np.array(list("abcdefghijklmnopqrst"))
    rows = ["".join(f"{letters[(i * 7 + j) % 20]}," for j in range(30)) + f"{i % 2}" for i in range(2000)]
    data = (",".join(f"t{j}" for j in range(30)) + ",label\n" + "\n".join(rows) + "\n").encode()
    limits = UploadLimits(min_memory=1024 * 1024)
    allocated = []
    real_empty = np.empty
    monkeypatch.setattr(np, "empty", lambda shape, *a, **k: allocated.append(shape) or real_empty(shape, *a, **k))
    with pytest.raises(UploadError, match=r"onehot.csv: 2,000 rows x 600 features \(after one-hot encoding\) as "
                                          r"float32 would take 5 MB of memory; a 0.1 MB upload may use 1 MB"):
        read_csv(data, "onehot.csv", "label", limits)
    assert (2000, 600) not in allocated
    assert read_csv(data, "onehot.csv", "label").x.shape == (2000, 600)  # the default budget allows it


def test_a_target_with_too_many_classes_stops_the_parse(monkeypatch):
    monkeypatch.setattr(uploads, "_CHUNK_CELLS", 100)  # chunks of 50 rows
    data = ("a,label\n" + "".join(f"{i},class{i}\n" for i in range(1000))).encode()
    with pytest.raises(UploadError, match=r"target column 'label' has more than 200 distinct values"):
        read_csv(data, "ids.csv", "label")


@pytest.mark.parametrize("data, message", [
    (b"a," + b"n" * 150 + b",label\n1,2,x\n", r"column 2's name is 150 characters long; names may have at most 100"),
    (b"a,label\n1," + b"c" * 300 + b"\n2,d\n", r"target column 'label' has a value of 300 characters at line 2"),
    (b"a,b,label\n1," + b"w" * 300 + b",x\n2,v,y\n", r"column 'b' has a value of 300 characters at line 2"),
])
def test_names_longer_than_a_label_may_be_are_refused(data, message):
    with pytest.raises(UploadError, match=message):
        read_csv(data, "long.csv", "label", roles={"b": "feature"})
    if b",b," in data:  # by default such a column is free text, ignored
        assert inspect_csv(data, "long.csv").table.profile("b").role == "ignore"


def test_chunks_agree_with_a_single_pass(monkeypatch):
    """Values, categories, classes and line numbers do not depend on where pandas' chunks fall."""
    rng = np.random.default_rng(3)
    towns = np.array(["Nîmes", "Orléans", "Besançon"])
    lines = [f"{rng.random():.3f},{towns[i % 3]},{'ab'[i % 2]}{i % 3}" for i in range(240)]
    data = ("x,town,label\n" + "\n".join(lines) + "\n").encode()
    whole = read_csv(data, "c.csv", "label")
    monkeypatch.setattr(uploads, "_CHUNK_CELLS", 21)  # chunks of 7 rows
    chunked = read_csv(data, "c.csv", "label")
    np.testing.assert_array_equal(whole.x, chunked.x)
    assert whole.feature_names == chunked.feature_names and whole.class_names == chunked.class_names
    np.testing.assert_array_equal(whole.y, chunked.y)
    stray = data + b"oops,Nimes,a0\n"  # one text value in the last chunk of a numeric column
    with pytest.raises(UploadError, match=r"column 'x' is numeric except 1 value\(s\) such as 'oops' at line 242"):
        read_csv(stray, "c.csv", "label", roles={"x": "feature"})


def test_a_column_of_numbers_then_text_in_another_chunk_is_explained(monkeypatch):
    monkeypatch.setattr(uploads, "_CHUNK_CELLS", 20)  # chunks of 10 rows
    data = ("grade,label\n" + "".join(f"{i % 3},{i % 2}\n" for i in range(10))
            + "".join(f"{'AB'[i % 2]},{i % 2}\n" for i in range(30))).encode()
    with pytest.raises(UploadError, match=r"column 'grade' has numbers in some rows and text in others \(e.g. 'A' "
                                          r"at line 12\)"):
        read_csv(data, "mixed.csv", "label", roles={"grade": "feature"})


# --- ZIP: the budget of the whole upload, from image headers -------------------------------------------

@pytest.fixture
def decodes(monkeypatch):
    """Images Pillow decoded while the test runs (a refusal must come from headers alone)."""
    loaded = []
    real = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loaded.append(self.size) or real(self))
    return loaded


@pytest.fixture(scope="module")
def blank_4096_png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (4096, 4096)).save(buf, "PNG")  # 16 MP of zeros: ~16 KB
    return buf.getvalue()


def test_a_small_zip_of_many_huge_blank_pngs_is_refused_from_headers(decodes, blank_4096_png):
    data = _zip({f"c{i % 2}/{i}.png": blank_4096_png for i in range(40)}, compression=zipfile.ZIP_DEFLATED)
    assert len(data) < 100_000
    with pytest.raises(UploadError, match=r"blank.zip: its 40 images total 2,013,265,920 pixel values \(width x "
                                          r"height x channels, as decoded\); the cap per upload is 500,000,000"):
        read_image_zip(data, "blank.zip")
    assert not decodes


def test_images_each_under_the_per_image_cap_are_bounded_in_total(decodes):
    one = _png(size=(100, 100))
    data = _zip({f"c{i % 2}/{i}.png": one for i in range(10)})  # 10 x 100 x 100 x 3 = 300,000 values
    assert read_image_zip(data, "ten.zip", limits=UploadLimits(max_total_pixels=300_000)).n_samples == 10
    decodes.clear()
    with pytest.raises(UploadError, match=r"its 10 images total 300,000 pixel values.*cap per upload is 299,999"):
        read_image_zip(data, "ten.zip", limits=UploadLimits(max_total_pixels=299_999))
    assert not decodes


def _grey_png(size=(100, 100)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, 128).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("png, color, total", [(_png, "rgb", "120,000"), (_grey_png, "grayscale", "40,000"),
                                               (_png, "grayscale", "120,000")])  # RGB decodes as 3 bands
def test_pixel_values_count_the_channels_the_decoder_produces(png, color, total):
    data = _zip({f"c{i % 2}/{i}.png": png(size=(100, 100)) for i in range(4)})
    with pytest.raises(UploadError, match=f"total {total} pixel values"):
        read_image_zip(data, "px.zip", color=color, limits=UploadLimits(max_total_pixels=30_000))


def test_large_jpegs_count_at_the_reduced_scale_they_are_decoded_at(decodes):
    buf = io.BytesIO()
    Image.new("RGB", (2000, 1500), (200, 30, 30)).save(buf, "JPEG")
    data = _zip({f"c{i % 2}/{i}.jpg": buf.getvalue() for i in range(4)})
    # In full: 4 x 2000 x 1500 x 3 = 36 M values; decoded at 1/8 scale for 32 x 32: 4 x 250 x 188 x 3.
    ds = read_image_zip(data, "photos.zip", size=32, limits=UploadLimits(max_total_pixels=600_000))
    assert ds.x.shape == (4, 32, 32, 3) and ds.x[0, 16, 16, 0] > 0.7
    assert decodes and set(decodes) == {(250, 188)}  # never the full 2000 x 1500


def test_one_huge_blank_image_in_a_tiny_zip_exceeds_the_memory_budget(decodes, blank_4096_png):
    data = _zip({"a/huge.png": blank_4096_png, "b/1.png": _png()}, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(UploadError, match=r"decoding the largest \(4096x4096\), would take 128 MB of memory; a "
                                          r"0.0 MB upload may use 64 MB"):
        read_image_zip(data, "one.zip")
    assert not decodes


def test_a_zip_with_more_members_than_allowed_is_refused_before_zipfile_reads_them(monkeypatch):
    data = _zip({f"c{i % 2}/{i}.png": b"" for i in range(30)})
    opened = []
    monkeypatch.setattr(zipfile, "ZipFile", lambda *a, **k: opened.append(a))
    with pytest.raises(UploadError, match="members.zip has 30 members; the limit is 20"):
        read_image_zip(data, "members.zip", limits=UploadLimits(max_members=20))
    with pytest.raises(UploadError, match="members.npz has 30 members; the limit is 20"):
        read_npz(data, "members.npz", limits=UploadLimits(max_members=20))
    assert not opened


def test_deeply_nested_folders_use_the_innermost_as_the_class():
    deep = "/".join(f"d{i}" for i in range(300))
    ds = read_image_zip(_zip({f"{deep}/cat/1.png": _png(), f"{deep}/dog/1.png": _png()}), "deep.zip", size=4)
    assert ds.class_names == ("cat", "dog")


def test_only_png_and_jpeg_decoders_run():
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "GIF")
    ds = read_image_zip(_zip({"a/1.png": _png(), "b/1.png": _png(), "b/2.png": buf.getvalue()}), "gif.zip")
    assert ds.n_samples == 2 and "b/2.png: not a PNG or JPEG image" in ds.source


def test_the_cpu_deadline_stops_a_zip_and_a_csv(monkeypatch):
    clock = iter(range(1_000_000))
    monkeypatch.setattr(uploads, "_cpu_time", lambda: float(next(clock)))  # one second per check
    data = _zip({f"c{i % 2}/{i}.png": _png() for i in range(10)})
    with pytest.raises(UploadError, match=r"slow.zip: reading it took 6.0 s of CPU time; the cap per upload is 5 s"):
        read_image_zip(data, "slow.zip", limits=UploadLimits(max_seconds=5))
    csv_data = b"a,label\n" + b"1,x\n2,y\n" * 2_000_000  # 4 chunks of a megabyte for the line check
    with pytest.raises(UploadError, match=r"slow.csv: reading it took 3.0 s of CPU time; the cap per upload is 2 s"):
        read_csv(csv_data, "slow.csv", "label", UploadLimits(max_seconds=2, max_rows=5_000_000,
                                                             max_cells=50_000_000, max_bytes=100 * 1024 * 1024))


# --- NPZ: the budget of the whole upload, from .npy headers ----------------------------------------------

@pytest.fixture
def array_reads(monkeypatch):
    calls = []
    real = np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_a_compressed_npz_that_expands_past_the_memory_budget_is_refused_before_reading(array_reads):
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.zeros((1000, 64, 64), np.uint8), y=np.arange(1000) % 2)  # 4 MB in ~5 KB
    limits = UploadLimits(min_memory=8 * 1024 * 1024)
    with pytest.raises(UploadError, match=r"zeros.npz: its arrays and x as float32 would take 20 MB of memory; a "
                                          r"0.0 MB upload may use 8 MB"):
        read_npz(buf.getvalue(), "zeros.npz", limits)
    assert not array_reads
    assert read_npz(buf.getvalue(), "zeros.npz").x.shape == (1000, 64, 64, 1)  # within the default 64 MB


def test_an_npz_of_many_arrays_is_refused_before_parsing_them(array_reads):
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros((4, 2)), y=np.arange(4) % 2, **{f"a{i}": np.zeros(1) for i in range(50)})
    with pytest.raises(UploadError, match="many.npz has 52 members; the limit is 40"):
        read_npz(buf.getvalue(), "many.npz", UploadLimits(max_members=40))
    assert not array_reads


@pytest.mark.parametrize("arrays, message", [
    ({"y": np.arange(4) % 2, "class_names": np.array([f"c{i}" for i in range(500)])},
     "class_names has 500 entries; the limit is 200 classes"),
    ({"y": np.array([f"c{i}" for i in range(4)] * 75)}, r"y has 4 classes"),
    ({"y": np.array(["a" * 300, "b"] * 2)}, "a class name is 300 characters long; class names may have at most 100"),
])
def test_npz_class_names_are_bounded(arrays, message):
    n = len(arrays["y"])
    data = _npz(x=np.zeros((n, 2), np.float32), **arrays)
    if message == r"y has 4 classes":
        assert read_npz(data, "c.npz").n_classes == 4
        return
    with pytest.raises(UploadError, match=message):
        read_npz(data, "c.npz")


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending_reads_the_same(newline):
    data = newline.join(["a;b;label", "1,5;2;x", "", "3;4;y", ""]).encode()
    ds = read_csv(data, "eol.csv", "label")
    np.testing.assert_allclose(ds.x, [[1.5, 2], [3, 4]])
    assert ds.class_names == ("x", "y")
