"""Same training time, which preset wins on digits: "Stronger CNN" or "Article CNN"?

The Stronger CNN preset (augmentation, BatchNorm, Dropout, global pooling) is meant to beat the Article CNN
in the same training time. Both are built with the app's code (core.specs.preset -> core.models.build_model)
on digits split as the app splits it (core.datasets.split_dataset, seed 0: 70 / 15 / 15), compiled as the
app compiles them (Adam 1e-3, sparse cross-entropy, batch 32, validation every epoch) and trained epoch by
epoch, in one model.fit, until a wall-clock budget is used: a callback stops the fit at the first epoch end
at or past the budget, so each model gets the budget plus at most one epoch (the time actually used is
printed). The clock starts at on_train_begin, so Keras's graph tracing in the first epoch counts as
training time, as it does for a user. Then both are scored on the same test split (270 samples: one
sample is 0.37 points of accuracy, so single seeds are noisy; read the means).

Rounds alternate A B, B A, ... (one weight seed per pair) so a change in machine load hits both presets alike;
load averages are printed at the start and the end. Read the last lines: mean test accuracy of each
preset, the epochs each managed in the budget, and the accuracy ratio (Stronger / Article; > 1 means the
Stronger CNN wins). On a loaded machine fewer epochs fit in the budget than on an idle one.

    .venv/bin/python bench/presets_compare.py [--budget 20] [--seeds 0 1 2 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.datasets import load_builtin, split_dataset  # noqa: E402
from core.models import build_model  # noqa: E402
from core.specs import preset  # noqa: E402

ARTICLE, STRONGER = "Article CNN", "Stronger CNN"


def load_text() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def train_for(name: str, dataset, split, seed: int, budget_s: float, batch_size: int) -> dict:
    """Train preset `name` until `budget_s` of fit time is used (checked at epoch ends); score on test."""
    import keras

    class Budget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()
            self.epochs = 0
            self.val_acc: list[float] = []

        def on_epoch_end(self, epoch, logs=None):
            self.epochs = epoch + 1
            self.val_acc.append(float((logs or {}).get("val_accuracy", float("nan"))))
            self.used = time.perf_counter() - self.start
            if self.used >= budget_s:
                self.model.stop_training = True

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    spec = preset(name, dataset)
    model = build_model(spec, dataset)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    budget = Budget()
    model.fit(split.x_train, split.y_train, batch_size=batch_size, epochs=100_000, verbose=0, shuffle=True,
              validation_data=(split.x_val, split.y_val), callbacks=[budget])
    test = model.evaluate(split.x_test, split.y_test, batch_size=batch_size, verbose=0, return_dict=True)
    return {"name": name, "spec": spec.name, "params": model.count_params(), "seed": seed,
            "epochs": budget.epochs, "used_s": budget.used, "test_acc": float(test["accuracy"]),
            "best_val_acc": max(budget.val_acc)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of training per model and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3],
                        help="weight seeds; the order alternates A B, B A, ...")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    dataset = load_builtin("digits")
    split = split_dataset(dataset, seed=0)
    sizes = split.sizes()
    print(f"digits: train {sizes['train']}, validation {sizes['validation']}, test {sizes['test']}; "
          f"budget {args.budget:g} s per model and seed, Adam 1e-3, batch {args.batch_size}")
    print(f"load average at start: {load_text()}  ({os.cpu_count()} CPUs)")
    train_for(ARTICLE, dataset, split, 0, 0.0, args.batch_size)  # warm-up: TensorFlow start-up is not training
    results: dict[str, list[dict]] = {ARTICLE: [], STRONGER: []}
    order = [ARTICLE, STRONGER]
    for i, seed in enumerate(args.seeds):
        for name in order if i % 2 == 0 else order[::-1]:  # A B, then B A: drift hits both alike
            r = train_for(name, dataset, split, seed, args.budget, args.batch_size)
            results[name].append(r)
            print(f"seed {seed}  {r['spec']:<22} {r['params']:>7,} params  {r['epochs']:>3} epochs in "
                  f"{r['used_s']:5.1f} s ({r['used_s'] / r['epochs']:.2f} s/epoch)  test acc {r['test_acc']:.4f}  "
                  f"best val acc {r['best_val_acc']:.4f}   load {load_text()}")
    print(f"load average at end: {load_text()}")
    mean = {n: statistics.mean(r["test_acc"] for r in rs) for n, rs in results.items()}
    for name, rs in results.items():
        accs = [r["test_acc"] for r in rs]
        print(f"{name:<13} mean test accuracy {mean[name]:.4f} (min {min(accs):.4f}, max {max(accs):.4f})  "
              f"epochs {[r['epochs'] for r in rs]}  "
              f"mean time used {statistics.mean(r['used_s'] for r in rs):.1f} s")
    pairs = list(zip(results[STRONGER], results[ARTICLE], strict=True))
    wins = sum(s["test_acc"] > a["test_acc"] for s, a in pairs)
    ties = sum(s["test_acc"] == a["test_acc"] for s, a in pairs)
    print(f"per seed: Stronger CNN better on {wins}, equal on {ties}, worse on {len(pairs) - wins - ties} "
          f"of {len(pairs)} seeds")
    ratio = mean[STRONGER] / mean[ARTICLE]
    errors = (1 - mean[STRONGER]) / (1 - mean[ARTICLE]) if mean[ARTICLE] < 1 else float("nan")
    winner = STRONGER if mean[STRONGER] > mean[ARTICLE] else ARTICLE if mean[ARTICLE] > mean[STRONGER] else "tie"
    print(f"test accuracy ratio Stronger / Article: {ratio:.4f}; test error ratio: {errors:.2f}; "
          f"winner in the same time: {winner}")


if __name__ == "__main__":
    main()
