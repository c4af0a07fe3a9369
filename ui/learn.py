"""Streamlit helpers for the Learn pages: the network editor, the worked example, proofs, gradient reports.

The network lives in a plain session key (`bp_net`), never in widget keys: Streamlit drops widget state
when the user visits another page, so every widget is rebuilt from `bp_net` and writes back through a
callback. Widget keys carry a version number that changes whenever `bp_net` does, so a widget never
shows a stale value after a Step or a reset.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import backprop as bp
from core.backprop_check import compare, finite_difference_gradients, our_values, quantity_label, tf_reference
from core.backprop_text import Step, chain_factors, chain_formulas
from core.charts.activations import activations_figure
from core.charts.learn import gradient_histograms, gradient_norms_figure, loss_steps_figure
from core.compare import run_label
from core.errata import completed_parameters, errata, name_mapping
from core.i18n import _, ngettext
from core.layer_gradients import LayerGradients, gradient_report
from ui.text import md_literal

__all__ = [
    "concepts",
    "current_network",
    "pick_completed_run",
    "render_activation_curves",
    "render_chain",
    "render_concept_map",
    "render_errata",
    "render_gradient_report",
    "render_network_editor",
    "render_proof",
    "render_run_gradients",
    "render_steps",
    "render_training",
]

_NET, _VER, _HIST, _ERR, _PARAM, _TF = "bp_net", "bp_ver", "bp_history", "bp_error", "bp_param", "bp_tf_on"



def concepts() -> tuple[tuple[str, str, str], ...]:
    """The article's chain: (name, the page where that link is live, what it does), in the reader's language."""
    return (
        (_("Input"), "pages/data.py", _("the features x: explore a dataset")),
        (_("Hidden layers"), "pages/model.py", _("weighted sums + activations")),
        (_("Output"), "pages/model.py", _("softmax / sigmoid probabilities")),
        (_("Loss"), "pages/backprop.py", _("how wrong the prediction is")),
        (_("Backpropagation"), "pages/backprop.py", _("the chain rule, layer by layer")),
        (_("Optimizer"), "pages/train.py", _("SGD / Adam / AdamW steps")),
        (_("Evaluation"), "pages/evaluate.py", _("confusion matrix, precision, recall, F1")),
        (_("Tuning"), "pages/runs.py", _("compare runs, change one setting")),
    )


# --- state ---------------------------------------------------------------------------------------

def current_network() -> bp.Network:
    """The network being explored (the article's example until the user changes it)."""
    if _NET not in st.session_state:
        _set(bp.default_example())
    return st.session_state[_NET]


def _set(net: bp.Network, *, keep_history: bool = False, losses: list[float] | None = None) -> None:
    """Store a new network, bump the widget version; edits restart the loss history, steps extend it."""
    st.session_state[_NET] = net
    st.session_state[_VER] = st.session_state.get(_VER, 0) + 1
    if keep_history:
        st.session_state[_HIST] = [*st.session_state.get(_HIST, []), *(losses or [])]
    else:
        st.session_state[_HIST] = [bp.forward(net).loss]


def _key(name: str) -> str:
    return f"bp_w_{name}_{st.session_state.get(_VER, 0)}"


def _try_set(make: Any) -> None:
    """Build a network from an edit; keep the old one and remember the message if the edit is invalid."""
    try:
        _set(make())
        st.session_state.pop(_ERR, None)
    except bp.BackpropError as exc:
        st.session_state[_ERR] = str(exc)
        st.session_state[_VER] = st.session_state.get(_VER, 0) + 1  # widgets snap back to the valid network


def _on_field(field: str) -> None:
    value = st.session_state[_key(field)]
    net = current_network()
    if value is None:
        st.session_state[_ERR] = _("{field} needs a number; the field was left empty").format(field=field)
        st.session_state[_VER] += 1
        return
    if field == "head" and value == "sigmoid_bce" and not 0 <= net.y <= 1:
        _try_set(lambda: replace(net, head=value, y=float(net.y > 0.5)))
        return
    _try_set(lambda: replace(net, **{field: value}))


def _on_shape() -> None:
    net = current_network()
    n_in, width = st.session_state[_key("n_inputs")], st.session_state[_key("width")]
    _try_set(lambda: bp.resize(net, int(n_in), int(width)))


def _on_x(i: int) -> None:
    net = current_network()
    value = st.session_state[_key(f"x{i}")]
    x = net.x.copy()
    x[i] = np.nan if value is None else value
    _try_set(lambda: replace(net, x=x))


def _on_table(which: str) -> None:
    """Apply a data_editor's edited cells to the network ('hidden': W1 + b1, 'output': W2)."""
    net = current_network()
    edits = st.session_state[_key(f"tbl_{which}")].get("edited_rows", {})
    w1, b1, w2 = net.w1.copy(), net.b1.copy(), net.w2.copy()
    for row, cells in edits.items():
        for col, value in cells.items():
            v = np.nan if value is None else float(value)
            if col == "bias b1":
                b1[int(row)] = v
            elif col == "weight W2":
                w2[int(row)] = v
            else:
                w1[int(row), int(col.removeprefix("from x")) - 1] = v
    _try_set(lambda: replace(net, w1=w1, b1=b1, w2=w2))


def _on_param() -> None:
    name = st.session_state[_PARAM]
    value = st.session_state[_key(f"pv_{name}")]
    if value is not None:
        _try_set(lambda: bp.with_parameter(current_network(), name, value))


def _steps(n: int) -> None:
    net, losses = bp.train(current_network(), n)
    _set(net, keep_history=True, losses=losses)


# --- the editor ----------------------------------------------------------------------------------

def _number_column(label: str) -> Any:
    return st.column_config.NumberColumn(label, format="%.6g", required=True)


def render_network_editor() -> bp.Network:
    """Every input, label, weight, bias and setting, editable; returns the current network."""
    net = current_network()
    if msg := st.session_state.pop(_ERR, None):
        st.error(_("That edit was not applied: {message}.").format(message=md_literal(msg)),
                 icon=":material/error:")
    # the output-and-loss names are long ("sigmoid output + binary cross-entropy"): a row of their own, so a
    # half-width column never cuts them short
    st.selectbox(_("Output and loss"), list(bp.HEADS), index=list(bp.HEADS).index(net.head),
                 format_func=bp.head_label, key=_key("head"), on_change=_on_field, args=("head",))
    c1, c2, c3 = st.columns(3)
    c1.selectbox(_("Hidden activation"), list(bp.ACTIVATIONS), index=list(bp.ACTIVATIONS).index(net.hidden),
                 format_func=bp.ACTIVATIONS.get, key=_key("hidden"), on_change=_on_field, args=("hidden",))
    c2.number_input(_("Inputs"), 1, bp.MAX_INPUTS, net.n_inputs, key=_key("n_inputs"), on_change=_on_shape)
    c3.number_input(_("Hidden width"), 1, bp.MAX_WIDTH, net.width, key=_key("width"), on_change=_on_shape)
    render_activation_curves("bp_activation_curves")
    c1, c2 = st.columns(2)
    c1.number_input(_("Label y"), value=net.y, step=1.0 if net.head == "sigmoid_bce" else 0.1, format="%.6g",
                    min_value=0.0 if net.head == "sigmoid_bce" else None,
                    max_value=1.0 if net.head == "sigmoid_bce" else None,
                    key=_key("y"), on_change=_on_field, args=("y",))
    c2.number_input(_("Learning rate η"), 0.0001, 10.0, net.lr, step=0.01, format="%.6g", key=_key("lr"),
                    on_change=_on_field, args=("lr",))
    cols = st.columns(net.n_inputs)
    for i, col in enumerate(cols):
        col.number_input(f"x{i + 1}", value=float(net.x[i]), step=0.1, format="%.6g", key=_key(f"x{i}"),
                         on_change=_on_x, args=(i,))
    # the column names are what _on_table reads back; the reader sees them through column_config's labels
    units = [_("hidden {unit}").format(unit=j + 1) for j in range(net.width)]
    hidden = pd.DataFrame(net.w1, columns=[f"from x{i + 1}" for i in range(net.n_inputs)], index=units)
    hidden["bias b1"] = net.b1
    labels = {**{f"from x{i + 1}": _("from x{input}").format(input=i + 1) for i in range(net.n_inputs)},
              "bias b1": _("bias b1")}
    st.caption(_("Hidden layer: weights W1 (row j, column i connects input i to hidden unit j) and biases b1"))
    st.data_editor(hidden, key=_key("tbl_hidden"), on_change=_on_table, args=("hidden",),
                   column_config={c: _number_column(label) for c, label in labels.items()})
    c1, c2 = st.columns([2, 1])
    with c1:
        out = pd.DataFrame({"weight W2": net.w2}, index=units)
        st.caption(_("Output layer: weights W2 (hidden unit j → output)"))
        st.data_editor(out, key=_key("tbl_output"), on_change=_on_table, args=("output",),
                       column_config={"weight W2": _number_column(_("weight W2"))})
    c2.number_input(_("Output bias b2"), value=net.b2, step=0.1, format="%.6g", key=_key("b2"),
                    on_change=_on_field, args=("b2",))
    row = st.container(horizontal=True)  # side by side, also on a phone
    row.button(_("Article's example"), icon=":material/restart_alt:", key="bp_reset", on_click=_set,
               args=(bp.default_example(),))
    seed = st.session_state.get(_VER, 0)
    row.button(_("Random weights"), icon=":material/casino:", key="bp_random", on_click=lambda: _set(
        bp.random_network(seed, net.n_inputs, net.width, net.hidden, net.head)))
    return current_network()


# --- the article's errors, the activations ---------------------------------------------------------

def render_errata() -> None:
    """The article's §4 numbers beside the app's (core.errata): a list, so the reasons wrap on a phone."""
    entry = _("**{quantity}** ({where}): the article prints {printed}; correct: **{correct}**. {why}")
    st.markdown("\n".join("- " + entry.format(quantity=md_literal(e.quantity), where=md_literal(e.where),
                                               printed=md_literal(e.printed), correct=md_literal(e.correct),
                                               why=md_literal(e.why)) for e in errata()))
    for c in completed_parameters():
        values = ", ".join(f"{v:g}" for v in c.values)
        st.markdown(_("**Completed by the app.** {parameter} = ({values}): {why}.").format(
            parameter=md_literal(c.parameter), values=values, why=md_literal(c.why)))
    mapping = _("its {article} = {article_value} is {parameter} = {value} here ({meaning})")
    names = _("; ").join(md_literal(mapping.format(
        article=m.article, article_value=f"{m.article_value:g}", parameter=m.parameter, value=f"{m.value:g}",
        meaning=m.meaning)) for m in name_mapping())
    st.markdown(_("**The article's names.** The app writes W1\\[j,i\\] for the weight from input i to hidden "
                  "unit j: {names}.").format(names=names))


def render_activation_curves(key: str) -> None:
    """Every activation and its slope, in an expander that builds the chart only once it is opened."""
    box = st.expander(_("What do these activations look like?"), icon=":material/show_chart:", key=key,
                      on_change="rerun")
    if box.open:
        with box:
            st.plotly_chart(activations_figure(), key=f"{key}_chart")
            st.caption(_("The slope f′(z) multiplies every gradient that flows back through the unit: a sigmoid's "
                         "is at most 0.25, so a gradient keeps at most a quarter of its size through each sigmoid "
                         "layer (unless large weights make up for it). Softmax is shown for two classes: the first "
                         "probability of softmax([z, 0]), which equals σ(z)."))


# --- the worked example --------------------------------------------------------------------------

def render_steps(steps: list[Step]) -> None:
    """Numbered steps: a title, one sentence, then each formula with the numbers put in."""
    for n, step in enumerate(steps, 1):
        st.markdown(_("**{n}. {title}.** {text}").format(n=n, title=step.title, text=step.text))
        for formula in step.formulas:
            st.latex(formula)


def render_chain(net: bp.Network) -> None:
    """Pick one parameter; show the chain-rule factors of its gradient, their product, and edit its value."""
    names = bp.parameter_names(net)
    if st.session_state.get(_PARAM) not in names:
        st.session_state[_PARAM] = "W1[1,1]"
    c1, c2 = st.columns([2, 1])
    name = c1.selectbox(_("Parameter"), names, key=_PARAM)
    value = bp.parameter_value(net, name)
    c2.number_input(_("Value of {parameter}").format(parameter=name), value=value, step=0.01, format="%.6g",
                    key=_key(f"pv_{name}"), on_change=_on_param)
    factors, _product = chain_factors(net, name)
    # a list, not a two-column table: on a phone the table cut the numbers off behind the long meanings
    line = _("{n}. {meaning}: **{value}**")
    st.markdown("\n".join(line.format(n=n, meaning=md_literal(f.meaning), value=f"{f.value:.6g}")
                           for n, f in enumerate(factors, 1)))
    for line in chain_formulas(net, name):
        st.latex(line)


def render_training(net: bp.Network) -> None:
    """Step buttons and the loss over the SGD steps taken since the last edit."""
    row = st.container(horizontal=True)  # one row, also on a phone (it wraps only if they do not fit)
    row.button(_("Step"), icon=":material/skip_next:", key="bp_step_1", on_click=_steps, args=(1,))
    row.button(_("10 steps"), icon=":material/fast_forward:", key="bp_step_10", on_click=_steps, args=(10,))
    row.button(_("100 steps"), icon=":material/double_arrow:", key="bp_step_100", on_click=_steps, args=(100,))
    history = st.session_state.get(_HIST) or [bp.forward(net).loss]
    st.plotly_chart(loss_steps_figure(history), key="bp_loss_chart")
    steps = len(history) - 1
    st.caption(ngettext("{n} step since the last edit; loss {first} → {last}. Editing the network restarts "
                        "the history.",
                        "{n} steps since the last edit; loss {first} → {last}. Editing the network restarts "
                        "the history.", steps).format(n=steps, first=f"{history[0]:.6g}", last=f"{history[-1]:.6g}"))


# --- proofs --------------------------------------------------------------------------------------

def _table(rows: list[dict[str, Any]]) -> None:
    """Rows of core.backprop_check.compare; the reader sees the headers and quantities in their language."""
    frame = pd.DataFrame(rows)
    frame["quantity"] = frame["quantity"].map(quantity_label)
    st.dataframe(frame, hide_index=True, column_config={
        "quantity": st.column_config.TextColumn(_("quantity")),
        "ours (NumPy)": st.column_config.NumberColumn(_("ours (NumPy)"), format="%.12g"),
        "reference": st.column_config.NumberColumn(_("reference"), format="%.12g"),
        "|difference|": st.column_config.NumberColumn(_("|difference|"), format="%.2e")})


def render_proof(net: bp.Network) -> None:
    """Finite differences (always) and tf.GradientTape in float64 (on request: it loads TensorFlow)."""
    ours = our_values(net)
    rows, worst = compare(ours, finite_difference_gradients(net))
    st.markdown(_("**Finite differences.** Nudge each parameter by ±10⁻⁶ and watch the loss: "
                  r"$\frac{\partial L}{\partial \theta} \approx \frac{L(\theta + \varepsilon) - L(\theta - \varepsilon)}"
                  r"{2\varepsilon}$. No calculus involved, so it checks the chain rule independently."))
    st.metric(_("Largest difference, our gradients vs finite differences"), f"{worst:.2e}")
    with st.expander(_("All finite-difference gradients"), key="bp_fd_table"):
        _table(rows)
    st.markdown(_("**TensorFlow.** The same network in float64 TensorFlow ops; gradients from `tf.GradientTape`, "
                  "then the SGD update."))
    if not st.session_state.get(_TF):
        st.button(_("Compare with TensorFlow (loads TensorFlow, a few seconds)"), icon=":material/verified:",
                  key="bp_tf_compare", on_click=lambda: st.session_state.update({_TF: True}))
        return
    with st.spinner(_("Loading TensorFlow and computing the reference…")):
        rows, worst = compare(ours, tf_reference(net))
    st.metric(_("Largest difference, ours vs TensorFlow (forward values, gradients, updates)"), f"{worst:.2e}")
    if worst <= 1e-9:
        st.success(_("All {n} numbers agree with TensorFlow to within 10⁻⁹.").format(n=len(rows)),
                   icon=":material/check_circle:")
    else:
        st.warning(_("Some numbers differ from TensorFlow by up to {difference}.").format(difference=f"{worst:.2e}"),
                   icon=":material/warning:")
    _table(rows)


# --- gradient reports ----------------------------------------------------------------------------

def render_gradient_report(records: list[LayerGradients], key: str = "grad") -> None:
    """Per-layer weight and gradient norms (log scale), and histograms of weights and gradient sizes."""
    st.plotly_chart(gradient_norms_figure(records), key=f"{key}_norms")
    weights, grads = gradient_histograms(records)
    c1, c2 = st.columns(2)
    c1.plotly_chart(weights, key=f"{key}_weights")
    c2.plotly_chart(grads, key=f"{key}_grads")


def pick_completed_run() -> Any | None:
    """A finished run (completed or stopped) with a saved model, picked from the workspace's run store; None
    if none."""
    from core.runs import RunStoreError
    from ui.workspace import workspace_jobs

    try:
        runs = [r for r in workspace_jobs().store.list_runs() if r.status in ("completed", "stopped") and r.has_model]
    except (OSError, RunStoreError) as exc:
        st.error(_("Could not read the run store: {error}").format(error=exc), icon=":material/error:")
        return None
    if not runs:
        st.info(_("No finished runs yet — train one on the Train page."), icon=":material/info:")
        st.page_link("pages/train.py", label=_("Train a model"), icon=":material/model_training:")
        return None
    return st.selectbox(_("Finished run"), runs, format_func=run_label, key="bp_run")


def render_run_gradients(run: Any, batch_size: int = 128) -> None:
    """One batch of a run's test split through its saved model and tf.GradientTape."""
    from ui.evaluate import cached_run_data, cached_run_model
    from ui.workspace import workspace_jobs

    store = workspace_jobs().store  # the run was picked from this workspace's runs
    try:
        preds = store.read_predictions(run.run_id)
        data, reason = cached_run_data(run.config, preds["test_idx"], preds["y_true"])
        if data is None or data.split is None:
            st.info(_("The test data of this run cannot be rebuilt here: {reason}.").format(
                reason=md_literal(reason or _("its split does not match the saved predictions"))),
                icon=":material/info:")
            return
        model = cached_run_model(str(store.root), run.run_id, run.updated)
        n = min(batch_size, len(data.split.y_test))
        with st.spinner(_("One batch through tf.GradientTape…")):
            records = gradient_report(model, data.split.x_test[:n], data.split.y_test[:n])
    except (OSError, ValueError, KeyError) as exc:
        st.error(_("Could not compute the gradient report of run {run}: {error}").format(
            run=run.run_id, error=md_literal(exc)), icon=":material/error:")
        return
    first, last = records[0].grad_norm, records[-1].grad_norm
    st.caption(_("{n} test samples of {dataset}, the trained model. First-layer gradient norm {first}, last layer "
                 "{last}. Small norms in early layers mean little learning there.").format(
        n=n, dataset=md_literal(data.dataset.name), first=f"{first:.3g}", last=f"{last:.3g}"))
    render_gradient_report(records, key=f"run_{run.run_id}")


# --- concept map ---------------------------------------------------------------------------------

def render_concept_map() -> None:
    """The article's chain from input to tuning, with a link to the page where each step is live."""
    chain = concepts()
    taught_here = ', fillcolor="#ffe0b2"'  # the links this page teaches
    nodes = " ".join(f'n{k} [label="{name}"{taught_here if page == "pages/backprop.py" else ""}];'
                     for k, (name, page, _what) in enumerate(chain))
    edges = " -> ".join(f"n{k}" for k in range(len(chain)))
    st.graphviz_chart(
        'digraph { rankdir=LR; node [shape=box, style="rounded,filled", fillcolor="#f0f2f6", '
        f'fontname="sans-serif", fontsize=11]; edge [arrowsize=0.6]; {nodes} {edges}; }}')
    for row in (chain[:4], chain[4:]):
        for col, (name, page, what) in zip(st.columns(4), row, strict=True):
            col.page_link(page, label=name, icon=":material/arrow_forward:", help=what)
            col.caption(what)
