"""Plain-language diagnostics of a run: pure functions over its history, class counts and ReLU activations.

Each check returns a `Finding` (or None) linked to an FAQ entry, so a learner reads *what* happened, *why*
it matters and where to learn more. The thresholds are rules of thumb, stated in each docstring.

`diagnose` runs the checks as one ordered table, `RULES`: each rule names one cause, and a rule that fires
rules out the causes it explains or would contradict (a loss stuck at chance because a frozen backbone has
random weights is not also "learning rate too low"), so a run never gets two opposite pieces of advice.
The run's final message (core.training) names the first of these findings, so it says the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.datasets import model_input
from core.i18n import _, ngettext

__all__ = [
    "RULES",
    "Evidence",
    "Finding",
    "Rule",
    "Severity",
    "backbone_weights_file",
    "check_class_imbalance",
    "check_dead_relu",
    "check_divergence",
    "check_learning_rate",
    "check_overfitting",
    "check_random_backbone",
    "check_underfitting",
    "dead_relu_shares",
    "diagnose",
    "faq_url",
    "relu_activations",
]

Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    """One diagnosis for the user."""

    severity: Severity  # error: the run is broken; warning: worth fixing; info: good to know
    title: str  # one short line
    explanation: str  # what the numbers show and what to try
    faq_id: str | None = None  # entry of core.faq to read more


def faq_url(faq_id: str | None) -> str | None:
    """The FAQ link for an entry; None when there is no entry or no such id."""
    if not faq_id:
        return None
    from core.faq import faq_link

    try:
        return str(faq_link(faq_id))
    except (KeyError, ValueError):
        return None


def _series(history: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    """Values of one metric over epochs (NaN where missing or not a number)."""
    out = []
    for rec in history:
        v = rec.get(key)
        out.append(float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan)
    return np.asarray(out, dtype=float)


def check_divergence(history: Sequence[dict[str, Any]], status: str | None = None) -> Finding | None:
    """Any NaN or infinite loss (or the run's status 'diverged') means the weights blew up."""
    for key in ("loss", "val_loss"):
        vals = _series(history, key)
        present = [i for i, rec in enumerate(history) if key in rec and rec.get(key) is not None]
        bad = [i for i in present if not np.isfinite(vals[i])]
        if bad:
            epoch = history[bad[0]].get("epoch", bad[0] + 1)
            explanation = (_("The training loss stopped being a finite number at epoch {epoch}.") if key == "loss"
                           else _("The validation loss stopped being a finite number at epoch {epoch}."))
            return Finding("error", _("Training diverged (loss became NaN or infinite)"),
                           explanation.format(epoch=epoch) + " " + _(
                               "The weights grew without bound; usually the learning rate is too high or the "
                               "inputs are not scaled. Lower the learning rate (÷10) or add normalisation."),
                           "divergence")
    if status == "diverged":
        return Finding("error", _("Training diverged"),
                       _("The run was stopped because its loss became NaN. Lower the learning rate."), "divergence")
    return None


def check_overfitting(history: Sequence[dict[str, Any]], *, min_epochs: int = 4,
                      rise: float = 0.10, gap: float = 0.05) -> Finding | None:
    """Validation loss rose ≥ `rise` (10 %) above its best while training loss kept falling, or the
    train−validation accuracy gap widened by ≥ `gap` (5 points) since the best validation epoch."""
    if len(history) < min_epochs:
        return None
    loss, val = _series(history, "loss"), _series(history, "val_loss")
    if not (np.isfinite(loss).all() and np.isfinite(val).all()):
        return None
    best = int(np.argmin(val))
    if best == len(val) - 1:
        return None
    val_rise = (val[-1] - val[best]) / max(abs(val[best]), 1e-12)
    train_fell = loss[-1] < loss[best]
    acc, vacc = _series(history, "accuracy"), _series(history, "val_accuracy")
    gap_now = gap_then = math.nan
    if np.isfinite(acc).all() and np.isfinite(vacc).all():
        gap_now, gap_then = acc[-1] - vacc[-1], acc[best] - vacc[best]
    widened = np.isfinite(gap_now) and gap_now - gap_then >= gap
    if train_fell and (val_rise >= rise or widened):
        ep = history[best].get("epoch", best + 1)
        detail = _("validation loss was lowest at epoch {epoch} ({best}) and is now {now}").format(
            epoch=ep, best=f"{val[best]:.3f}", now=f"{val[-1]:.3f}")
        if np.isfinite(gap_now):
            detail += _("; the accuracy gap grew from {then} to {now}").format(then=f"{gap_then:.1%}",
                                                                               now=f"{gap_now:.1%}")
        return Finding("warning", _("Overfitting: the model memorises the training data"),
                       _("Training loss keeps falling but {detail}. Try early stopping at the best epoch, dropout, "
                         "weight decay, data augmentation or more data.").format(detail=detail), "overfitting")
    return None


def _underfit(history: Sequence[dict[str, Any]], n_classes: int, loss_share: float = 0.8,
              acc_margin: float = 0.2) -> list[str] | None:
    """What shows that the model has barely learned (final training loss >= 80 % of ln k, or training
    accuracy within 20 % of the way from chance to perfect), in words; None when it has learned."""
    if not history or n_classes < 2:
        return None
    loss, acc = _series(history, "loss"), _series(history, "accuracy")
    chance = 1.0 / n_classes
    uniform_loss = math.log(n_classes)
    last_loss, last_acc = loss[-1], acc[-1]
    high_loss = np.isfinite(last_loss) and last_loss >= loss_share * uniform_loss
    near_chance = np.isfinite(last_acc) and last_acc <= chance + acc_margin * (1 - chance)
    if not (high_loss or near_chance):
        return None
    parts = []
    if np.isfinite(last_loss):
        parts.append(_("training loss {loss} vs {uniform} for blind guessing").format(
            loss=f"{last_loss:.3f}", uniform=f"{uniform_loss:.3f}"))
    if np.isfinite(last_acc):
        parts.append(_("training accuracy {accuracy} vs {chance} by chance").format(
            accuracy=f"{last_acc:.1%}", chance=f"{chance:.1%}"))
    return parts


def check_underfitting(history: Sequence[dict[str, Any]], n_classes: int, *,
                       loss_share: float = 0.8, acc_margin: float = 0.2) -> Finding | None:
    """Final training loss ≥ 80 % of the loss of uniform guessing (ln k), or training accuracy within
    20 % of the way from chance (1/k) to perfect: the model has not learned the signal yet.

    The advice leaves the learning rate out: a rate too high or too low is a cause of its own (checked
    before this one in RULES), and naming it here too would repeat or contradict that finding."""
    parts = _underfit(history, n_classes, loss_share, acc_margin)
    if parts is None:
        return None
    return Finding("warning", _("Underfitting: the model has barely learned"),
                   _("After {epochs} epoch(s): {evidence}. Train longer, or give the model more capacity (more "
                     "units, filters or layers).").format(epochs=len(history), evidence=_("; ").join(parts)),
                   "underfitting")


def backbone_weights_file(params: dict[str, Any]) -> Path | None:
    """Where Keras looks for a backbone's ImageNet weights before downloading them (None if unknown):
    <KERAS_HOME>/models/<file>, the file Keras Applications names for that width and input size."""
    from core.datasets import keras_cache_dir

    if params.get("name", "MobileNetV2") != "MobileNetV2":
        return None
    try:
        alpha = float(params.get("alpha", 0.35))
        size = int(params.get("input_size", 32))
    except (TypeError, ValueError):
        return None
    rows = size if size in (96, 128, 160, 192, 224) else 224  # Keras loads the 224 weights for other sizes
    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5"
    return keras_cache_dir().parent / "models" / name


def _weights_unavailable(notes: Any) -> bool:
    """A build note says the ImageNet weights could not be had (so the backbone got random weights)."""
    if not isinstance(notes, list | tuple):
        return False
    for note in notes:
        text = str(note).lower()
        if "imagenet" in text and any(w in text for w in ("unavailable", "could not", "random")):
            return True
    return False


def check_random_backbone(history: Sequence[dict[str, Any]], n_classes: int,
                          run_config: dict[str, Any] | None) -> Finding | None:
    """The model has barely learned (as check_underfitting) and it sits on a frozen backbone with random
    weights (its ImageNet weights were unavailable — the run's "build_notes" say so — or 'none' was
    chosen): such a backbone's features carry no information, whatever the learning rate."""
    if not run_config or _underfit(history, n_classes) is None:
        return None
    layers = (run_config.get("model") or {}).get("layers") or []
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("type") != "Backbone":
            continue
        p = layer.get("params") or {}
        if p.get("trainable", False):
            continue
        chosen_random = p.get("weights", "imagenet") == "none"
        if not (chosen_random or _weights_unavailable(run_config.get("build_notes"))):
            continue
        name = str(p.get("name", "MobileNetV2"))
        loss = _series(history, "loss")[-1]
        uniform = math.log(n_classes)
        where = (_("The training loss ended at {loss}; blind guessing between {k} classes scores "
                   "ln {k} = {uniform}. ").format(loss=f"{loss:.4f}", k=n_classes, uniform=f"{uniform:.4f}")
                 if np.isfinite(loss) else "")
        path = backbone_weights_file(p)
        file = (_("the file {path}").format(path=path) if path is not None
                else _("the file in Keras's models folder"))
        if chosen_random:
            advice = _("The {name} backbone is frozen and set to start from random weights (weights: none), so "
                       "its features carry no information. Unfreeze it (Backbone: trainable on) or choose "
                       "ImageNet weights (offline, Keras reads {file}).")
        else:
            advice = _("The ImageNet weights of {name} were unavailable when this run was built, so the frozen "
                       "backbone has random weights and its features carry no information. Unfreeze it "
                       "(Backbone: trainable on) or provide the ImageNet weights: {file}.")
        return Finding("warning", _("The frozen backbone has random weights"),
                       where + advice.format(name=name, file=file))
    return None


def check_learning_rate(history: Sequence[dict[str, Any]], *, min_epochs: int = 3,
                        flat: float = 0.02, bumpy: float = 0.4) -> Finding | None:
    """Too high: training loss ends above where it started, or goes up in ≥ 40 % of epochs.
    Too low: training loss fell by < 2 % over the whole run while still far from zero."""
    loss = _series(history, "loss")
    if len(loss) < min_epochs or not np.isfinite(loss).all():
        return None
    steps = np.diff(loss)
    ups = int((steps > 0.01 * np.abs(loss[:-1])).sum())
    lr = history[-1].get("lr")
    lr_txt = _(" (learning rate {lr})").format(lr=f"{lr:g}") if isinstance(lr, int | float) else ""
    if loss[-1] > loss[0] or ups >= bumpy * len(steps):
        return Finding("warning", _("Learning rate probably too high"),
                       _("The training loss went up in {ups} of {epochs} epochs and moved from {first} to "
                         "{last}{lr}. Steps this large overshoot the minimum; try a learning rate 3-10× smaller."
                         ).format(ups=ups, epochs=len(steps), first=f"{loss[0]:.3f}", last=f"{loss[-1]:.3f}",
                                  lr=lr_txt), "learning-rate-too-high")
    drop = (loss[0] - loss[-1]) / max(abs(loss[0]), 1e-12)
    if drop < flat and loss[-1] > 0.05:
        return Finding("warning", _("Learning rate probably too low"),
                       _("The training loss barely moved: {first} → {last} ({drop}) over {epochs} epochs{lr}. Try "
                         "a learning rate 3-10× larger.").format(first=f"{loss[0]:.4f}", last=f"{loss[-1]:.4f}",
                                                                 drop=f"{drop:.1%}", epochs=len(loss), lr=lr_txt),
                       "learning-rate-too-low")
    return None


def check_class_imbalance(counts: Sequence[int], class_names: Sequence[str], *,
                          ratio: float = 3.0) -> Finding | None:
    """The largest class has ≥ 3× the samples of the smallest: accuracy then flatters the model. A class
    with no samples at all is an error of its own."""
    counts = np.asarray(counts, dtype=float)
    if counts.size < 2 or counts.min() < 0:
        return None
    if (counts == 0).any():  # not a matter of degree: the model can never predict these classes
        missing = [str(class_names[i]) for i in np.flatnonzero(counts == 0)]
        shown = ", ".join(missing[:5])
        if len(missing) > 5:
            shown = _("{classes} and {n} more").format(classes=shown, n=len(missing) - 5)
        return Finding("error", _("Classes missing from the training data"),
                       ngettext("{classes} has no training samples, so the model can never predict it. Check the "
                                "labels of the data, or give every class training samples.",
                                "{classes} have no training samples, so the model can never predict them. Check "
                                "the labels of the data, or give every class training samples.",
                                len(missing)).format(classes=shown), "class-imbalance")
    lo, hi = int(counts.argmin()), int(counts.argmax())
    r = counts[hi] / max(counts[lo], 1.0)
    if r < ratio:
        return None
    return Finding("warning", _("Class imbalance"),
                   _("Class {big} has {n_big} samples but {small} only {n_small} ({ratio}). Accuracy rewards "
                     "predicting the big classes; read the per-class recall and macro F1, and consider class "
                     "weights or resampling.").format(big=class_names[hi], n_big=int(counts[hi]),
                                                      small=class_names[lo], n_small=int(counts[lo]),
                                                      ratio=f"{r:.1f}×"), "class-imbalance")


def dead_relu_shares(activations: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of units per layer whose ReLU output is 0 for every sample (and every position, for conv maps).

    A unit is the last axis (a Dense unit or a convolution channel)."""
    shares = {}
    for name, act in activations.items():
        a = np.asarray(act)
        if a.ndim < 2 or a.shape[-1] == 0:
            continue
        flat = a.reshape(-1, a.shape[-1])
        shares[name] = float((flat <= 0).all(axis=0).mean())
    return shares


def check_dead_relu(shares: dict[str, float], *, warn: float = 0.5, note: float = 0.2) -> Finding | None:
    """≥ 50 % dead units in a layer is a warning, ≥ 20 % worth knowing: those units never learn again."""
    if not shares:
        return None
    layer, worst = max(shares.items(), key=lambda kv: kv[1])
    if worst < note:
        return None
    listing = ", ".join(f"{k}: {v:.0%}" for k, v in shares.items())
    return Finding("warning" if worst >= warn else "info",
                   _("Dead ReLU units ({share} in {layer})").format(share=f"{worst:.0%}", layer=layer),
                   _("Share of units that output 0 for every test sample — {listing}. A dead unit gets no gradient "
                     "and stops learning. Lower the learning rate, or on Build a model set the layer's "
                     "kernel_initializer to he_normal and its activation to leaky_relu (or add a LeakyReLU "
                     "layer).").format(listing=listing), "dead-relu")


def relu_activations(model: Any, x: np.ndarray, max_samples: int = 256) -> dict[str, np.ndarray]:
    """Outputs of every ReLU in `model` on up to `max_samples` inputs (Dense/Conv with relu, ReLU layers)."""
    import keras

    relu = keras.activations.relu
    layers = []
    for layer in model.layers:
        act = getattr(layer, "activation", None)
        is_relu = act is relu or getattr(act, "__name__", "") == "relu"
        if is_relu or type(layer).__name__ == "ReLU":
            layers.append(layer)
    if not layers:
        return {}
    probe = keras.Model(inputs=model.inputs, outputs=[layer.output for layer in layers])
    outs = probe.predict(model_input(x[:max_samples]), verbose=0)
    if not isinstance(outs, list | tuple):
        outs = [outs]
    return {layer.name: np.asarray(o) for layer, o in zip(layers, outs, strict=True)}


@dataclass(frozen=True)
class Evidence:
    """What the rules read about one run."""

    history: Sequence[dict[str, Any]]  # epoch records of metrics.jsonl
    n_classes: int
    status: str | None = None  # the run's state, e.g. "diverged"
    class_counts: Sequence[int] | None = None  # training samples per class
    class_names: Sequence[str] | None = None
    relu_shares: dict[str, float] | None = None  # dead_relu_shares of the trained model
    run_config: dict[str, Any] | None = None  # config.json: the model spec and the build notes


@dataclass(frozen=True)
class Rule:
    """One cause: how to find it, and the causes it rules out once found (they would repeat or contradict
    it: a finding that explains a flat loss leaves no room for 'learning rate too low')."""

    cause: str
    check: Callable[[Evidence], Finding | None]
    rules_out: frozenset[str] = frozenset()


def _dead_relu(e: Evidence, most: bool) -> Finding | None:
    f = check_dead_relu(e.relu_shares or {})
    return f if f is not None and (f.severity == "warning") == most else None


def _learning_rate(e: Evidence, faq_id: str) -> Finding | None:
    f = check_learning_rate(e.history)
    return f if f is not None and f.faq_id == faq_id else None


def _class_imbalance(e: Evidence) -> Finding | None:
    if e.class_counts is None:
        return None
    names = e.class_names or [str(i) for i in range(len(e.class_counts))]
    return check_class_imbalance(e.class_counts, names)


_LOSS_SHAPE = frozenset({"learning-rate-too-high", "learning-rate-too-low", "underfitting", "overfitting"})

# Ordered: the first rule that explains a symptom names its cause; rules_out keeps later ones from naming
# another cause of the same symptom or giving advice that contradicts it.
RULES: tuple[Rule, ...] = (
    # NaN weights: every later number is meaningless
    Rule("divergence", lambda e: check_divergence(e.history, e.status),
         _LOSS_SHAPE | {"random-backbone"}),
    # a loss at chance on features that carry no information: no learning rate, epoch count or model size helps
    Rule("random-backbone", lambda e: check_random_backbone(e.history, e.n_classes, e.run_config),
         _LOSS_SHAPE | {"dead-relu", "some-dead-relu"}),
    # most units dead: the flat loss follows from it ("lower the learning rate", never "raise" it)
    Rule("dead-relu", lambda e: _dead_relu(e, most=True),
         frozenset({"learning-rate-too-low", "underfitting", "some-dead-relu"})),
    # overshooting steps: the cause of a bumpy or rising loss, and of a high one
    Rule("learning-rate-too-high", lambda e: _learning_rate(e, "learning-rate-too-high"),
         frozenset({"learning-rate-too-low", "underfitting"})),
    # steps too small: the cause of a flat loss (a few dead units would say "lower the rate": left out)
    Rule("learning-rate-too-low", lambda e: _learning_rate(e, "learning-rate-too-low"),
         frozenset({"underfitting", "some-dead-relu"})),
    # still learning, or too small a model; a model that cannot fit its training data is not overfitting
    Rule("underfitting", lambda e: check_underfitting(e.history, e.n_classes), frozenset({"overfitting"})),
    Rule("overfitting", lambda e: check_overfitting(e.history)),
    Rule("some-dead-relu", lambda e: _dead_relu(e, most=False)),
    Rule("class-imbalance", _class_imbalance),
)


def diagnose(history: Sequence[dict[str, Any]], n_classes: int, *, class_counts: Sequence[int] | None = None,
             class_names: Sequence[str] | None = None, relu_shares: dict[str, float] | None = None,
             status: str | None = None, run_config: dict[str, Any] | None = None) -> list[Finding]:
    """The findings of RULES, each rule skipped when an earlier finding ruled its cause out; most severe
    first, table order among equals (so the first finding is the run's main diagnosis)."""
    evidence = Evidence(history, n_classes, status, class_counts, class_names, relu_shares, run_config)
    found: list[Finding] = []
    ruled_out: set[str] = set()
    for rule in RULES:
        if rule.cause in ruled_out:
            continue
        finding = rule.check(evidence)
        if finding is not None:
            found.append(finding)
            ruled_out |= rule.rules_out
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda f: order[f.severity])
