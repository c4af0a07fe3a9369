"""The article's §4 worked example checked: what it prints, the right value, and why they differ.

Only the article's printed numbers are written here; every "correct" value is computed from the app's
example network (`core.backprop.default_example`) or, where the article got one step wrong on its own
inputs, by redoing that step on them. The Backprop page renders these lists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core import backprop as bp
from core.activations import ACTIVATIONS, sigmoid
from core.i18n import _

__all__ = ["Completed", "Erratum", "NameMapping", "completed_parameters", "errata", "name_mapping"]

# What the article's §4.3 prints.
PRINTED_Z = (1.6, 1.8)
PRINTED_NET = 1.64
PRINTED_Y_HAT = 0.613
PRINTED_LOSS = 0.268
PRINTED_B2_STEP = 0.00387
PRINTED_B2_NEW = 0.839


@dataclass(frozen=True)
class Erratum:
    """One number or formula the article prints, beside the right one."""

    where: str  # the article's section and step
    quantity: str  # what the number is
    printed: str  # what the article prints
    correct: str  # the right value or formula, as the page shows it
    why: str
    printed_value: float | None = None  # None for a formula
    correct_value: float | None = None


@dataclass(frozen=True)
class Completed:
    """Parameters the article leaves out, and the values the app uses."""

    parameter: str  # the app's name, e.g. "W2"
    values: tuple[float, ...]
    why: str


@dataclass(frozen=True)
class NameMapping:
    """One of the article's parameter names, the number it gives, and the app's name for that weight."""

    article: str
    article_value: float
    parameter: str  # the app's name, e.g. "W1[1,3]"
    value: float  # the app's value of that parameter
    meaning: str


def _n(v: float) -> str:
    """As the worked example prints numbers: up to 6 significant digits, a real minus sign."""
    return f"{v:.6g}".replace("-", "−")


def _sum_text(net: bp.Network, j: int) -> str:
    terms = " + ".join(f"{_n(net.w1[j, i])}·{_n(net.x[i])}" for i in range(net.n_inputs))
    return f"{terms} + {_n(net.b1[j])}"


def _forward_errata(net: bp.Network, fwd: bp.Forward) -> list[Erratum]:
    forward_pass = _("§4.3, forward pass")
    hidden = [Erratum(
        forward_pass, _("hidden unit {unit}'s sum z{unit}").format(unit=j + 1), _n(PRINTED_Z[j]), _n(fwd.z[j]),
        _("{sum} = {value}; the printed sum does not add up.").format(sum=_sum_text(net, j), value=_n(fwd.z[j])),
        PRINTED_Z[j], float(fwd.z[j])) for j in range(net.width)]
    terms = " + ".join(f"{_n(net.w2[j])}·{_n(fwd.h[j])}" for j in range(net.width))
    output = Erratum(
        forward_pass, _("the output unit's sum net"), _n(PRINTED_NET), _n(fwd.net_out),
        _("The printed sum has no term for h2, and its own terms do not add up to {printed} either. With both "
          "hidden units, h = ReLU(z) = ({h}): {terms} + {b2} = {net}.").format(
            printed=_n(PRINTED_NET), h=", ".join(_n(h) for h in fwd.h), terms=terms, b2=_n(net.b2),
            net=_n(fwd.net_out)),
        PRINTED_NET, fwd.net_out)
    y_hat_of_printed = float(sigmoid(PRINTED_NET))
    prediction = Erratum(
        _("§4.3, prediction"), _("σ({printed}), the sigmoid of the article's own sum").format(printed=_n(PRINTED_NET)),
        _n(PRINTED_Y_HAT), _n(y_hat_of_printed),
        _("1 / (1 + e^−{net}) = {y_hat}: {printed} is not the sigmoid of the article's own sum. With the corrected "
          "sum the prediction is ŷ = σ({corrected_net}) = {corrected_y_hat}.").format(
            net=_n(PRINTED_NET), y_hat=_n(y_hat_of_printed), printed=_n(PRINTED_Y_HAT),
            corrected_net=_n(fwd.net_out), corrected_y_hat=_n(fwd.y_hat)),
        PRINTED_Y_HAT, y_hat_of_printed)
    loss = Erratum(
        _("§4.3, loss"), _("the binary cross-entropy L = −ln ŷ (label y = 1)"), _n(PRINTED_LOSS), _n(fwd.loss),
        _("From the article's own ŷ = {y_hat}, −ln ŷ = {ln} and −log₁₀ ŷ = {log10}: {printed} fits neither "
          "logarithm. With the corrected ŷ = {corrected_y_hat}, L = −ln {corrected_y_hat} = {loss}.").format(
            y_hat=_n(PRINTED_Y_HAT), ln=_n(-math.log(PRINTED_Y_HAT)), log10=_n(-math.log10(PRINTED_Y_HAT)),
            printed=_n(PRINTED_LOSS), corrected_y_hat=_n(fwd.y_hat), loss=_n(fwd.loss)),
        PRINTED_LOSS, fwd.loss)
    return [*hidden, output, prediction, loss]


def _update_erratum(net: bp.Network, fwd: bp.Forward) -> Erratum:
    """The article's SGD step on the output bias adds ten times the step it computes."""
    new_b2 = bp.sgd_step(net).b2
    step_from_printed = net.lr * (net.y - PRINTED_Y_HAT)  # −η·∂L/∂b2 with the article's ŷ
    return Erratum(
        _("§4.3, SGD update"),
        _("the output bias b2 after one step, b2 − η·(ŷ − y), η = {lr}").format(lr=_n(net.lr)),
        f"{_n(net.b2)} + {_n(PRINTED_B2_STEP)} = {_n(PRINTED_B2_NEW)}", _n(new_b2),
        _("{b2} + {step} = {sum}, not {printed}: the printed result moves b2 by {moved}, {ratio} times the step "
          "η·(y − ŷ) = {lr}·({y} − {y_hat}) = {computed} it computes. With the corrected ŷ = {corrected_y_hat} "
          "the step is {corrected_step}, so b2 becomes {new_b2}.").format(
            b2=_n(net.b2), step=_n(PRINTED_B2_STEP), sum=_n(net.b2 + PRINTED_B2_STEP), printed=_n(PRINTED_B2_NEW),
            moved=_n(PRINTED_B2_NEW - net.b2), ratio=f"{(PRINTED_B2_NEW - net.b2) / step_from_printed:.1f}",
            lr=_n(net.lr), y=_n(net.y), y_hat=_n(PRINTED_Y_HAT), computed=_n(step_from_printed),
            corrected_y_hat=_n(fwd.y_hat), corrected_step=_n(new_b2 - net.b2), new_b2=_n(new_b2)),
        PRINTED_B2_NEW, new_b2)


def _formula_erratum(net: bp.Network, fwd: bp.Forward) -> Erratum:
    """§4.2's hidden-layer gradient without the activation's slope; the example hides it, a sigmoid shows it."""
    slopes = ", ".join(_n(s) for s in bp.backward(net, fwd).dh_dz)
    zs = ", ".join(_n(z) for z in fwd.z)
    sigmoid_slope = float(ACTIVATIONS["sigmoid"].derivative(fwd.z[0]))
    return Erratum(
        _("§4.2, backpropagation"), _("the gradient of a hidden-layer weight"),
        _("the output error times the output weight times the input: no f′(z) factor"),
        _("δ(1) = δ(2)·w(2)·f′(z), then ∂L/∂w(1) = δ(1)·x"),
        _("The chain rule passes through the hidden activation h = f(z), so its slope f′(z) is a factor. In the "
          "example the slopes are ReLU′({zs}) = ({slopes}), so the numbers hide the gap; with a sigmoid hidden "
          "layer σ′({z1}) = {sigmoid_slope}, and leaving it out makes hidden unit 1's gradients {factor} times "
          "too large.").format(zs=zs, slopes=slopes, z1=_n(fwd.z[0]), sigmoid_slope=_n(sigmoid_slope),
                               factor=f"{1 / sigmoid_slope:.3g}"))


def errata() -> list[Erratum]:
    """Every number of §4.3 that the article gets wrong, and §4.2's hidden-layer formula."""
    net = bp.default_example()
    fwd = bp.forward(net)
    return [*_forward_errata(net, fwd), _update_erratum(net, fwd), _formula_erratum(net, fwd)]


def completed_parameters() -> list[Completed]:
    """The parameters the article does not give, as the app's example sets them."""
    net = bp.default_example()
    return [Completed("W2", tuple(float(w) for w in net.w2),
                      _("the article's output sum leaves h2 out, so it does not give both weights from the hidden "
                        "units to the output; the app uses the same value for each"))]


def name_mapping() -> list[NameMapping]:
    """The article's names for the weights from x3, and the app's W1[j,i] (row j: hidden unit, column i: input)."""
    net = bp.default_example()
    return [NameMapping(article, printed, name, bp.parameter_value(net, name), meaning)
            for article, printed, name, meaning in (("w²¹", 0.3, "W1[1,3]", _("x3 → hidden unit 1")),
                                                    ("w²²", 0.4, "W1[2,3]", _("x3 → hidden unit 2")))]
