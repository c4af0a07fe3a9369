"""Backpropagation explorer: the article's 3-2-1 network worked out exactly, editable, and proven."""

import streamlit as st

from core import backprop as bp
from core.backprop_text import network_dot, worked_steps
from core.i18n import _
from core.layer_gradients import demo_gradient_reports
from ui.learn import (
    pick_completed_run,
    render_chain,
    render_concept_map,
    render_errata,
    render_gradient_report,
    render_network_editor,
    render_proof,
    render_run_gradients,
    render_steps,
    render_training,
)
from ui.state import ensure_app_entry
from ui.text import md_literal

ensure_app_entry()

st.title(":material/calculate: " + _("Backpropagation, number by number"))
st.markdown(_(
    "How a network learns from one example: the **forward pass** computes a prediction, the **loss** "
    "measures how wrong it is, the **chain rule** sends that error back to every weight, and **SGD** "
    "moves each weight a little against its gradient. The defaults are the article's 3-2-1 network "
    "(inputs x = (1, 2, 3), label y = 1, ReLU hidden layer, sigmoid output, binary cross-entropy, "
    "learning rate 0.01) with its arithmetic corrected: for example "
    "0.1·1 + 0.2·2 + 0.3·3 + 0.5 = **1.9**, not 1.6. The errata below list every correction."
))
with st.expander(_("Errata: the article's §4 numbers checked"), icon=":material/fact_check:", key="bp_errata"):
    render_errata()
with st.expander(_("Where this fits: the whole chain from data to tuning"), icon=":material/route:",
                 key="bp_concepts"):
    render_concept_map()

st.header(_("The network"), divider="gray")
left, right = st.columns([1, 1], gap="large")
with left:
    net = render_network_editor()
with right:
    st.graphviz_chart(network_dot(net), width="stretch")
    st.caption(_("Blue: inputs. Yellow: hidden units (net input z and activation h). Green: the output. "
                 "Red: the loss. Edge labels are the weights."))

st.header(_("The worked example"), divider="gray")
st.caption(_("Every number below is computed from the network above; change a weight and they all follow."))
render_steps(worked_steps(net))

st.header(_("Follow one weight through the chain rule"), divider="gray")
st.markdown(_("A weight's gradient is a product of local slopes, one per link between the weight and the "
              "loss. Pick a parameter to see each factor, the product, and its update; edit its value here too."))
render_chain(net)

st.header(_("Keep training"), divider="gray")
st.markdown(_("Each step recomputes the forward pass and the gradients and applies the SGD update."))
render_training(net)

st.header(_("Proof: two independent references"), divider="gray")
render_proof(net)

st.header(_("Your own model: gradients layer by layer"), divider="gray")
st.markdown(_("In a deep network the chain above has one factor per layer. If those factors are small "
              "(a sigmoid's slope is at most 0.25) the gradient **vanishes** before it reaches the first "
              "layers; if they are large it **explodes**. One batch through `tf.GradientTape` shows each "
              "layer's gradient norm."))
tab_runs, tab_demo = st.tabs([_("Your runs"), _("Demo: deep sigmoid vs ReLU")], key="bp_gradient_tabs")
with tab_runs:
    run = pick_completed_run()
    if run is not None and st.toggle(_("Compute the gradient report (loads TensorFlow, a few seconds)"),
                                     key="bp_run_report"):
        render_run_gradients(run)
with tab_demo:
    st.markdown(_("Two fresh, untrained networks with 6 hidden layers of 32 units on one batch of 128 "
                  "digits: one with sigmoid activations, one with ReLU."))
    if st.button(_("Compute the gradient report (loads TensorFlow, a few seconds)"), icon=":material/play_arrow:",
                 key="bp_demo_compute"):
        st.session_state["bp_demo_on"] = True
    if st.session_state.get("bp_demo_on"):
        try:
            with st.spinner(_("Building the two networks and running one batch…")):
                reports = demo_gradient_reports()
        except (bp.BackpropError, OSError) as exc:
            st.error(_("Could not compute the gradient report: {error}").format(error=md_literal(exc)),
                     icon=":material/error:")
        else:
            for act, records in reports.items():
                first, last = records[0].grad_norm, records[-1].grad_norm
                name = {"sigmoid": "Sigmoid", "relu": "ReLU"}[act]
                st.subheader(_("{activation} network").format(activation=name))
                st.caption(_("First-layer gradient norm {first}, output layer {last} (ratio {ratio}).").format(
                    first=f"{first:.3g}", last=f"{last:.3g}", ratio=f"{first / last:.3g}"))
                render_gradient_report(records, key=f"demo_{act}")
