"""A sweep through the app vs the same trials as plain fits (issue 14 item 7; goal <= 1.05x), and the epochs
a pruner saves on a study where half the trials are hopeless.

1. Overhead. A grid over (optimizer, learning rate) on the 8x8 digits with the Small CNN preset, N trials
   of E epochs. "plain": in this (warm) process, for each grid point, build the same model
   (core.sweeps.apply_params -> core.models.build_model), compile with the same optimizer and rate and
   `fit` on the app's split (seed 0), `evaluate` on the test part. "app": the same grid as a sweep --
   core.sweeps.create_study + SweepDriver on a JobManager with the app's default process runner (each
   trial a run: the worker splits, trains with the live-progress callback, evaluates, predicts, saves the
   model and predictions; the driver reports each epoch to Optuna's journal file). Wall time from the
   first submit to the last tell, vs the sum of the plain fits. Pruning is off here (same work in both).
2. Pruning. The same grid with learning rates from 1e-5 (hopeless in E epochs) to 1e-2, median pruner:
   epochs run / epochs asked, and the wall time against the unpruned sweep of part 1's size.

    .venv/bin/python bench/sweep_overhead.py [--epochs 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.datasets import load_builtin, split_dataset  # noqa: E402
from core.jobs import JobManager  # noqa: E402
from core.models import build_model  # noqa: E402
from core.runs import RunStore  # noqa: E402
from core.specs import preset  # noqa: E402
from core.sweeps import Dimension, SweepDriver, SweepPlan, apply_params, create_study, open_storage  # noqa: E402
from core.training import TrainConfig  # noqa: E402


def _plain(dataset, spec, config, points) -> float:
    import keras

    split = split_dataset(dataset, seed=config.seed)
    start = time.perf_counter()
    for params in points:
        trial_spec, cfg = apply_params(spec, config, params)
        keras.utils.set_random_seed(cfg.seed)
        model = build_model(trial_spec, dataset)
        optimizer = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
                     "rmsprop": keras.optimizers.RMSprop, "adamw": keras.optimizers.AdamW}[cfg.optimizer]
        model.compile(optimizer=optimizer(learning_rate=cfg.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(split.x_train, split.y_train, validation_data=(split.x_val, split.y_val), epochs=cfg.epochs,
                  batch_size=cfg.batch_size, verbose=0)
        model.evaluate(split.x_test, split.y_test, verbose=0)
    return time.perf_counter() - start


def _sweep(dataset, spec, config, plan, root: Path, name: str):
    storage = open_storage(root / "optuna.journal")
    base = {"dataset": {"name": dataset.name, "subset": None, "seed": 0, "upload": False},
            "spec": spec.to_dict(), "config": config.to_dict()}
    create_study(storage, name, plan, base)
    manager = JobManager(RunStore(root / "runs"), runner="process")
    manager._start_workers()  # noqa: SLF001 - the worker imports TensorFlow before the clock starts, as in the app
    time.sleep(15)
    start = time.perf_counter()
    driver = SweepDriver(manager, storage, name, dataset).start()
    driver.join()
    wall = time.perf_counter() - start
    manager.shutdown()
    assert driver.error is None, driver.error
    trials = driver.study.get_trials(deepcopy=False)
    epochs = sum(len(t.intermediate_values) for t in trials)
    return wall, trials, epochs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    dataset = load_builtin("digits")
    spec = preset("Small CNN", dataset)
    config = TrainConfig(epochs=args.epochs, batch_size=32, seed=0)
    print(f"load average at start: {os.getloadavg()}")

    grid = SweepPlan((Dimension("optimizer", "choice", choices=("adam", "rmsprop")),
                      Dimension("learning_rate", "float", low=1e-4, high=1e-2, log=True)),
                     sampler="grid", pruner="none", n_trials=8).check()
    points = grid.grid_points()
    with tempfile.TemporaryDirectory() as tmp:
        app, trials, _ = _sweep(dataset, spec, config, grid, Path(tmp), "overhead")
    plain = _plain(dataset, spec, config, points)
    print(f"\n1. {len(points)} trials x {args.epochs} epochs, Small CNN on digits")
    print(f"   plain fits in one warm process: {plain:7.1f} s")
    print(f"   sweep through the app:          {app:7.1f} s   ratio app / plain = {app / plain:.2f} (goal <= 1.05)")

    hopeless = SweepPlan((Dimension("optimizer", "choice", choices=("adam", "rmsprop")),
                          Dimension("learning_rate", "float", low=1e-5, high=1e-2, log=True)),
                         sampler="grid", pruner="median", n_trials=8).check()
    with tempfile.TemporaryDirectory() as tmp:
        pruned_wall, trials, epochs = _sweep(dataset, spec, config, hopeless, Path(tmp), "pruning")
    asked = len(trials) * args.epochs
    n_pruned = sum(t.state.name == "PRUNED" for t in trials)
    print("\n2. the same grid with rates 1e-5 .. 1e-2 (half hopeless), median pruner")
    print(f"   trials pruned: {n_pruned} of {len(trials)}; epochs run {epochs} of {asked} asked "
          f"({1 - epochs / asked:.0%} saved)")
    print(f"   wall time {pruned_wall:.1f} s vs {app:.1f} s unpruned: ratio {pruned_wall / app:.2f}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
