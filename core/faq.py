"""The FAQ as data: stable ids other pages link to, grouped entries, and a search in English and Chinese.

Content lives here (not in the page) so tests can check every link and every id, and so the Evaluate
diagnostics can point at an answer with `faq_link("overfitting")` and be sure the target exists.

Every text is written inside `entries()` and `groups()`, wrapped in `_()`: Babel extracts each question,
answer, keyword list and link label from there, and each call returns them in the language of the current
run (a module-level tuple would be translated once, at import, into the language of whichever run imported
it). An entry's keywords are one translated text, "energy, carbon, …": search words for that language,
which need not translate the English ones word for word.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import quote

from core.i18n import LANGUAGES, _, language, set_language

__all__ = ["FaqEntry", "by_group", "entries", "faq_link", "get", "groups", "search"]

_GLOSSARY = Path(__file__).resolve().parents[1] / "docs" / "glossary.csv"


def groups() -> dict[str, str]:
    """Group key (also the page's anchor) -> title, in the FAQ's order."""
    return {
        "article": _("Questions from the article"),
        "practical": _("Practical questions"),
        "diagnostics": _("Training diagnostics"),
    }


@dataclass(frozen=True)
class FaqEntry:
    """One question and its answer."""

    id: str  # stable anchor and link target: lowercase words joined by '-'
    group: str  # a key of groups()
    question: str
    answer: str  # markdown, in the project's own words
    keywords: tuple[str, ...] = ()  # extra search words that may not appear in the text
    links: tuple[tuple[str, str], ...] = ()  # (URL path of a page, as in app.py: "data", label)


def _entry(entry_id: str, group: str, question: str, answer: str, keywords: str,
           links: tuple[tuple[str, str], ...]) -> FaqEntry:
    """An entry whose keywords come as one text, separated by commas (a translation may use ， or 、)."""
    words = tuple(w.strip() for w in re.split(r"[,，、]", keywords) if w.strip())
    return FaqEntry(entry_id, group, question, answer, words, links)


def entries() -> tuple[FaqEntry, ...]:
    """Every entry, in the FAQ's order and the current run's language."""
    return (
        # --- (a) the article's questions ---------------------------------------------------------------
        _entry("data-privacy", "article",
               _("How can personal data stay private when a model is trained on it?"),
               _("Three layers of protection, usually combined:\n\n"
                 "- **Anonymisation** removes or coarsens identifying fields (names, exact dates, rare "
                 "combinations) before training. It is necessary but weak on its own: records can often "
                 "be re-identified by linking them with other data.\n"
                 "- **Federated learning** keeps the data where it is (phones, hospitals). Each site "
                 "trains on its own data and sends only weight updates to a server that averages them, "
                 "so raw records never move.\n"
                 "- **Differential privacy** adds calibrated noise (for example to clipped per-example "
                 "gradients, as in DP-SGD) so that the trained model barely changes whether or not any "
                 "one person is in the data; the privacy budget ε says how much.\n\n"
                 "Where your data goes in Keras Lab depends on where the app runs:\n\n"
                 "- **On your own computer** nothing you load or train leaves it: uploads are read in "
                 "memory, runs are written to the local `runs/` folder, and the only traffic is Keras "
                 "downloading MNIST, Fashion-MNIST or CIFAR, or ImageNet weights for a pre-trained "
                 "backbone, the first time you use them.\n"
                 "- **On a shared deployment** (such as Streamlit Community Cloud) every file you "
                 "upload is sent to that server. An uploaded dataset is held in the server's memory for "
                 "your session only (an uploaded model is written to a temporary file while it is "
                 "checked, then removed), but the runs you train or upload are kept in the server's "
                 "runs folder, in your workspace (`runs/workspaces/…`), until they are deleted or the "
                 "server's disk is wiped (Community Cloud wipes it on a restart): each run's "
                 "`config.json` (settings, class names and, for an uploaded table, its preparation: "
                 "column names, the category values kept, means and scales), its metrics and "
                 "TensorBoard event files, `model.keras` (which may have memorised training rows) and "
                 "`predictions.npz` (test-set probabilities, labels and row numbers). Whoever operates "
                 "the server can read them, so do not upload personal data to a deployment you do not "
                 "control."),
               _("anonymization, anonymisation, federated, differential privacy, dp-sgd, gdpr, "
                 "personal, upload, server, deployment"),
               (("data", _("Explore data")), ("runs", _("Compare runs")))),
        _entry("energy-cost", "article", _("How much energy and compute does training a large model cost?"),
               _("Training cost grows roughly with *parameters × training tokens*. Patterson et al. "
                 "(2021, *Carbon Emissions and Large Neural Network Training*) estimate that training "
                 "GPT-3 (175 billion parameters) used about **1,300 MWh** of electricity (1,287 MWh, "
                 "i.e. about 1.3 GWh) and emitted about 550 t of CO₂-equivalent, before cooling water, "
                 "the hardware's own footprint and every later fine-tune or answer (inference).\n\n"
                 "**Distributed training** (the article's remedy: many GPUs share the work) makes "
                 "training *faster*, not cheaper. The operations are the same; N chips finish them in "
                 "at best 1/N of the time while drawing N times the power, so the energy (power × time) "
                 "stays the same, and exchanging gradients and waiting for the slowest worker add to "
                 "it. What cuts energy is doing less work or doing it more efficiently: start from a "
                 "pre-trained model and fine-tune it, use smaller or distilled models, stop early when "
                 "validation stops improving, use efficient accelerators and low-carbon data centres "
                 "(Patterson et al. report that the choice of model, processor and data centre can "
                 "change the carbon footprint 100–1000×).\n\n"
                 "At Keras Lab's scale the same habits show up in small: compare runs before training "
                 "longer, use early stopping on the Train page, and let a sweep's pruner stop "
                 "unpromising trials early."),
               _("energy, carbon, compute, cost, electricity, gpu hours, green, mwh, gwh, gpt-3, "
                 "distributed"),
               (("train", _("Train")), ("runs", _("Compare runs")), ("sweep", _("Sweeps")))),
        _entry("explainability", "article", _("Can we explain why a deep network made a decision?"),
               _("Only partly. A network is millions of multiplications, not a rule list, so "
                 "explanations are approximations: which inputs mattered, which classes are confused, "
                 "how the model behaves on slices of the data. Start with the behaviour you can "
                 "measure. In this app:\n\n"
                 "- the **Explain** tab on the Evaluate page shows, for any test sample and for the "
                 "most confident mistakes, which inputs the run's model relied on: a **saliency map** "
                 "(how much each pixel would change the class's score, |∂ score / ∂ x|; Simonyan et "
                 "al., 2014) and **Grad-CAM** (where in the last convolution's feature maps the "
                 "evidence for the class lies; Selvaraju et al., 2017) laid over the image, or for a "
                 "table each feature's gradient × input. Grad-CAM needs a Conv2D layer, so a dense "
                 "network gets saliency only. A model that looks at the background or a watermark "
                 "instead of the object is caught here;\n"
                 "- the **confusion matrix** and per-class precision / recall on the Evaluate page show "
                 "*which* mistakes the model makes, and the error gallery shows the examples;\n"
                 "- the **Backpropagation** page shows exactly how each weight's gradient is formed, "
                 "and the gradient report shows how strongly each layer of your model is learning;\n"
                 "- the **diagnostics** on the Evaluate page name problems such as overfitting or class "
                 "imbalance and link to the answers below.\n\n"
                 "These maps show what the model used, not why that is right: a sharp map on the object "
                 "can still belong to a wrong answer. Other methods (SHAP, LIME, integrated gradients) "
                 "need libraries this app does not include."),
               _("interpretability, interpretable, explainable, xai, black box, saliency, grad-cam, gradcam, "
                 "heatmap, shap, lime, transparency, attribution"),
               (("evaluate", _("Evaluate")), ("backprop", _("Backpropagation")))),
        _entry("healthcare-risks", "article", _("What are the risks of using AI in healthcare?"),
               _("- **Errors with high stakes**: a missed tumour (false negative) and a false alarm "
                 "have very different costs, so accuracy alone says little; look at recall and "
                 "precision per class.\n"
                 "- **Bias and shift**: a model trained on one hospital's patients or scanners can fail "
                 "on another population; validate on data from where it will be used.\n"
                 "- **Privacy** of patient records (see the privacy answer above).\n"
                 "- **Over-trust and accountability**: clinicians may follow a confident but wrong "
                 "model; the decision and responsibility must stay with a person, and medical software "
                 "is regulated.\n\n"
                 "A model trained here (for example on the breast-cancer dataset) is a learning "
                 "exercise, not a diagnostic tool."),
               _("medical, health, hospital, diagnosis, clinical, safety, bias"),
               (("evaluate", _("Evaluate")),)),
        _entry("ethics-fairness", "article", _("How do bias, fairness and accountability apply to a model?"),
               _("A model learns whatever is in its data, gaps and prejudices included. The article's "
                 "sections on ethics (§7.3, §8) name three concerns:\n\n"
                 "- **Bias in the data**: who is missing or rare, and whose judgement made the labels? "
                 "A model trained mostly on one group works worse for the others: the *Gender Shades* "
                 "study (Buolamwini & Gebru, 2018) found commercial face-analysis systems far less "
                 "accurate for darker-skinned women than for lighter-skinned men. Labels copied from "
                 "past decisions (loans, hiring) teach the model to repeat them.\n"
                 "- **Fairness across groups**: measure it rather than assume it, by comparing error "
                 "rates (recall, false positives) group by group. Common definitions, such as equal "
                 "error rates or equal rates of positive decisions, generally cannot all hold at once, "
                 "so which one matters is a decision people must make and justify.\n"
                 "- **Accountability**: a person or organisation answers for what the model decides, "
                 "can explain it to those affected, and offers a way to contest it. Document the data "
                 "and the model's intended use and limits: *Datasheets for Datasets* (Gebru et al.) and "
                 "*Model Cards* (Mitchell et al., 2019) are widely used templates.\n\n"
                 "A first check in this app: the Evaluate page's per-class precision, recall and F1 and "
                 "its confusion matrix show whether some classes are served much worse than others, and "
                 "its Explain tab shows whether the model relies on something it should not (a "
                 "background, a watermark). For groups that are not classes (say, age bands in a "
                 "table), compare the downloaded test predictions group by group."),
               _("ethics, ethical, fairness, fair, bias, discrimination, accountability, responsible, "
                 "model card, datasheet"),
               (("evaluate", _("Evaluate")), ("data", _("Explore data")))),
        # --- (b) practical ------------------------------------------------------------------------------
        _entry("dataset-offline", "practical",
               _("Why does a dataset download fail offline, and where do I put the file?"),
               _("MNIST, Fashion-MNIST and CIFAR are downloaded by Keras the first time and then read "
                 "from its cache, `~/.keras/datasets/` (or `$KERAS_HOME/datasets/`). Without network "
                 "the download fails; fetch the files on another machine and copy them into the "
                 "cache:\n\n"
                 "- **MNIST**: `mnist.npz` directly in `~/.keras/datasets/`;\n"
                 "- **Fashion-MNIST**: the four `.gz` files (`train-images-idx3-ubyte.gz`, "
                 "`train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`, "
                 "`t10k-labels-idx1-ubyte.gz`), unextracted, in `~/.keras/datasets/fashion-mnist/`;\n"
                 "- **CIFAR-10**: extract `cifar-10-python.tar.gz` and put its `cifar-10-batches-py/` "
                 "folder in `~/.keras/datasets/` (Keras 3 itself uses "
                 "`cifar-10-batches-py-target/cifar-10-batches-py/`; both work);\n"
                 "- **CIFAR-100**: likewise the `cifar-100-python/` folder from "
                 "`cifar-100-python.tar.gz`.\n\n"
                 "The Data page says which files are missing and where. The scikit-learn datasets "
                 "(digits, iris, wine, breast cancer) are bundled and always work offline."),
               _("download, offline, network, cache, mnist, fashion, cifar, keras_home, proxy"),
               (("data", _("Explore data")),)),
        _entry("optimizers", "practical", _("SGD, Adam or AdamW: which optimizer should I use?"),
               _("- **SGD** moves each weight by `learning rate × gradient`; with momentum it keeps a "
                 "running direction. Simple and often the best at the end of long, well-tuned training, "
                 "but sensitive to the learning rate.\n"
                 "- **Adam** keeps running averages of each weight's gradient and squared gradient and "
                 "scales every step by them, so each weight gets its own step size. It works well out "
                 "of the box (learning rate around 1e-3) — the article's CNN uses it.\n"
                 "- **AdamW** is Adam with *decoupled* weight decay: it shrinks weights directly "
                 "instead of adding an L2 term to the gradient (which Adam's scaling would distort). "
                 "Prefer it when you want regularisation, as in most transformer training.\n\n"
                 "See one SGD step worked out by hand on the Backpropagation page."),
               _("sgd, adam, adamw, momentum, weight decay, optimiser, rmsprop"),
               (("train", _("Train")), ("backprop", _("Backpropagation")))),
        _entry("fine-tuning", "practical", _("What are transfer learning and fine-tuning, and how do I try them here?"),
               _("**Transfer learning** reuses a network trained on a large dataset (here MobileNetV2, trained "
                 "on ImageNet's 1.28 million photos) as a feature extractor: its early layers detect edges, "
                 "colours and textures that most images share (Yosinski et al., 2014, *How transferable are "
                 "features in deep neural networks?*), so only a new classifier head has to learn from your "
                 "data. **Fine-tuning** then adapts the pre-trained layers themselves: the article's pre-train "
                 "→ fine-tune. The recipe of the Keras guide *Transfer learning & fine-tuning*, which the app "
                 "follows:\n\n"
                 "1. Train the new head with the backbone **frozen**: a head that starts from random weights "
                 "sends large gradients back, which would wreck the pre-trained features.\n"
                 "2. **Unfreeze the top layers** of the backbone (the most task-specific ones) and train on at "
                 "a **much lower learning rate** (for example 10× lower), so the pre-trained weights move only "
                 "a little.\n"
                 "3. Keep the backbone's **BatchNormalization layers frozen**, so the statistics learned in "
                 "pre-training are not overwritten by your small batches.\n\n"
                 "In Keras Lab: choose the **Transfer learning** preset on Build a model; on Train, set "
                 "**Fine-tuning epochs**, how many top backbone layers to unfreeze and the learning-rate "
                 "factor, and leave **Also train the frozen-only run** on: it queues the same model with the "
                 "backbone frozen for as many epochs. Compare runs then overlays both, a dotted line marking "
                 "where fine-tuning starts, and shows whether it paid off on the test set. Fine-tuning helps "
                 "most when your images differ from ImageNet's photos and there are enough of them; on a few "
                 "hundred it can start overfitting within an epoch or two, so watch the validation curve.\n\n"
                 "The ImageNet weights are downloaded once (about 2 MB for α = 0.35). Without a network the "
                 "backbone starts from random weights and the app says so: then neither phase has "
                 "pre-trained features to build on."),
               _("transfer learning, fine-tuning, fine tune, finetune, pre-trained, pretrained, backbone, "
                 "mobilenet, freeze, frozen, unfreeze, imagenet"),
               (("model", _("Build a model")), ("train", _("Train")), ("runs", _("Compare runs")))),
        _entry("confusion-matrix", "practical", _("How do I read a confusion matrix?"),
               _("Rows are the true classes, columns the predicted classes; cell (i, j) counts test "
                 "samples of class i predicted as j. The diagonal holds the correct predictions. A "
                 "bright off-diagonal cell is a pair the model confuses (on CIFAR-10 typically cat ↔ "
                 "dog). Normalising each row gives each class's **recall**; normalising each column "
                 "gives its **precision**; F1 is their harmonic mean."),
               _("confusion, precision, recall, f1, matrix, misclassified"),
               (("evaluate", _("Evaluate")),)),
        _entry("over-vs-underfitting", "practical",
               _("What is the difference between over- and under-fitting?"),
               _("Compare the training and validation curves. **Underfitting**: both losses stay high — "
                 "the model is too small, too constrained or not trained long enough. **Overfitting**: "
                 "training loss keeps falling while validation loss turns up — the model memorises the "
                 "training set. The goal is the epoch where validation loss is lowest. Details and "
                 "remedies are in the two diagnostics answers."),
               _("overfit, underfit, generalisation, generalization, bias variance, validation"),
               (("train", _("Train")), ("runs", _("Compare runs")))),
        _entry("batch-size-learning-rate", "practical", _("What do batch size and learning rate do?"),
               _("The **learning rate** is the step size of every update (θ ← θ − η·gradient): too "
                 "large and the loss jumps around or explodes, too small and training crawls. The "
                 "**batch size** is how many samples each gradient is averaged over: larger batches "
                 "give smoother gradients and faster epochs on parallel hardware but fewer updates per "
                 "epoch, and often need a larger learning rate; small batches are noisier, which can "
                 "even help generalisation. Change one at a time and compare the runs."),
               _("batch, learning rate, lr, step size, hyperparameter, tuning"),
               (("train", _("Train")), ("backprop", _("Backpropagation")), ("runs", _("Compare runs")))),
        _entry("gpu", "practical", _("Can I train on a GPU?"),
               _("Keras Lab uses whatever TensorFlow finds. The default install is CPU-only, which is "
                 "plenty for the built-in datasets and small CNNs. For an NVIDIA GPU on Linux install "
                 "`tensorflow[and-cuda]` in the same environment; `python -c \"import tensorflow as tf; "
                 "print(tf.config.list_physical_devices('GPU'))\"` should then list it, and training "
                 "uses it without any change here (with several GPUs it mirrors the model over all of "
                 "them; `KERAS_LAB_DEVICES` chooses).\n\n"
                 "- **Windows**: TensorFlow 2.10 was the last release with GPU support on native "
                 "Windows (TensorFlow's release notes and install guide). Newer versions use the GPU "
                 "only inside **WSL2**: install Ubuntu in WSL2 and follow the Linux steps there.\n"
                 "- **macOS**: TensorFlow has no official GPU support; it trains on the CPU.\n"
                 "- **Python version**: the article's Python 3.8 environment cannot install current "
                 "TensorFlow. TensorFlow 2.13 was the last release for Python 3.8; TensorFlow 2.21, "
                 "which this app pins, needs Python 3.10 or newer, and Keras 3.15 needs 3.11 or newer. "
                 "Create a fresh environment with Python 3.11 to 3.13 and install `requirements.txt` "
                 "into it.\n\n"
                 "Streamlit Community Cloud has no GPU."),
               _("gpu, cuda, nvidia, accelerator, speed, cpu, windows, wsl, wsl2, macos, python 3.8, "
                 "python version, install"),
               (("train", _("Train")),)),
        _entry("deploy", "practical", _("How do I deploy Keras Lab to Streamlit Community Cloud?"),
               _("Push the repository to GitHub, then on share.streamlit.io choose *Create app*, pick "
                 "the repository, branch and `app.py`. Under **Advanced settings** choose a Python "
                 "version from 3.11 to 3.13 (it cannot be changed later without redeploying). Cloud "
                 "installs the packages listed in `requirements.txt`. The free tier has about 2.7 GB of "
                 "memory and no GPU, and its disk is not permanent: download runs you want to keep."),
               _("streamlit cloud, community cloud, deploy, hosting, share, requirements.txt, python "
                 "version"),
               (("runs", _("Compare runs")),)),
        _entry("runs-storage", "practical", _("Where are my runs stored?"),
               _("Each run is a folder `runs/<run_id>/` under the working directory, holding "
                 "`config.json` (everything needed to rebuild it), `metrics.jsonl`, `status.json`, "
                 "`model.keras`, `predictions.npz` and a `tensorboard/` folder of event files "
                 "(`tensorboard --logdir runs` shows every run; TensorFlow 2.21 no longer installs "
                 "TensorBoard, so `pip install tensorboard` first). Set the `KERAS_LAB_RUNS` "
                 "environment variable to keep them elsewhere. Compare, download and delete them on the "
                 "Compare runs page."),
               _("runs, storage, folder, directory, keras_lab_runs, disk, save, model.keras"),
               (("runs", _("Compare runs")),)),
        _entry("workspace", "practical", _("On a shared server, who can see my runs?"),
               _("On a shared deployment (such as Community Cloud) your runs live in your own "
                 "workspace: other visitors cannot list, open, evaluate, stop, delete or download them, "
                 "not even with a link to one of them. Without signing in, the workspace is the secret "
                 "link shown in the sidebar under **Your workspace** (the `?ws=` part of the address): "
                 "keep it to come back to your runs, and share it only with people who may see, stop "
                 "and delete them. When the app offers **Sign in**, your runs belong to your account "
                 "instead, on any device. Each workspace may have a few runs queued or training at a "
                 "time. On your own computer there are no workspaces: the lab and its runs folder are "
                 "yours."),
               _("workspace, private, privacy, share, link, ws, sign in, login, account, others, "
                 "visitors, shared"),
               (("runs", _("Compare runs")),)),
        _entry("further-reading", "practical", _("What should I read next?"),
               _("Free resources that go further than this app, roughly from the most practical:\n\n"
                 "- **The Keras developer guides and code examples** (keras.io): the official how-tos "
                 "for everything used here (the functional API, training, callbacks, transfer learning) "
                 "and many complete examples.\n"
                 "- **Dive into Deep Learning** (Zhang, Lipton, Li and Smola; d2l.ai): a free, runnable "
                 "textbook from linear regression to transformers, with code in PyTorch, TensorFlow, "
                 "JAX and MXNet, with a Chinese edition (zh.d2l.ai).\n"
                 "- **Stanford CS231n course notes** (Deep Learning for Computer Vision; "
                 "cs231n.github.io): clear notes on backpropagation, CNNs, training tips and "
                 "visualising what networks learn (saliency maps included).\n"
                 "- **Deep Learning** (Goodfellow, Bengio and Courville; deeplearningbook.org, free to "
                 "read online): the theory, in depth.\n\n"
                 "And the book written for exactly this stack: **Deep Learning with Python** by "
                 "François Chollet, the creator of Keras (Manning)."),
               _("read, reading, learn more, next, book, course, tutorial, resources, d2l, cs231n, "
                 "keras.io, chollet"),
               (("backprop", _("Backpropagation")), ("model", _("Build a model")))),
        # --- diagnostics the Evaluate page links to ----------------------------------------------------
        _entry("overfitting", "diagnostics",
               _("Overfitting: validation loss rises while training loss falls"),
               _("The model is learning the training set by heart. Remedies, roughly in order: stop at "
                 "the best validation epoch (early stopping), get more data or use data augmentation, "
                 "add dropout or weight decay (AdamW), or use a smaller model. Check the fix by "
                 "comparing the runs' validation curves."),
               _("overfit, memorise, memorize, generalisation, dropout, early stopping, augmentation, "
                 "regularisation, regularization"),
               (("train", _("Train")), ("runs", _("Compare runs")))),
        _entry("underfitting", "diagnostics", _("Underfitting: training and validation loss both stay high"),
               _("The model cannot fit even the training data. Train longer, give it more capacity "
                 "(more filters, units or layers), lower the regularisation, or raise a learning rate "
                 "that is too small. Also check the data: shuffled labels or unscaled features look "
                 "like underfitting."),
               _("underfit, high bias, capacity, too simple"),
               (("model", _("Build a model")), ("train", _("Train")))),
        _entry("divergence", "diagnostics", _("Divergence: the loss became NaN or infinite"),
               _("An update was so large that weights overflowed, and every later number is NaN. The "
                 "usual cause is a learning rate that is too high; also check for unscaled inputs "
                 "(pixel values 0–255 instead of 0–1) and labels outside the expected range. Lower the "
                 "learning rate by 10×. Keras Lab stops a run as *diverged* as soon as the loss is NaN."),
               _("nan, inf, infinite, diverged, exploded, terminateonnan, nan loss"),
               (("train", _("Train")),)),
        _entry("learning-rate-too-high", "diagnostics",
               _("Learning rate too high: the loss jumps around or grows"),
               _("Each step overshoots the minimum, so the loss oscillates, plateaus high or climbs "
                 "until it is NaN. Divide the learning rate by 3 to 10, or choose the *reduce on "
                 "plateau* learning-rate schedule on the Train page, which lowers it when the monitored "
                 "metric stalls.\n\n"
                 "To watch it happen on the Backpropagation page: press *Article's example*, set "
                 "*Output and loss* to **linear output + mean squared error**, set the learning rate to "
                 "**10** and press *Step* a few times. The loss goes 7.5 → 3,025 → 1.09 million → 394 "
                 "million, 361 times larger with every step: each update overshoots so far that the "
                 "error ŷ − y changes sign and grows 19-fold (19² = 361). At learning rate 0.1 the same "
                 "network's loss falls instead. (The default sigmoid output with cross-entropy does not "
                 "blow up at rate 10: its output error ŷ − y stays between −1 and 1, and from the "
                 "article's example the loss simply drops to 7·10⁻⁶ after one step.)"),
               _("learning rate, lr, oscillating, unstable, overshoot, spiky"),
               (("train", _("Train")), ("backprop", _("Backpropagation")))),
        _entry("learning-rate-too-low", "diagnostics", _("Learning rate too low: the loss falls very slowly"),
               _("Training creeps along a nearly straight, gently sloping curve and stops before it has "
                 "converged. Raise the learning rate by 3 to 10 (for Adam, 1e-3 is a good start), or "
                 "train for more epochs."),
               _("learning rate, lr, slow, plateau, converge, stuck"),
               (("train", _("Train")),)),
        _entry("class-imbalance", "diagnostics", _("Class imbalance: some classes have far fewer samples"),
               _("A model can score high accuracy by ignoring a rare class. Look at per-class recall "
                 "and the confusion matrix rather than accuracy, weigh the classes (*Class weights: "
                 "balanced* on the Train page) or resample the data before uploading it, and report "
                 "macro-averaged F1. The Data page shows the class balance."),
               _("imbalance, imbalanced, rare class, class weight, minority, skewed, macro"),
               (("data", _("Explore data")), ("evaluate", _("Evaluate")))),
        _entry("dead-relu", "diagnostics", _("Dead ReLU units: neurons that output zero for every input"),
               _("A ReLU unit whose net input is negative for every sample outputs 0 and gets a "
                 "gradient of exactly 0, so it never recovers — often after a too-large update pushed "
                 "its bias down. Lower the learning rate, use He initialisation, or try LeakyReLU / ELU "
                 "— on Build a model, a layer's settings offer kernel_initializer he_normal and the "
                 "activations leaky_relu and elu, and a LeakyReLU layer sets its own slope. On the "
                 "Backpropagation page, make a hidden unit's net input negative and see its gradients "
                 "become 0."),
               _("relu, dead, dying relu, zero gradient, leaky relu, inactive"),
               (("backprop", _("Backpropagation")), ("model", _("Build a model")))),
        _entry("vanishing-exploding-gradients", "diagnostics", _("Vanishing or exploding gradients"),
               _("Backpropagation multiplies one factor per layer. With sigmoid or tanh the slope is at "
                 "most 0.25 or 1, so in a deep stack the gradient reaching the first layers can shrink "
                 "to almost nothing (vanishing) and those layers stop learning; large weights can make "
                 "it grow without bound (exploding). Use ReLU-family activations with He initialisation "
                 "and batch normalisation (all on Build a model); very deep networks also rely on "
                 "residual connections and gradient clipping, which this app does not offer. The "
                 "gradient report on the Backpropagation page shows each layer's gradient norm."),
               _("vanishing, exploding, gradient norm, deep, sigmoid, tanh, clipping, batch norm"),
               (("backprop", _("Backpropagation")),)),
    )


def get(entry_id: str) -> FaqEntry:
    """The entry with this id; raises KeyError naming the known ids."""
    by_id = {e.id: e for e in entries()}
    try:
        return by_id[entry_id]
    except KeyError:
        raise KeyError(f"unknown FAQ entry {entry_id!r}; known ids: {', '.join(by_id)}") from None


def faq_link(entry_id: str) -> str:
    """The relative URL of an entry (`/faq?q=<id>`); raises on unknown ids so broken links fail tests."""
    return f"/faq?q={quote(get(entry_id).id)}"


# --- search --------------------------------------------------------------------------------------------
# An entry is found by its texts in every language of the app, whatever the page's language: "过拟合" finds
# the overfitting answer on the English page and "overfitting" finds it on the Chinese one.
# Text and query are cut into the same normalised terms, so "over-fitting", "overfitting", "over fitting",
# "Overfit" and the "over- and under-fitting" of an answer find each other, and "energies" finds "energy":
# - Unicode NFKC (full-width "ＧＰＵ" from a Chinese input method is "GPU"), case folded; hyphen-like
#   dashes and apostrophes unified;
# - a word joined by hyphens or dots ("dp-sgd", "mnist.npz") is a term whole ("dpsgd") and part by part;
#   two neighbouring words are also a term joined ("batch norm" -> "batchnorm"), and a suspended hyphen
#   ("over- and under-fitting") lends its ending ("overfitting");
# - a query term matches a text term that starts with it (so typing "overfit" already finds "overfitting"),
#   or one that shares a light stem with it: plural -s / -es / -ies and -ing (and its doubled consonant);
# - Chinese has no spaces between words, so a run of Chinese characters is indexed as its characters and
#   character bigrams, and a query run is found when all its bigrams are ("过拟合" -> 过拟, 拟合):
#   any word inside a run is found without a segmenter;
# - a whole query that is a term of docs/glossary.csv is also looked for as its translation there, and
#   one that translates an entry's id ranks that entry first, as the id does ("过拟合" -> overfitting).

_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u00ad"} | {"\u2019": "'", "\u2018": "'"})
_WORD = re.compile(r"[^\W_]+(?:[-.][^\W_]+)*")  # alphanumeric runs joined by - or . (apostrophes are gone)
_PARTS = re.compile(r"[^\W_]+")
_SUSPENDED = re.compile(r"([^\W_]+)-\s+(?:and|or|to|&|,)\s+[^\W_]+-([^\W_]+)")
_CHINESE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")  # CJK ideographs


def _stems(term: str) -> set[str]:
    """The term and the bases it may come from, by light English rules; two terms match when these meet.

    "energies" -> {energies, energie, energy}; "sizes" -> {sizes, size, siz}; "fitting" -> {fitting, fitt,
    fit}; "tuning" -> {tuning, tun, tune}. Several candidates instead of one guess, so "size" / "sizes",
    "bias" / "biases" and "fine-tune" / "fine-tuning" all meet.
    """
    out = {term}
    if len(term) > 5 and term.endswith("ing"):
        out |= {base := term[:-3], base + "e"}
        if base[-1] == base[-2]:
            out.add(base[:-1])  # fitting -> fit, stopping -> stop
    if term.endswith("s") and not term.endswith("ss"):
        out.add(term[:-1])
        if term.endswith("es"):
            out.add(term[:-2])
        if term.endswith("ies"):
            out.add(term[:-3] + "y")
    return {t for t in out if len(t) >= 3} or {term}


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().translate(_DASHES)
    text = text.replace("'s ", " ").replace("'", "")
    return _CHINESE.sub(r" \g<0> ", text)  # a run of Chinese is a word of its own, also when it touches "GPU"


def _words(text: str) -> list[list[str]]:
    """Each word of `text` as its parts ("over-fitting" -> ["over", "fitting"]; a Chinese run is one part)."""
    return [_PARTS.findall(w) for w in _WORD.findall(_normalise(text))]


def _bigrams(chinese: str) -> list[str]:
    """A Chinese run as overlapping pairs of characters, "过拟合" -> ["过拟", "拟合"]; one character alone."""
    return [chinese[i:i + 2] for i in range(len(chinese) - 1)] or [chinese]


def _terms(text: str) -> set[str]:
    """Every term a text can be found by: parts, whole hyphen / dot words, neighbours joined, suspended
    hyphens, and the characters and bigrams of Chinese runs."""
    words = _words(text)
    parts = [p for w in words for p in w]
    latin = [p if not _CHINESE.match(p) else "" for p in parts]  # "" keeps Chinese runs from being joined
    terms = set(parts) | {"".join(w) for w in words}
    terms |= {a + b for a, b in zip(latin, latin[1:], strict=False) if a and b}
    terms |= {a + b for a, b in _SUSPENDED.findall(_normalise(text))}
    terms |= {t for p in parts if _CHINESE.match(p) for t in (*p, *_bigrams(p))}
    return terms


@dataclass(frozen=True)
class _Index:
    terms: frozenset[str]
    stems: frozenset[str]

    @classmethod
    def of(cls, text: str) -> _Index:
        terms = _terms(text)
        return cls(frozenset(terms), frozenset(s for t in terms for s in _stems(t)))

    def has(self, term: str) -> bool:
        return not _stems(term).isdisjoint(self.stems) or any(t.startswith(term) for t in self.terms)


def _query_terms(query: str) -> list[str]:
    """The query's words, each whole ("over-fitting" -> "overfitting", "mnist.npz" -> "mnistnpz"), and a run
    of Chinese as its bigrams."""
    return [t for w in _words(query) for t in (_bigrams(w[0]) if _CHINESE.match(w[0]) else ["".join(w)])]


def _matches(index: _Index, terms: list[str]) -> bool:
    """Every query term is found, or two neighbouring ones are found as one ("over fitting" -> "overfitting")."""
    reach = [True] + [False] * len(terms)  # reach[i]: the first i terms are found
    for i in range(len(terms)):
        if not reach[i]:
            continue
        if index.has(terms[i]):
            reach[i + 1] = True
        if i + 1 < len(terms) and index.has(terms[i] + terms[i + 1]):
            reach[i + 2] = True
    return reach[-1]


@contextmanager
def _speaking(code: str) -> Iterator[None]:
    """`_` in language `code` inside the block; the thread's own language again after it."""
    own = language()
    set_language(code)
    try:
        yield
    finally:
        set_language(own)


@dataclass(frozen=True)
class _Searchable:
    head: _Index  # questions, id and keywords
    full: _Index  # and the answers
    text: str  # all of it, case folded, for queries without a word


@cache
def _searchable() -> dict[str, _Searchable]:
    """Entry id -> its texts in every language, indexed; built once (catalogs do not change at run time)."""
    heads: dict[str, list[str]] = {}
    answers: dict[str, list[str]] = {}
    for code in LANGUAGES:
        with _speaking(code):
            for e in entries():
                heads.setdefault(e.id, [e.id]).extend((e.question, *e.keywords))
                answers.setdefault(e.id, []).append(e.answer)
    out = {}
    for entry_id, head in heads.items():
        text = " ".join((*head, *answers[entry_id]))
        out[entry_id] = _Searchable(_Index.of(" ".join(head)), _Index.of(text), text.casefold())
    return out


@cache
def _glossary() -> dict[str, frozenset[str]]:
    """A term of docs/glossary.csv in either language (as query terms, joined) -> its translations."""
    out: dict[str, set[str]] = {}
    with _GLOSSARY.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if not (row["en"] and row["zh"]):  # a row still being written
                continue
            out.setdefault(" ".join(_query_terms(row["en"])), set()).add(row["zh"])
            out.setdefault(" ".join(_query_terms(row["zh"])), set()).add(row["en"])
    return {term: frozenset(translations) for term, translations in out.items()}


def search(query: str | None) -> list[FaqEntry]:
    """Entries that contain every word of the query, normalised (see above); an empty query returns all.

    An exact id (or its glossary translation) comes first, then matches of the query itself in the question,
    id or keywords, then the rest. A query without a letter, digit or Chinese character (say "++") is looked
    for as it is.
    """
    q = (query or "").strip()
    shown = entries()
    if not q:
        return list(shown)
    searchable = _searchable()
    terms = _query_terms(q)
    if not terms:
        folded = q.casefold()
        return [e for e in shown if folded in searchable[e.id].text]
    translations = _glossary().get(" ".join(terms), frozenset())
    alternatives = [terms, *(_query_terms(t) for t in translations)]
    ids = {unicodedata.normalize("NFKC", q).casefold()} | {re.sub(r"\s+", "-", t.casefold()) for t in translations}

    def rank(e: FaqEntry) -> int | None:
        s = searchable[e.id]
        if not any(_matches(s.full, t) for t in alternatives):
            return None
        if e.id in ids:
            return 0
        return 1 if _matches(s.head, terms) else 2

    ranked = [(r, e) for e in shown if (r := rank(e)) is not None]
    return [e for _r, e in sorted(ranked, key=lambda hit: hit[0])]  # stable: the FAQ's order within a rank


def by_group(found: list[FaqEntry]) -> dict[str, list[FaqEntry]]:
    """Entries bucketed by group, each keeping the order it has in `found`, empty groups left out.

    Groups come in the order of their first entry: the FAQ's own order for every entry, and for search
    results (best match first) the group of the best match first, so "over-fitting" does not open with an
    answer that merely mentions overfitting.
    """
    out: dict[str, list[FaqEntry]] = {}
    for e in found:
        out.setdefault(e.group, []).append(e)
    return out
