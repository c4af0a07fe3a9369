"""Upload readers on generated files: the good cases and every hostile or broken input of DESIGN.md §6."""

from __future__ import annotations

import io
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageFile

from core.uploads import (
    UploadError,
    UploadLimits,
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


def test_text_feature_over_the_category_cap_is_refused():
    rows = "".join(f"{i},name{i},{i % 2}\n" for i in range(30))
    with pytest.raises(UploadError, match=r"column 'who' is not numeric \(e.g. 'name0'\) and has 30 distinct "
                                          r"values.*up to 20"):
        read_csv(f"n,who,label\n{rows}".encode(), "names.csv", "label")


def test_missing_and_constant_target():
    with pytest.raises(UploadError, match=r"target column 'label' is empty in 1 row\(s\), first at line 3"):
        read_csv(b"a,label\n1,x\n2,\n3,y\n", "t.csv", "label")
    with pytest.raises(UploadError, match="single value 'x'"):
        read_csv(b"a,label\n1,x\n2,x\n", "t.csv", "label")
    with pytest.raises(UploadError, match="target column 'nope' is not in the file"):
        read_csv(b"a,label\n1,x\n2,y\n", "t.csv", "nope")


@pytest.mark.parametrize("value, what", [("inf", "infinite"), ("-inf", "infinite"), ("nan", "missing"),
                                         ("NA", "missing"), ("", "missing")])
def test_non_finite_features_are_refused(value, what):
    with pytest.raises(UploadError, match=f"column 'a' has 1 missing or infinite value.*first {what} at line 3"):
        read_csv(f"a,b,label\n1,2,x\n{value},3,y\n".encode(), "nan.csv", "label")


def test_size_row_and_column_caps():
    data = b"a,label\n" + b"1,x\n2,y\n" * 10
    with pytest.raises(UploadError, match=r"big.csv is 0.0 MB; the limit is 0 MB"):
        inspect_csv(data, "big.csv", UploadLimits(max_bytes=20))
    with pytest.raises(UploadError, match="20 rows; the limit is 5"):
        inspect_csv(data, "big.csv", UploadLimits(max_rows=5))
    with pytest.raises(UploadError, match="2 columns; the limit is 1"):
        inspect_csv(data, "big.csv", UploadLimits(max_columns=1))


def test_binary_file_named_csv_is_refused():
    with pytest.raises(UploadError, match="NUL bytes"):
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
    data = b"h,label\n1.0,a\n2.0,b\nh,a\n3.0,b\n"  # e.g. a header line pasted twice
    with pytest.raises(UploadError, match=r"column 'h' is numeric except 1 value\(s\) such as 'h' at line 4"):
        read_csv(data, "twice.csv", "label")


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
