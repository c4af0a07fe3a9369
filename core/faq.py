"""The FAQ as data: stable ids other pages link to, grouped entries, and a case-insensitive search.

Content lives here (not in the page) so tests can check every link and every id, and so the Evaluate
diagnostics can point at an answer with `faq_link("overfitting")` and be sure the target exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["ENTRIES", "GROUPS", "FaqEntry", "by_group", "faq_link", "get", "search"]

GROUPS: dict[str, str] = {
    "article": "Questions from the article",
    "practical": "Practical questions",
    "diagnostics": "Training diagnostics",
}


@dataclass(frozen=True)
class FaqEntry:
    """One question and its answer."""

    id: str  # stable anchor and link target: lowercase words joined by '-'
    group: str  # a key of GROUPS
    question: str
    answer: str  # markdown, in the project's own words
    keywords: tuple[str, ...] = ()  # extra search words that may not appear in the text
    links: tuple[tuple[str, str], ...] = ()  # (URL path of a page, as in app.py: "data", label)


_E = FaqEntry
ENTRIES: tuple[FaqEntry, ...] = (
    # --- (a) the article's questions ---------------------------------------------------------------
    _E("data-privacy", "article", "How can personal data stay private when a model is trained on it?",
       "Three layers of protection, usually combined:\n\n"
       "- **Anonymisation** removes or coarsens identifying fields (names, exact dates, rare combinations) "
       "before training. It is necessary but weak on its own: records can often be re-identified by "
       "linking them with other data.\n"
       "- **Federated learning** keeps the data where it is (phones, hospitals). Each site trains on its "
       "own data and sends only weight updates to a server that averages them, so raw records never move.\n"
       "- **Differential privacy** adds calibrated noise (for example to clipped per-example gradients, "
       "as in DP-SGD) so that the trained model barely changes whether or not any one person is in the "
       "data; the privacy budget ε says how much.\n\n"
       "Keras Lab itself trains on your machine: datasets and runs stay in local folders and nothing is "
       "sent anywhere.",
       ("anonymization", "anonymisation", "federated", "differential privacy", "dp-sgd", "gdpr", "personal"),
       (("data", "Explore data"), ("runs", "Compare runs"))),
    _E("energy-cost", "article", "How much energy and compute does training a large model cost?",
       "Training cost grows roughly with *parameters × training tokens*: a large language model needs "
       "thousands of accelerators for weeks, megawatt-hours of electricity and the matching cooling, "
       "water and carbon, and every later fine-tune or answer (inference) adds more. Ways to spend less: "
       "start from a pre-trained model and fine-tune it, use smaller or distilled models, mixed precision, "
       "stop early when validation stops improving, and pick data centres with clean power.\n\n"
       "At Keras Lab's scale the same habits show up in small: compare runs before training longer, and "
       "use early stopping on the Train page.",
       ("energy", "carbon", "compute", "cost", "electricity", "gpu hours", "green"),
       (("train", "Train"), ("runs", "Compare runs"))),
    _E("explainability", "article", "Can we explain why a deep network made a decision?",
       "Only partly. A network is millions of multiplications, not a rule list, so explanations are "
       "approximations: which inputs mattered (saliency maps, SHAP, LIME), which classes are confused, "
       "how the model behaves on slices of the data. Start with the behaviour you can measure. In this "
       "app:\n\n"
       "- the **confusion matrix** and per-class precision / recall on the Evaluate page show *which* "
       "mistakes the model makes, and the error gallery shows the examples;\n"
       "- the **Backpropagation** page shows exactly how each weight's gradient is formed, and the "
       "gradient report shows how strongly each layer of your model is learning;\n"
       "- the **diagnostics** on the Evaluate page name problems such as overfitting or class imbalance "
       "and link to the answers below.",
       ("interpretability", "xai", "black box", "saliency", "shap", "lime", "transparency"),
       (("evaluate", "Evaluate"), ("backprop", "Backpropagation"))),
    _E("healthcare-risks", "article", "What are the risks of using AI in healthcare?",
       "- **Errors with high stakes**: a missed tumour (false negative) and a false alarm have very "
       "different costs, so accuracy alone says little; look at recall and precision per class.\n"
       "- **Bias and shift**: a model trained on one hospital's patients or scanners can fail on another "
       "population; validate on data from where it will be used.\n"
       "- **Privacy** of patient records (see the privacy answer above).\n"
       "- **Over-trust and accountability**: clinicians may follow a confident but wrong model; the "
       "decision and responsibility must stay with a person, and medical software is regulated.\n\n"
       "A model trained here (for example on the breast-cancer dataset) is a learning exercise, not a "
       "diagnostic tool.",
       ("medical", "health", "hospital", "diagnosis", "clinical", "safety", "bias"),
       (("evaluate", "Evaluate"),)),
    # --- (b) practical ------------------------------------------------------------------------------
    _E("dataset-offline", "practical", "Why does a dataset download fail offline, and where do I put the file?",
       "MNIST, Fashion-MNIST and CIFAR are downloaded by Keras the first time and then read from its "
       "cache, `~/.keras/datasets/` (or `$KERAS_HOME/datasets/`). Without network the download fails; "
       "fetch the files on another machine and copy them into the cache:\n\n"
       "- **MNIST**: `mnist.npz` directly in `~/.keras/datasets/`;\n"
       "- **Fashion-MNIST**: the four `.gz` files (`train-images-idx3-ubyte.gz`, "
       "`train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`), "
       "unextracted, in `~/.keras/datasets/fashion-mnist/`;\n"
       "- **CIFAR-10**: extract `cifar-10-python.tar.gz` and put its `cifar-10-batches-py/` folder in "
       "`~/.keras/datasets/` (Keras 3 itself uses `cifar-10-batches-py-target/cifar-10-batches-py/`; "
       "both work);\n"
       "- **CIFAR-100**: likewise the `cifar-100-python/` folder from `cifar-100-python.tar.gz`.\n\n"
       "The Data page says which files are missing and where. The scikit-learn datasets (digits, iris, "
       "wine, breast cancer) are bundled and always work offline.",
       ("download", "offline", "network", "cache", "mnist", "fashion", "cifar", "keras_home", "proxy"),
       (("data", "Explore data"),)),
    _E("optimizers", "practical", "SGD, Adam or AdamW: which optimizer should I use?",
       "- **SGD** moves each weight by `learning rate × gradient`; with momentum it keeps a running "
       "direction. Simple and often the best at the end of long, well-tuned training, but sensitive to "
       "the learning rate.\n"
       "- **Adam** keeps running averages of each weight's gradient and squared gradient and scales every "
       "step by them, so each weight gets its own step size. It works well out of the box (learning rate "
       "around 1e-3) — the article's CNN uses it.\n"
       "- **AdamW** is Adam with *decoupled* weight decay: it shrinks weights directly instead of adding "
       "an L2 term to the gradient (which Adam's scaling would distort). Prefer it when you want "
       "regularisation, as in most transformer training.\n\n"
       "See one SGD step worked out by hand on the Backpropagation page.",
       ("sgd", "adam", "adamw", "momentum", "weight decay", "optimiser", "rmsprop"),
       (("train", "Train"), ("backprop", "Backpropagation"))),
    _E("confusion-matrix", "practical", "How do I read a confusion matrix?",
       "Rows are the true classes, columns the predicted classes; cell (i, j) counts test samples of class "
       "i predicted as j. The diagonal holds the correct predictions. A bright off-diagonal cell is a "
       "pair the model confuses (on CIFAR-10 typically cat ↔ dog). Normalising each row gives each "
       "class's **recall**; normalising each column gives its **precision**; F1 is their harmonic mean.",
       ("confusion", "precision", "recall", "f1", "matrix", "misclassified"),
       (("evaluate", "Evaluate"),)),
    _E("over-vs-underfitting", "practical", "What is the difference between over- and under-fitting?",
       "Compare the training and validation curves. **Underfitting**: both losses stay high — the model "
       "is too small, too constrained or not trained long enough. **Overfitting**: training loss keeps "
       "falling while validation loss turns up — the model memorises the training set. The goal is the "
       "epoch where validation loss is lowest. Details and remedies are in the two diagnostics answers.",
       ("overfit", "underfit", "generalisation", "generalization", "bias variance", "validation"),
       (("train", "Train"), ("runs", "Compare runs"))),
    _E("batch-size-learning-rate", "practical", "What do batch size and learning rate do?",
       "The **learning rate** is the step size of every update (θ ← θ − η·gradient): too large and the "
       "loss jumps around or explodes, too small and training crawls. The **batch size** is how many "
       "samples each gradient is averaged over: larger batches give smoother gradients and faster epochs "
       "on parallel hardware but fewer updates per epoch, and often need a larger learning rate; small "
       "batches are noisier, which can even help generalisation. Change one at a time and compare the "
       "runs.",
       ("batch", "learning rate", "lr", "step size", "hyperparameter", "tuning"),
       (("train", "Train"), ("backprop", "Backpropagation"), ("runs", "Compare runs"))),
    _E("gpu", "practical", "Can I train on a GPU?",
       "Keras Lab uses whatever TensorFlow finds. The default install is CPU-only, which is plenty for "
       "the built-in datasets and small CNNs. For an NVIDIA GPU on Linux install `tensorflow[and-cuda]` "
       "in the same environment; `python -c \"import tensorflow as tf; "
       "print(tf.config.list_physical_devices('GPU'))\"` should then list it, and training uses it "
       "without any change here. Streamlit Community Cloud has no GPU.",
       ("gpu", "cuda", "nvidia", "accelerator", "speed", "cpu"),
       (("train", "Train"),)),
    _E("deploy", "practical", "How do I deploy Keras Lab to Streamlit Community Cloud?",
       "Push the repository to GitHub, then on share.streamlit.io choose *Create app*, pick the repository, "
       "branch and `app.py`. Under **Advanced settings** choose a Python version from 3.11 to 3.13 (it "
       "cannot be changed later without redeploying). Cloud installs the packages listed in "
       "`requirements.txt`. The free tier has about 2.7 GB of memory and no GPU, and its disk is not "
       "permanent: download runs you want to keep.",
       ("streamlit cloud", "community cloud", "deploy", "hosting", "share", "requirements.txt", "python version"),
       (("runs", "Compare runs"),)),
    _E("runs-storage", "practical", "Where are my runs stored?",
       "Each run is a folder `runs/<run_id>/` under the working directory, holding `config.json` (everything "
       "needed to rebuild it), `metrics.jsonl`, `status.json`, `model.keras` and `predictions.npz`. Set the "
       "`KERAS_LAB_RUNS` environment variable to keep them elsewhere. Compare, download and delete them on "
       "the Compare runs page.",
       ("runs", "storage", "folder", "directory", "keras_lab_runs", "disk", "save", "model.keras"),
       (("runs", "Compare runs"),)),
    _E("workspace", "practical", "On a shared server, who can see my runs?",
       "On a shared deployment (such as Community Cloud) your runs live in your own workspace: other visitors "
       "cannot list, open, evaluate, stop, delete or download them, not even with a link to one of them. "
       "Without signing in, the workspace is the secret link shown in the sidebar under **Your workspace** "
       "(the `?ws=` part of the address): keep it to come back to your runs, and share it only with people "
       "who may see, stop and delete them. When the app offers **Sign in**, your runs belong to your account "
       "instead, on any device. Each workspace may have a few runs queued or training at a time. On your own "
       "computer there are no workspaces: the lab and its runs folder are yours.",
       ("workspace", "private", "privacy", "share", "link", "ws", "sign in", "login", "account", "others",
        "visitors", "shared"),
       (("runs", "Compare runs"),)),
    # --- diagnostics the Evaluate page links to ----------------------------------------------------
    _E("overfitting", "diagnostics", "Overfitting: validation loss rises while training loss falls",
       "The model is learning the training set by heart. Remedies, roughly in order: stop at the best "
       "validation epoch (early stopping), get more data or use data augmentation, add dropout or weight "
       "decay (AdamW), or use a smaller model. Check the fix by comparing the runs' validation curves.",
       ("overfit", "memorise", "memorize", "generalisation", "dropout", "early stopping", "augmentation",
        "regularisation", "regularization"),
       (("train", "Train"), ("runs", "Compare runs"))),
    _E("underfitting", "diagnostics", "Underfitting: training and validation loss both stay high",
       "The model cannot fit even the training data. Train longer, give it more capacity (more filters, "
       "units or layers), lower the regularisation, or raise a learning rate that is too small. Also check "
       "the data: shuffled labels or unscaled features look like underfitting.",
       ("underfit", "high bias", "capacity", "too simple"),
       (("model", "Build a model"), ("train", "Train"))),
    _E("divergence", "diagnostics", "Divergence: the loss became NaN or infinite",
       "An update was so large that weights overflowed, and every later number is NaN. The usual cause is "
       "a learning rate that is too high; also check for unscaled inputs (pixel values 0–255 instead of "
       "0–1) and labels outside the expected range. Lower the learning rate by 10×, or clip gradients. "
       "Keras Lab stops a run as *diverged* as soon as the loss is NaN.",
       ("nan", "inf", "infinite", "diverged", "exploded", "terminateonnan", "nan loss"),
       (("train", "Train"),)),
    _E("learning-rate-too-high", "diagnostics", "Learning rate too high: the loss jumps around or grows",
       "Each step overshoots the minimum, so the loss oscillates, plateaus high or climbs until it is NaN. "
       "Divide the learning rate by 3 to 10, or let ReduceLROnPlateau lower it when validation loss stalls. "
       "On the Backpropagation page, set the learning rate to 10 and press Step to watch it happen.",
       ("learning rate", "lr", "oscillating", "unstable", "overshoot", "spiky"),
       (("train", "Train"), ("backprop", "Backpropagation"))),
    _E("learning-rate-too-low", "diagnostics", "Learning rate too low: the loss falls very slowly",
       "Training creeps along a nearly straight, gently sloping curve and stops before it has converged. "
       "Raise the learning rate by 3 to 10 (for Adam, 1e-3 is a good start), or train for more epochs.",
       ("learning rate", "lr", "slow", "plateau", "converge", "stuck"),
       (("train", "Train"),)),
    _E("class-imbalance", "diagnostics", "Class imbalance: some classes have far fewer samples",
       "A model can score high accuracy by ignoring a rare class. Look at per-class recall and the "
       "confusion matrix rather than accuracy, use class weights or resampling, and report macro-averaged "
       "F1. The Data page shows the class balance.",
       ("imbalance", "imbalanced", "rare class", "class weight", "minority", "skewed", "macro"),
       (("data", "Explore data"), ("evaluate", "Evaluate"))),
    _E("dead-relu", "diagnostics", "Dead ReLU units: neurons that output zero for every input",
       "A ReLU unit whose net input is negative for every sample outputs 0 and gets a gradient of exactly "
       "0, so it never recovers — often after a too-large update pushed its bias down. Lower the learning "
       "rate, use He initialisation, or try LeakyReLU / ELU — on Build a model, a layer's settings offer "
       "kernel_initializer he_normal and the activations leaky_relu and elu, and a LeakyReLU layer sets its "
       "own slope. On the Backpropagation page, make a hidden "
       "unit's net input negative and see its gradients become 0.",
       ("relu", "dead", "dying relu", "zero gradient", "leaky relu", "inactive"),
       (("backprop", "Backpropagation"), ("model", "Build a model"))),
    _E("vanishing-exploding-gradients", "diagnostics", "Vanishing or exploding gradients",
       "Backpropagation multiplies one factor per layer. With sigmoid or tanh the slope is at most 0.25 "
       "or 1, so in a deep stack the gradient reaching the first layers can shrink to almost nothing "
       "(vanishing) and those layers stop learning; large weights can make it grow without bound "
       "(exploding). Use ReLU-family activations with He initialisation, batch normalisation, residual "
       "connections, and gradient clipping for explosions. The gradient report on the Backpropagation "
       "page shows each layer's gradient norm.",
       ("vanishing", "exploding", "gradient norm", "deep", "sigmoid", "tanh", "clipping", "batch norm"),
       (("backprop", "Backpropagation"),)),
)

_BY_ID = {e.id: e for e in ENTRIES}


def get(entry_id: str) -> FaqEntry:
    """The entry with this id; raises KeyError naming the known ids."""
    try:
        return _BY_ID[entry_id]
    except KeyError:
        raise KeyError(f"unknown FAQ entry {entry_id!r}; known ids: {', '.join(_BY_ID)}") from None


def faq_link(entry_id: str) -> str:
    """The relative URL of an entry (`/faq?q=<id>`); raises on unknown ids so broken links fail tests."""
    return f"/faq?q={quote(get(entry_id).id)}"


# --- search --------------------------------------------------------------------------------------------
# Text and query are cut into the same normalised terms, so "over-fitting", "overfitting", "over fitting",
# "Overfit" and the "over- and under-fitting" of an answer find each other, and "energies" finds "energy":
# - case folded; hyphen-like dashes and apostrophes unified;
# - a word joined by hyphens or dots ("dp-sgd", "mnist.npz") is a term whole ("dpsgd") and part by part;
#   two neighbouring words are also a term joined ("batch norm" -> "batchnorm"), and a suspended hyphen
#   ("over- and under-fitting") lends its ending ("overfitting");
# - a query term matches a text term that starts with it (so typing "overfit" already finds "overfitting"),
#   or one that shares a light stem with it: plural -s / -es / -ies and -ing (and its doubled consonant).

_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u00ad"} | {"\u2019": "'", "\u2018": "'"})
_WORD = re.compile(r"[^\W_]+(?:[-.][^\W_]+)*")  # alphanumeric runs joined by - or . (apostrophes are gone)
_PARTS = re.compile(r"[^\W_]+")
_SUSPENDED = re.compile(r"([^\W_]+)-\s+(?:and|or|to|&|,)\s+[^\W_]+-([^\W_]+)")


def _stems(term: str) -> set[str]:
    """The term and the bases it may come from, by light English rules; two terms match when these meet.

    "energies" -> {energies, energie, energy}; "sizes" -> {sizes, size, siz}; "fitting" -> {fitting, fitt,
    fit}. Several candidates instead of one guess, so "size" / "sizes" and "bias" / "biases" both meet.
    """
    out = {term}
    if len(term) > 5 and term.endswith("ing"):
        out.add(base := term[:-3])
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
    return text.casefold().translate(_DASHES).replace("'s ", " ").replace("'", "")


def _words(text: str) -> list[list[str]]:
    """Each word of `text` as its parts ("over-fitting" -> ["over", "fitting"])."""
    return [_PARTS.findall(w) for w in _WORD.findall(_normalise(text))]


def _terms(text: str) -> set[str]:
    """Every term a text can be found by: parts, whole hyphen / dot words, neighbours joined, suspended hyphens."""
    words = _words(text)
    parts = [p for w in words for p in w]
    terms = set(parts) | {"".join(w) for w in words}
    terms |= {a + b for a, b in zip(parts, parts[1:], strict=False)}
    terms |= {a + b for a, b in _SUSPENDED.findall(_normalise(text))}
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
    """The query's words, each whole ("over-fitting" -> "overfitting", "mnist.npz" -> "mnistnpz")."""
    return ["".join(w) for w in _words(query)]


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


_INDEX: dict[str, tuple[_Index, _Index]] = {}  # id -> (question, id and keywords; everything), built once


def _index(e: FaqEntry) -> tuple[_Index, _Index]:
    if e.id not in _INDEX:
        head = " ".join((e.id, e.question, *e.keywords))
        _INDEX[e.id] = (_Index.of(head), _Index.of(f"{head} {e.answer}"))
    return _INDEX[e.id]


def search(query: str | None) -> list[FaqEntry]:
    """Entries that contain every word of the query, normalised (see above); an empty query returns all.

    An exact id comes first, then matches in the question, id or keywords, then in the answer only.
    A query without a letter or digit (say "++") is looked for as it is.
    """
    q = (query or "").strip()
    if not q:
        return list(ENTRIES)
    terms = _query_terms(q)
    if not terms:
        folded = q.casefold()
        return [e for e in ENTRIES if folded in " ".join((e.question, e.answer, *e.keywords)).casefold()]
    hits = [e for e in ENTRIES if _matches(_index(e)[1], terms)]

    def rank(e: FaqEntry) -> int:
        if e.id == q.lower():
            return 0
        return 1 if _matches(_index(e)[0], terms) else 2

    return sorted(hits, key=rank)  # stable: keeps the FAQ's order within a rank


def by_group(entries: list[FaqEntry]) -> dict[str, list[FaqEntry]]:
    """Entries bucketed by group, each keeping the order it has in `entries`, empty groups left out.

    Groups come in the order of their first entry: the FAQ's own order for every entry, and for search
    results (best match first) the group of the best match first, so "over-fitting" does not open with an
    answer that merely mentions overfitting.
    """
    out: dict[str, list[FaqEntry]] = {}
    for e in entries:
        out.setdefault(e.group, []).append(e)
    return out
