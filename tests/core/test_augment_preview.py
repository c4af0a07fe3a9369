"""The augmentation preview runs exactly the spec's own augmentation layers, seeded, on a few samples."""

from __future__ import annotations

import numpy as np
import pytest

from core.augment_preview import (
    MAX_PREVIEW_IMAGES,
    PREVIEW_SIDE,
    augment,
    augment_preview,
    augmentation_layers,
    flip_warning,
    preview_indices,
)
from core.charts.augment import augment_grid_figure
from core.datasets import Dataset, load_builtin
from core.specs import ModelSpec, make_layer, preset

pytestmark = pytest.mark.slow


def _images(n: int = 6, side: int = 12, channels: int = 1) -> np.ndarray:
    """Random images: no image equals its own mirror, so a flip always shows."""
    return np.random.default_rng(1).random((n, side, side, channels), dtype=np.float32)


def _spec(*layers) -> ModelSpec:
    return ModelSpec(tuple(make_layer(t, **p) for t, p in layers))


def _photos(n_classes: int = 3, side: int = 16) -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset("photos", rng.random((12, side, side, 3), dtype=np.float32), np.arange(12) % n_classes,
                   ("cat", "dog", "horse")[:n_classes], "image")


def test_a_flip_only_spec_gives_each_image_or_its_mirror_and_nothing_else():
    images = _images()
    out = augment(_spec(("RandomFlip", {"mode": "horizontal"})), images, versions=4, seed=3)
    assert out.shape == (6, 4, 12, 12, 1)
    same = np.array([[np.array_equal(v, x) for v in versions] for versions, x in zip(out, images, strict=True)])
    mirror = np.array([[np.array_equal(v, x[:, ::-1]) for v in versions]
                       for versions, x in zip(out, images, strict=True)])
    assert (same | mirror).all()
    assert same.any() and mirror.any()  # a random flip: some are mirrored, some not


def test_only_the_augmentation_layers_run_with_their_own_settings():
    """Conv, pooling and dense layers are left out; the flip's mode (vertical) is the spec's."""
    spec = _spec(("Conv2D", {"filters": 4}), ("MaxPooling2D", {}), ("RandomFlip", {"mode": "vertical"}),
                 ("Flatten", {}), ("Dense", {"units": 3}))
    assert [layer.type for layer in augmentation_layers(spec)] == ["RandomFlip"]
    images = _images()
    out = augment(spec, images, versions=4, seed=0)
    assert out.shape == (6, 4, 12, 12, 1)
    upside_down = [np.array_equal(v, x[::-1]) for versions, x in zip(out, images, strict=True) for v in versions]
    unchanged = [np.array_equal(v, x) for versions, x in zip(out, images, strict=True) for v in versions]
    assert all(a or b for a, b in zip(upside_down, unchanged, strict=True)) and any(upside_down)


def test_a_zero_rotation_leaves_images_unchanged_and_a_real_one_does_not():
    images = _images()
    still = augment(_spec(("RandomRotation", {"factor": 0.0})), images, versions=4, seed=5)
    np.testing.assert_allclose(still, np.repeat(images[:, None], 4, axis=1), atol=1e-6)
    turned = augment(_spec(("RandomRotation", {"factor": 0.2})), images, versions=4, seed=5)
    assert np.abs(turned - images[:, None]).max() > 0.1


def test_same_seed_same_pictures_other_seed_other_pictures():
    spec = _spec(("RandomRotation", {"factor": 0.1}), ("RandomZoom", {"factor": 0.2}),
                 ("RandomTranslation", {"factor": 0.1}))
    images = _images()
    first, again = augment(spec, images, versions=4, seed=7), augment(spec, images, versions=4, seed=7)
    other = augment(spec, images, versions=4, seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert not np.allclose(first[:, 0], first[:, 1])  # the versions of one sample differ from each other


def test_the_cost_is_capped_and_a_spec_without_augmentation_is_refused():
    spec = _spec(("RandomFlip", {}))
    with pytest.raises(ValueError, match=f"at most {MAX_PREVIEW_IMAGES}"):
        augment(spec, _images(7), versions=4, seed=0)
    with pytest.raises(ValueError, match="no augmentation"):
        augment(_spec(("Dense", {})), _images(), versions=4, seed=0)


def test_preview_of_digits_spreads_classes_and_large_images_are_shrunk():
    digits = load_builtin("digits")
    preview = augment_preview(preset("Stronger CNN", digits), digits, seed=0)
    assert preview.labels == ("0", "2", "4", "5", "7", "9")
    assert preview.originals.shape == (6, 8, 8, 1) and preview.augmented.shape == (6, 4, 8, 8, 1)
    np.testing.assert_array_equal(preview.originals, digits.x[preview_indices(digits.y, 6)])

    rng = np.random.default_rng(0)
    big = Dataset("big", rng.random((8, 200, 100, 3), dtype=np.float32), np.arange(8) % 2, ("a", "b"), "image")
    small = augment_preview(_spec(("RandomZoom", {})), big, seed=0)
    assert small.originals.shape == (6, PREVIEW_SIDE, PREVIEW_SIDE // 2, 3)
    assert small.labels == ("a", "b", "a", "b", "a", "b")  # fewer classes than samples: round again
    assert preview_indices(big.y[:4], 6).tolist() == [0, 1, 2, 3]  # fewer samples: each once


def test_flip_warning_for_digits_and_letters_only():
    digits = load_builtin("digits")
    flip = _spec(("RandomFlip", {"mode": "horizontal"}), ("RandomRotation", {}))
    warning = flip_warning(flip, digits)
    assert warning and "digits into other symbols" in warning and "2, 3, 4, 7" in warning
    assert "upside down" not in warning
    assert "upside down" in flip_warning(_spec(("RandomFlip", {"mode": "vertical"})), digits)
    assert flip_warning(_spec(("RandomRotation", {})), digits) is None
    assert flip_warning(flip, _photos()) is None  # a mirrored cat is still a cat
    letters = Dataset("upload: letters", _images(4), np.arange(4) % 2, ("b", "d"), "image")
    assert "b reads as d" in flip_warning(flip, letters)
    folders = Dataset("upload: scans", _images(4), np.arange(4) % 2, ("0", "1"), "image")
    assert "digits" in flip_warning(flip, folders)


def test_grid_figure_draws_every_image_pixel_exact_with_labels():
    digits = load_builtin("digits")
    preview = augment_preview(_spec(("RandomFlip", {})), digits, seed=0)
    fig = augment_grid_figure(preview.originals, preview.augmented, preview.labels, preview.seed)
    picture = np.asarray(fig.data[0].z)
    right = 8 + 2  # the originals' column, then a gap of 2 pixels
    assert picture.shape == (6 * 9 - 1, right + 4 * 9 - 1)  # 6 rows of 8x8 tiles with 1-pixel pads
    np.testing.assert_array_equal(picture[:8, :8], preview.originals[0, ..., 0])
    np.testing.assert_array_equal(picture[9:17, right + 9:right + 17], preview.augmented[1, 1, ..., 0])
    texts = [a.text for a in fig.layout.annotations]
    assert texts[:6] == list(preview.labels)
    assert "4 augmented versions (seed 0)" in texts
