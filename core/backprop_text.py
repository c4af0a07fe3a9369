"""The backprop page's words and formulas: every step of the worked example as LaTeX with the real numbers.

The numbers come from `core.backprop`; this module only writes them down (LaTeX for st.latex, Graphviz DOT
for the diagram), so the maths can be checked without reading any of the text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.backprop import (
    ACTIVATIONS,
    Forward,
    Gradients,
    Network,
    backward,
    forward,
    gradient_of,
    parameter_value,
    parse_parameter,
    sgd_step,
)
from core.i18n import _

__all__ = ["ChainFactor", "Step", "chain_factors", "chain_formulas", "network_dot", "param_tex", "worked_steps"]


def _num(v: float, digits: int = 6) -> str:
    """A number as the page prints it: up to `digits` significant digits, a real minus sign."""
    if not math.isfinite(v):
        return r"\infty" if v > 0 else r"-\infty"
    text = f"{v:.{digits}g}"
    if "e" in text:
        mant, exp = text.split("e")
        text = rf"{mant} \times 10^{{{int(exp)}}}"
    return text


def _p(v: float) -> str:
    """A number in parentheses when negative, so '− (−0.3)' reads correctly."""
    s = _num(v)
    return f"({s})" if v < 0 else s


def _vec(values: np.ndarray) -> str:
    return r"\begin{pmatrix}" + r" \\ ".join(_num(float(v)) for v in values) + r"\end{pmatrix}"


def _mat(values: np.ndarray) -> str:
    rows = [" & ".join(_num(float(v)) for v in row) for row in values]
    return r"\begin{pmatrix}" + r" \\ ".join(rows) + r"\end{pmatrix}"


def param_tex(name: str) -> str:
    """LaTeX symbol of a parameter name: 'W1[2,3]' -> w^{(1)}_{23}."""
    kind, j, i = parse_parameter(name)
    if kind == "W1":
        return f"w^{{(1)}}_{{{j + 1}{i + 1}}}"
    if kind == "b2":
        return "b^{(2)}"
    return f"{kind[0].lower()}^{{({kind[1]})}}_{{{j + 1}}}"


# --- one parameter through the chain rule -------------------------------------------------------------

@dataclass(frozen=True)
class ChainFactor:
    """One factor of the chain rule for a chosen parameter."""

    symbol: str  # LaTeX, e.g. \frac{\partial L}{\partial \hat y}
    meaning: str  # one phrase for the reader
    value: float


def _hidden_factors(net: Network, fwd: Forward, g: Gradients, kind: str, j: int, i: int) -> list[ChainFactor]:
    """The links from the output's net input back to a hidden-layer weight or bias."""
    act = ACTIVATIONS[net.hidden]
    factors = [
        ChainFactor(rf"\frac{{\partial \mathrm{{net}}}}{{\partial h_{{{j + 1}}}}} = w^{{(2)}}_{{{j + 1}}}",
                    _("output weight of hidden unit {unit}").format(unit=j + 1), float(net.w2[j])),
        ChainFactor(rf"\frac{{\partial h_{{{j + 1}}}}}{{\partial z_{{{j + 1}}}}}",
                    _("slope of {activation} at z = {z}").format(activation=act, z=_num(fwd.z[j])),
                    float(g.dh_dz[j])),
    ]
    if kind == "W1":
        factors.append(ChainFactor(
            rf"\frac{{\partial z_{{{j + 1}}}}}{{\partial w^{{(1)}}_{{{j + 1}{i + 1}}}}} = x_{{{i + 1}}}",
            _("input {input}").format(input=i + 1), float(net.x[i])))
    else:
        factors.append(ChainFactor(rf"\frac{{\partial z_{{{j + 1}}}}}{{\partial b^{{(1)}}_{{{j + 1}}}}}",
                                   _("a bias adds 1 × itself"), 1.0))
    return factors


def chain_factors(net: Network, name: str) -> tuple[list[ChainFactor], float]:
    """The factors whose product is dL/d(name), and that product."""
    kind, j, i = parse_parameter(name, net)
    fwd, g = forward(net), backward(net)
    if net.head == "sigmoid_bce":
        loss_meaning, out_meaning = _("how the binary cross-entropy changes with ŷ"), _("slope of the sigmoid")
    else:
        loss_meaning, out_meaning = _("how the squared error changes with ŷ"), _("slope of the linear output (slope 1)")
    factors = [
        ChainFactor(r"\frac{\partial L}{\partial \hat y}", loss_meaning, g.dl_dyhat),
        ChainFactor(r"\frac{\partial \hat y}{\partial \mathrm{net}}", out_meaning, g.dyhat_dnet),
    ]
    if kind == "W2":
        factors.append(ChainFactor(rf"\frac{{\partial \mathrm{{net}}}}{{\partial w^{{(2)}}_{{{j + 1}}}}} = h_{{{j + 1}}}",
                                   _("activation of hidden unit {unit}").format(unit=j + 1), float(fwd.h[j])))
    elif kind == "b2":
        factors.append(ChainFactor(r"\frac{\partial \mathrm{net}}{\partial b^{(2)}}", _("a bias adds 1 × itself"), 1.0))
    else:
        factors += _hidden_factors(net, fwd, g, kind, j, i)
    product = math.prod(f.value for f in factors)
    if net.head == "sigmoid_bce" and not math.isfinite(product):
        product = gradient_of(g, net, name)  # ŷ saturated at exactly 0 or 1: use the simplified ŷ − y
    return factors, product


def chain_formulas(net: Network, name: str) -> list[str]:
    """Three LaTeX lines: the chain rule for `name`, the numbers multiplied, and the SGD update."""
    factors, product = chain_factors(net, name)
    symbol = param_tex(name)
    value = parameter_value(net, name)
    chain = r" \cdot ".join(f.symbol.split(" = ")[0] for f in factors)
    numbers = r" \cdot ".join(_p(f.value) for f in factors)
    return [rf"\frac{{\partial L}}{{\partial {symbol}}} = {chain}",
            rf"= {numbers} = {_num(product)}",
            rf"{symbol} \leftarrow {_num(value)} - {_num(net.lr)} \cdot {_p(product)} = {_num(value - net.lr * product)}"]


def network_dot(net: Network) -> str:
    """The network as a Graphviz DOT diagram: values in the nodes, weights on the edges."""
    fwd = forward(net)
    out = "ŷ" if net.head == "sigmoid_bce" else _("ŷ (linear)")
    # Compact ranks and large type: the chart is scaled down to half the page width.
    lines = ["digraph net {", "rankdir=LR; splines=line; nodesep=0.15; ranksep=0.6; pad=0.05;",
             'node [shape=circle, fixedsize=true, width=0.95, fontsize=17, fontname="sans-serif"];',
             'edge [fontsize=15, fontname="sans-serif", arrowsize=0.6];']
    for i in range(net.n_inputs):
        lines.append(f'x{i} [label="x{i + 1}\\n{net.x[i]:.4g}", style=filled, fillcolor="#e8f0fe"];')
    for j in range(net.width):
        lines.append(f'h{j} [label="h{j + 1}\\nz={fwd.z[j]:.4g}\\nh={fwd.h[j]:.4g}", style=filled, '
                     f'fillcolor="#fef7e0"];')
    lines.append(f'o [label="{out}\\nnet={fwd.net_out:.4g}\\n{fwd.y_hat:.4g}", style=filled, fillcolor="#e6f4ea"];')
    for prefix, n in (("x", net.n_inputs), ("h", net.width)):  # keep x1, x2, ... top to bottom
        if n > 1:
            chain = " -> ".join(f"{prefix}{k}" for k in range(n))
            lines.append(f"{{rank=same; {chain} [style=invis];}}")
    lines.append(f'L [label="L\\n{fwd.loss:.4g}", shape=box, width=0.9, style=filled, fillcolor="#fce8e6"];')
    for j in range(net.width):
        for i in range(net.n_inputs):
            lines.append(f'x{i} -> h{j} [label="{net.w1[j, i]:.4g}"];')
        lines.append(f'h{j} -> o [label="{net.w2[j]:.4g}"];')
    lines.append(f'o -> L [label="y={net.y:.4g}"];')
    return "\n".join(lines + ["}"])


# --- the worked example -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One numbered step of the worked example: a title, one sentence, and formulas with numbers."""

    title: str
    text: str
    formulas: list[str] = field(default_factory=list)


# Each hidden activation's symbol, definition and slope.
_ACT_TEX = {
    "relu": (r"\mathrm{ReLU}", r"\mathrm{ReLU}(z) = \max(0, z)",
             r"\mathrm{ReLU}'(z) = 1 \text{ if } z > 0 \text{ else } 0"),
    "sigmoid": (r"\sigma", r"\sigma(z) = \frac{1}{1 + e^{-z}}", r"\sigma'(z) = \sigma(z)\,(1 - \sigma(z))"),
    "tanh": (r"\tanh", r"\tanh(z)", r"\tanh'(z) = 1 - \tanh^2(z)"),
}


def _forward_steps(net: Network, fwd: Forward) -> list[Step]:
    """Hidden net input, hidden activation, output net input."""
    act_name, act_def, _slope = _ACT_TEX[net.hidden]
    sums = [r"z_j = \sum_i w^{(1)}_{ji}\, x_i + b^{(1)}_j"]
    for j in range(net.width):
        terms = " + ".join(f"{_num(net.w1[j, i])} \\cdot {_p(net.x[i])}" for i in range(net.n_inputs))
        sums.append(f"z_{{{j + 1}}} = {terms} + {_p(net.b1[j])} = {_num(fwd.z[j])}")
    acts = [f"h_j = {act_name}(z_j), \\quad {act_def}"]
    acts += [f"h_{{{j + 1}}} = {act_name}({_num(fwd.z[j])}) = {_num(fwd.h[j])}" for j in range(net.width)]
    terms = " + ".join(f"{_num(net.w2[j])} \\cdot {_p(fwd.h[j])}" for j in range(net.width))
    return [
        Step(_("Hidden net input"), _("Each hidden unit adds up its weighted inputs and its bias."), sums),
        Step(_("Hidden activation"), _("The {activation} activation bends the sum so that stacked layers can "
                                       "model more than a straight line.").format(activation=ACTIVATIONS[net.hidden]),
             acts),
        Step(_("Output net input"), _("The output unit does the same with the hidden activations."), [
            r"\mathrm{net} = \sum_j w^{(2)}_j\, h_j + b^{(2)}",
            rf"\mathrm{{net}} = {terms} + {_p(net.b2)} = {_num(fwd.net_out)}"]),
    ]


def _loss_steps(net: Network, fwd: Forward) -> list[Step]:
    """The prediction and the loss, for the network's output and loss."""
    if net.head == "sigmoid_bce":
        return [
            Step(_("Prediction"), _("The sigmoid squeezes the net input into a probability between 0 and 1."), [
                rf"\hat y = \sigma(\mathrm{{net}}) = \frac{{1}}{{1 + e^{{-{_p(fwd.net_out)}}}}} = {_num(fwd.y_hat)}"]),
            Step(_("Loss"), _("Binary cross-entropy is small when the predicted probability of the true "
                              "label is close to 1."), [
                r"L = -\left[\, y \ln \hat y + (1 - y) \ln(1 - \hat y) \,\right]",
                rf"L = -\left[\, {_num(net.y)} \ln {_num(fwd.y_hat)} + {_num(1 - net.y)} \ln {_num(1 - fwd.y_hat)}"
                rf" \,\right] = {_num(fwd.loss)}"]),
        ]
    return [
        Step(_("Prediction"), _("A linear output passes the net input through unchanged."), [
            rf"\hat y = \mathrm{{net}} = {_num(fwd.y_hat)}"]),
        Step(_("Loss"), _("Squared error grows with the square of the distance to the label."), [
            r"L = (\hat y - y)^2",
            rf"L = ({_num(fwd.y_hat)} - {_p(net.y)})^2 = {_num(fwd.loss)}"]),
    ]


def _output_slopes(net: Network, fwd: Forward, g: Gradients) -> tuple[str, str, str]:
    """dL/dŷ and dŷ/dnet with their numbers, and how their product simplifies."""
    if net.head == "sigmoid_bce":
        dl = rf"-\frac{{y}}{{\hat y}} + \frac{{1 - y}}{{1 - \hat y}} = -\frac{{{_num(net.y)}}}{{{_num(fwd.y_hat)}}}" \
             rf" + \frac{{{_num(1 - net.y)}}}{{{_num(1 - fwd.y_hat)}}} = {_num(g.dl_dyhat)}"
        dy = rf"\hat y (1 - \hat y) = {_num(fwd.y_hat)} \cdot {_num(1 - fwd.y_hat)} = {_num(g.dyhat_dnet)}"
        return dl, dy, r" = \hat y - y"
    return rf"2(\hat y - y) = 2\,({_num(fwd.y_hat)} - {_p(net.y)}) = {_num(g.dl_dyhat)}", "1", ""


def _output_layer_steps(net: Network, fwd: Forward, g: Gradients) -> list[Step]:
    """The error at the output, then the output weights' and bias's gradients."""
    dl, dy, simplified = _output_slopes(net, fwd, g)
    grads = [r"\frac{\partial L}{\partial w^{(2)}_j} = \delta^{(2)} \cdot h_j, \qquad "
             r"\frac{\partial L}{\partial b^{(2)}} = \delta^{(2)}"]
    grads += [rf"\frac{{\partial L}}{{\partial w^{{(2)}}_{{{j + 1}}}}} = {_num(g.delta_out)} \cdot {_p(fwd.h[j])}"
              rf" = {_num(g.w2[j])}" for j in range(net.width)]
    grads.append(rf"\frac{{\partial L}}{{\partial b^{{(2)}}}} = {_num(g.b2)}")
    return [
        Step(_("Error at the output"), _("The chain rule starts at the loss: how much L changes when the "
                                         "output's net input moves a little."), [
            rf"\frac{{\partial L}}{{\partial \hat y}} = {dl}",
            rf"\frac{{\partial \hat y}}{{\partial \mathrm{{net}}}} = {dy}",
            rf"\delta^{{(2)}} = \frac{{\partial L}}{{\partial \mathrm{{net}}}} = \frac{{\partial L}}{{\partial \hat y}}"
            rf" \cdot \frac{{\partial \hat y}}{{\partial \mathrm{{net}}}} = {_num(g.dl_dyhat)} \cdot {_p(g.dyhat_dnet)}"
            rf"{simplified} = {_num(g.delta_out)}"]),
        Step(_("Output-layer gradients"), _("A weight's gradient is the error it feeds times the activation "
                                            "that flows through it."), grads),
    ]


def _hidden_layer_steps(net: Network, g: Gradients) -> list[Step]:
    """The error at each hidden unit, then the hidden weights' and biases' gradients."""
    act_name, _definition, act_slope = _ACT_TEX[net.hidden]
    deltas = [rf"\delta^{{(1)}}_j = \frac{{\partial L}}{{\partial z_j}} = \delta^{{(2)}}\, w^{{(2)}}_j"
              rf" \cdot {act_name}'(z_j), \quad {act_slope}"]
    deltas += [rf"\delta^{{(1)}}_{{{j + 1}}} = {_num(g.delta_out)} \cdot {_p(net.w2[j])} \cdot {_p(g.dh_dz[j])}"
               rf" = {_num(g.delta_hidden[j])}" for j in range(net.width)]
    return [
        Step(_("Error at the hidden layer"), _("The output error flows back through each output weight and is "
                                               "scaled by the slope of the hidden activation."), deltas),
        Step(_("Hidden-layer gradients"), _("Each hidden weight's gradient is its unit's error times the input it "
                                            "multiplies; the bias gradient is the error itself."), [
            r"\frac{\partial L}{\partial W^{(1)}} = \delta^{(1)}\, x^{\top}, \qquad "
            r"\frac{\partial L}{\partial b^{(1)}} = \delta^{(1)}",
            rf"\frac{{\partial L}}{{\partial W^{{(1)}}}} = {_vec(g.delta_hidden)}"
            rf"\begin{{pmatrix}} {' & '.join(_num(v) for v in net.x)} \end{{pmatrix}} = {_mat(g.w1)}",
            rf"\frac{{\partial L}}{{\partial b^{{(1)}}}} = {_vec(g.b1)}"]),
    ]


def _update_step(net: Network, g: Gradients) -> Step:
    """Every parameter before, its gradient times the learning rate, and after."""
    new = sgd_step(net, g)
    eta = _num(net.lr)
    return Step(_("SGD update"), _("Gradient descent moves every parameter a small step (the learning rate) "
                                   "against its gradient, which lowers the loss."), [
        rf"\theta \leftarrow \theta - \eta\, \frac{{\partial L}}{{\partial \theta}}, \quad \eta = {eta}",
        rf"W^{{(1)}} \leftarrow {_mat(net.w1)} - {eta} \cdot {_mat(g.w1)}",
        rf"= {_mat(new.w1)}",
        rf"b^{{(1)}} \leftarrow {_vec(net.b1)} - {eta} \cdot {_vec(g.b1)} = {_vec(new.b1)}",
        rf"w^{{(2)}} \leftarrow {_vec(net.w2)} - {eta} \cdot {_vec(g.w2)} = {_vec(new.w2)}",
        rf"b^{{(2)}} \leftarrow {_num(net.b2)} - {eta} \cdot {_p(g.b2)} = {_num(new.b2)}"])


def worked_steps(net: Network) -> list[Step]:
    """The forward pass, loss, chain rule and SGD update, each with its formula and the real numbers."""
    fwd, g = forward(net), backward(net)
    return [*_forward_steps(net, fwd), *_loss_steps(net, fwd), *_output_layer_steps(net, fwd, g),
            *_hidden_layer_steps(net, g), _update_step(net, g)]
