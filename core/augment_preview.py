"""What a spec's augmentation layers do to real images: the Model page's augmentation preview.

The preview runs the spec's OWN augmentation layers (the same Keras classes and settings as `build_model`,
from core.models' one table) on a few samples, in training mode, with a seed: the same seed gives the same
pictures. It runs in the Streamlit server, so its cost is capped (MAX_PREVIEW_IMAGES augmented images of at
most PREVIEW_SIDE pixels a side). Keras is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.i18n import _
from core.models import _layer_call
from core.specs import AUGMENTATION_TYPES, LayerSpec, ModelSpec

__all__ = ["MAX_PREVIEW_IMAGES", "PREVIEW_SIDE", "AugmentPreview", "augment", "augment_preview",
           "augmentation_layers", "flip_warning", "preview_indices"]

MAX_PREVIEW_IMAGES = 24  # augmented images per preview (6 samples x 4 versions)
PREVIEW_SIDE = 64  # larger images are shrunk to this many pixels a side first (factors are relative)
_SYMBOL_DATASETS = ("digits", "mnist")  # handwritten digits, where a mirror image can be another symbol


@dataclass(frozen=True)
class AugmentPreview:
    """Samples and their augmented versions, ready to draw."""

    originals: np.ndarray  # (n, h, w, c) in [0, 1]
    augmented: np.ndarray  # (n, versions, h, w, c), through the spec's augmentation layers
    labels: tuple[str, ...]  # class name of each sample
    seed: int


def augmentation_layers(spec: ModelSpec) -> tuple[LayerSpec, ...]:
    """The spec's augmentation layers (RandomFlip, RandomRotation, ...), in the model's order."""
    return tuple(layer for layer in spec.layers if layer.type in AUGMENTATION_TYPES)


def preview_indices(y: np.ndarray, n: int) -> np.ndarray:
    """Up to n sample rows from classes spread over the label range (for digits 0, 2, 4, 5, 7, 9), one
    per class, going round the classes again when there are fewer than n; always the same rows."""
    present = np.unique(y)
    spread = present[np.unique(np.linspace(0, present.size - 1, min(n, present.size)).round().astype(int))]
    rows = [np.flatnonzero(y == c) for c in spread]
    picked = [r[k] for k in range(max(map(len, rows))) for r in rows if k < len(r)]
    return np.asarray(picked[:n], dtype=np.int64)


def augment(spec: ModelSpec, images: np.ndarray, *, versions: int, seed: int) -> np.ndarray:
    """`versions` augmented copies of each image, (n, versions, h, w, c), through a keras.Sequential of
    only the spec's augmentation layers, called with training=True; the same seed gives the same output."""
    import keras

    layers_ = augmentation_layers(spec)
    n = images.shape[0]
    if not layers_:
        raise ValueError("the spec has no augmentation layer")
    if n * versions > MAX_PREVIEW_IMAGES:
        raise ValueError(f"at most {MAX_PREVIEW_IMAGES} augmented images per preview, asked for {n * versions}")
    seeds = np.random.SeedSequence(seed).generate_state(len(layers_))  # one independent stream per layer
    model = keras.Sequential([keras.Input(shape=images.shape[1:])])
    for i, (layer, layer_seed) in enumerate(zip(layers_, seeds, strict=True), 1):
        cls, args, kwargs = _layer_call(layer, i)
        model.add(getattr(keras.layers, cls)(*args, **kwargs, seed=int(layer_seed)))
    batch = np.repeat(np.asarray(images, np.float32), versions, axis=0)  # each copy gets its own draw
    out = np.asarray(model(batch, training=True))
    return out.reshape(n, versions, *images.shape[1:])


def _shrunk(images: np.ndarray) -> np.ndarray:
    """Images at most PREVIEW_SIDE pixels a side (aspect kept), so a large upload stays cheap to preview."""
    h, w = images.shape[1:3]
    scale = PREVIEW_SIDE / max(h, w)
    if scale >= 1:
        return images
    import keras

    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return np.asarray(keras.ops.image.resize(images, size, antialias=True)).clip(0, 1)


def augment_preview(spec: ModelSpec, dataset: Any, *, seed: int, samples: int = 6,
                    versions: int = 4) -> AugmentPreview:
    """`samples` images of the dataset (see preview_indices) and `versions` augmented copies of each."""
    rows = preview_indices(dataset.y, samples)
    originals = _shrunk(np.asarray(dataset.x[rows], np.float32))
    return AugmentPreview(originals, augment(spec, originals, versions=versions, seed=seed),
                          tuple(dataset.class_names[k] for k in dataset.y[rows]), int(seed))


def _symbols(dataset: Any) -> str | None:
    """"digits" or "letters" when the classes are written symbols (by dataset, or one-character class
    names such as the folders 0-9 of an upload), else None."""
    names = [str(c) for c in dataset.class_names]
    if dataset.name in _SYMBOL_DATASETS or all(len(c) == 1 and c.isdigit() for c in names):
        return "digits"
    if all(len(c) == 1 and c.isalpha() for c in names):
        return "letters"
    return None


def _flip_examples() -> dict[tuple[str, str], str]:
    """(flip axis, kind of symbol) -> what such a flip does to such symbols, in the visitor's language."""
    return {
        ("horizontal", "digits"): _("mirrored left to right, a 2, 3, 4, 7 or 9 is no digit at all"),
        ("vertical", "digits"): _("upside down, a 2, 4 or 7 is no digit at all and a 6 is close to a 9"),
        ("horizontal", "letters"): _("mirrored left to right, b reads as d and p as q"),
        ("vertical", "letters"): _("upside down, b reads as p, M as W and n as u"),
    }


def flip_warning(spec: ModelSpec, dataset: Any) -> str | None:
    """Why a RandomFlip in the spec harms digits or letters (None when there is none or the data are not
    written symbols): a flip can turn a symbol into another one, or into none, that keeps the old label."""
    what = _symbols(dataset)
    modes = {layer.params["mode"] for layer in spec.layers if layer.type == "RandomFlip"}
    if what is None or not modes:
        return None
    axes = [axis for axis in ("horizontal", "vertical") if any(axis in mode for mode in modes)]
    examples = [_flip_examples()[(axis, what)] for axis in axes]
    example = examples[0] if len(examples) == 1 else _("{first}; {second}").format(first=examples[0],
                                                                                  second=examples[1])
    if what == "digits":
        return _("RandomFlip turns some digits into other symbols ({examples}), yet the model is told the flipped "
                 "image still has its old label. Delete the RandomFlip layer and augment digits with small "
                 "rotations, zooms and shifts only (as the Stronger CNN preset does).").format(examples=example)
    return _("RandomFlip turns some letters into other symbols ({examples}), yet the model is told the flipped "
             "image still has its old label. Delete the RandomFlip layer and augment letters with small rotations, "
             "zooms and shifts only (as the Stronger CNN preset does).").format(examples=example)
