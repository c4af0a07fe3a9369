"""Keras datasets keep their images uint8: every statistic and picture of the Data page gives what it gave
for the same pixels as float32 in [0, 1] (how they were stored before)."""

from __future__ import annotations

import numpy as np
import pytest

from core import explore
from core.datasets import Dataset, model_input


@pytest.fixture(scope="module")
def pixels():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (300, 6, 5, 3), dtype=np.uint8)
    x[:5] = 255  # the last bin's right edge, 1.0, counts in it
    x[5:10] = 0
    return x, np.arange(300) % 4


def test_mean_images_of_uint8_pixels_are_those_of_the_scaled_images(pixels):
    x, y = pixels
    np.testing.assert_allclose(explore.mean_images(x, y, 5), explore.mean_images(model_input(x), y, 5),
                               rtol=1e-6, atol=1e-7)
    assert not explore.mean_images(x, y, 5)[4].any()  # a class without samples: zeros


def test_a_mosaic_of_uint8_pixels_is_in_the_unit_range(pixels):
    x, _ = pixels
    np.testing.assert_array_equal(explore.mosaic(x[:7], 4), explore.mosaic(model_input(x[:7]), 4))


@pytest.mark.parametrize("bins", [32, 7])
def test_the_pixel_histogram_of_uint8_pixels_counts_as_the_scaled_images(pixels, bins):
    x, _ = pixels
    counted = explore.pixel_histogram(x, bins=bins)
    scaled = explore.pixel_histogram(model_input(x), bins=bins)
    assert counted.equals(scaled)
    assert counted["count"].sum() == x.size


def test_a_projection_of_uint8_images_is_that_of_the_scaled_images(pixels):
    x, y = pixels
    raw = Dataset("mnist", x, y, ("a", "b", "c", "d"), "image")
    scaled = Dataset("mnist", model_input(x), y, ("a", "b", "c", "d"), "image")
    np.testing.assert_allclose(np.abs(explore.project_2d(raw, "pca").coords),
                               np.abs(explore.project_2d(scaled, "pca").coords), rtol=1e-4, atol=1e-6)
