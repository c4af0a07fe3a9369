"""core.explain on models whose answer is known by construction, and against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain import (
    ExplainError,
    attribution_figure,
    attributions_heatmap,
    explain,
    overlay_figure,
    upsample,
)

pytestmark = pytest.mark.slow  # imports TensorFlow

ROWS, COLS = slice(2, 6), slice(6, 10)  # the window the "window model" sees: off the diagonal, so a transposed
# map cannot pass; it covers whole 2×2 pooling cells (rows 1-2, columns 3-4 of the 6×6 map after pooling)


def _window_mask(size: int = 12) -> np.ndarray:
    mask = np.zeros((size, size, 1), np.float32)
    mask[ROWS, COLS] = 1.0
    return mask


def window_model():
    """12×12 input → times a 0/1 window → Conv2D 1×1 → AveragePooling 2 → Conv2D 1×1 → GAP → softmax head.

    Every weight is positive and the biases zero, so inside the window every pixel raises class 0's score
    and outside the window nothing reaches the head at all.
    """
    import keras

    class Window(keras.layers.Layer):
        def __init__(self, mask, **kwargs):
            super().__init__(**kwargs)
            self.mask = mask

        def call(self, x):
            return x * self.mask

    positive = keras.initializers.RandomUniform(0.1, 1.0, seed=0)
    inputs = keras.Input((12, 12, 1))
    h = Window(_window_mask())(inputs)
    h = keras.layers.Conv2D(4, 1, activation="relu", kernel_initializer=positive, bias_initializer="zeros")(h)
    h = keras.layers.AveragePooling2D(2)(h)
    h = keras.layers.Conv2D(4, 1, activation="relu", kernel_initializer=positive, bias_initializer="zeros",
                            name="last_conv")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(3, activation="softmax", kernel_initializer=positive)(h)
    return keras.Model(inputs, out)


@pytest.fixture(scope="module")
def bright_images():
    """Inputs bright everywhere, inside the window and out: only the model decides where it looks."""
    return np.random.default_rng(1).uniform(0.2, 1.0, (3, 12, 12, 1)).astype(np.float32)


def test_saliency_is_zero_outside_the_window_the_model_sees_and_non_zero_inside(bright_images):
    ex = explain(window_model(), bright_images, [0, 1, 2])
    assert ex.saliency.shape == (3, 12, 12)
    inside = np.zeros((12, 12), bool)
    inside[ROWS, COLS] = True
    assert np.all(ex.saliency[:, ~inside] == 0)
    assert np.all(ex.saliency[:, inside] > 0)


def test_grad_cam_peaks_in_the_window(bright_images):
    ex = explain(window_model(), bright_images, [0, 0, 0])
    assert ex.cam_layer == "last_conv" and ex.no_cam_reason == ""
    assert ex.grad_cam.shape == (3, 6, 6)  # the last Conv2D's resolution, after the 2×2 pooling
    cells = np.zeros((6, 6), bool)
    cells[1:3, 3:5] = True
    assert np.all(ex.grad_cam[:, ~cells] == 0) and np.all(ex.grad_cam[:, cells] > 0)
    assert np.allclose(ex.grad_cam.max(axis=(1, 2)), 1.0)
    for heat in ex.grad_cam:
        big = upsample(heat, 12, 12)
        r, c = np.unravel_index(big.argmax(), big.shape)
        assert ROWS.start <= r < ROWS.stop and COLS.start <= c < COLS.stop, (r, c)


@pytest.mark.parametrize("pooling", ["global-average", "flatten"])
def test_grad_cam_weights_each_feature_map_by_its_mean_gradient(pooling):
    """Conv → (global average pooling | flatten) → dense head: ∂ logit_c / ∂ A_k(i, j) is a head weight, so
    α_k and ReLU(Σ_k α_k A_k) can be written down. With global pooling it is Zhou et al.'s CAM (the gradient
    is W[k, c] / (h·w) everywhere, Selvaraju et al. §3.1); with flatten it differs by position, so only its
    mean over positions is right."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((9, 9, 2))
    maps = keras.layers.Conv2D(5, 3, activation="relu")(inputs)  # 7×7×5
    pooled = (keras.layers.GlobalAveragePooling2D() if pooling == "global-average" else keras.layers.Flatten())(maps)
    head = keras.layers.Dense(4, activation="softmax")
    model = keras.Model(inputs, head(pooled))
    x = np.random.default_rng(2).random((4, 9, 9, 2)).astype(np.float32)
    classes = np.array([0, 1, 2, 3])
    ex = explain(model, x, classes)
    a = np.asarray(keras.Model(inputs, maps)(x), dtype=np.float64)
    w = head.get_weights()[0].astype(np.float64)
    per_position = np.broadcast_to(w / 49, (7, 7, 5, 4)) if pooling == "global-average" else w.reshape(7, 7, 5, 4)
    alpha = per_position.mean(axis=(0, 1))[:, classes]  # (maps, samples)
    cam = np.maximum(np.einsum("nijk,kn->nij", a, alpha), 0)
    cam /= cam.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(ex.grad_cam, cam, atol=1e-5)


def test_the_gradient_of_the_class_logit_matches_finite_differences():
    """A tiny float64 CNN: every input pixel nudged by ±1e-6, the logit (not the probability) recomputed."""
    import keras

    keras.utils.set_random_seed(4)
    inputs = keras.Input((4, 4, 2), dtype="float64")
    h = keras.layers.Conv2D(3, 2, activation="tanh", dtype="float64")(inputs)
    h = keras.layers.Flatten(dtype="float64")(h)
    head = keras.layers.Dense(3, activation="softmax", dtype="float64")
    model = keras.Model(inputs, head(h))
    features = keras.Model(inputs, h)
    kernel, bias = head.get_weights()

    def logit(sample: np.ndarray, c: int) -> float:  # called, not predict(): that casts inputs to float32
        return float(np.asarray(features(sample[None]))[0] @ kernel[:, c] + bias[c])

    x = np.random.default_rng(5).normal(size=(2, 4, 4, 2))
    classes = [2, 0]
    ex = explain(model, x, classes)
    eps = 1e-6
    for n, c in enumerate(classes):
        numeric = np.zeros(x.shape[1:])
        for idx in np.ndindex(numeric.shape):
            up, down = x[n].copy(), x[n].copy()
            up[idx] += eps
            down[idx] -= eps
            numeric[idx] = (logit(up, c) - logit(down, c)) / (2 * eps)
        np.testing.assert_allclose(ex.gradients[n], numeric, atol=1e-7)
        np.testing.assert_allclose(ex.saliency[n], np.abs(numeric).max(axis=-1), atol=1e-7)


def test_tabular_attributions_are_gradient_times_input_and_there_is_no_grad_cam():
    """A linear softmax model: logit_c = x·W[:, c] + b_c, so gradient × input is exactly W[i, c]·x_i."""
    import keras

    inputs = keras.Input((5,))
    head = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, head(inputs))
    w = np.random.default_rng(6).normal(size=(5, 3)).astype(np.float32)
    w[[1, 3]] = 0.0  # the model ignores features 1 and 3
    head.set_weights([w, np.zeros(3, np.float32)])
    x = np.random.default_rng(7).normal(size=(4, 5)).astype(np.float32)
    classes = np.array([2, 0, 1, 2])
    ex = explain(model, x, classes)
    np.testing.assert_allclose(ex.attributions, w[:, classes].T * x, rtol=1e-6)
    assert np.all(ex.attributions[:, [1, 3]] == 0)
    assert ex.grad_cam is None and "no Conv2D layer" in ex.no_cam_reason


def test_a_loaded_sequential_model_is_explained_like_the_one_saved(tmp_path):
    """Keras calls a loaded Sequential model's layers several times while rebuilding it: Grad-CAM must follow
    the path to the output, not the first call's tensors (which gave no gradient at all)."""
    import keras

    keras.utils.set_random_seed(9)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(5, activation="softmax")])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(10).random((3, 8, 8, 1)).astype(np.float32)
    want, got = explain(model, x, [0, 1, 4]), explain(loaded, x, [0, 1, 4])
    np.testing.assert_allclose(got.gradients, want.gradients, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.grad_cam, want.grad_cam, atol=1e-6)
    assert got.grad_cam.max() == 1.0


def test_bad_requests_are_refused_with_a_message():
    with pytest.raises(ExplainError, match="class indices must lie in 0..2"):
        explain(window_model(), np.zeros((1, 12, 12, 1)), [3])
    with pytest.raises(ExplainError, match="one class per sample"):
        explain(window_model(), np.zeros((2, 12, 12, 1)), [0])


def test_upsample_keeps_orientation_and_range():
    coarse = np.zeros((2, 3))
    coarse[0, 2] = 1.0  # top right
    big = upsample(coarse, 4, 6)
    assert big.shape == (4, 6)
    r, c = np.unravel_index(big.argmax(), big.shape)
    assert r < 2 and c >= 4
    assert 0 <= big.min() and big.max() <= 1
    np.testing.assert_allclose(upsample(np.full((3, 3), 0.5), 7, 5), 0.5)


def test_figures_lay_the_heatmap_over_the_image_and_escape_user_text():
    image = np.random.default_rng(8).random((8, 8, 1))
    fig = overlay_figure(image, {"saliency": np.ones((8, 8)), "Grad-CAM": np.eye(3)}, title="true <b>$x$</b>")
    kinds = [t.type for t in fig.data]
    assert kinds == ["image", "image", "heatmap", "image", "heatmap"]
    assert all(np.asarray(t.z).shape[:2] == (8, 8) for t in fig.data)  # the 3×3 map upsampled to the image
    assert "<b>" not in fig.layout.title.text and "$" not in fig.layout.title.text
    bars = attribution_figure(["a", "<i>b</i>", "c"], np.array([0.1, -2.0, 0.5]), np.array([1.0, 2.0, 3.0]))
    assert list(bars.data[0].x) == [0.1, 0.5, -2.0]  # drawn bottom-up: the largest magnitude on top
    assert "&lt;i&gt;b&lt;/i&gt;" in list(bars.data[0].y)
    heat = attributions_heatmap(["a", "b"], np.array([[1.0, -1.0], [0.0, 2.0]]), ["row 1", "row 2"])
    assert np.asarray(heat.data[0].z).shape == (2, 2) and heat.data[0].zmin == -heat.data[0].zmax == -2.0
