"""A sweep through the app vs the same trials as plain fits (issue 14 item 7; goal <= 1.05x), and the epochs
a pruner saves on a study where half the trials are hopeless.

1. Overhead, at two trial sizes from one invocation: tiny trials (--epochs, 6 by default: ~1.3-1.6 s of fit
   each, where any fixed cost per trial shows) and realistic ones (--long-epochs, 30 by default: ~6-7 s
   each). Rounds of (sweep, plain fits) alternate, so a change of load on a shared machine hits both; medians.
   A grid over (optimizer, learning rate) on the 8x8 digits with the Small CNN preset, N trials of E epochs.
   "plain": in this (warm) process, for each grid point, build the same model
   (core.sweeps.apply_params -> core.models.build_model), compile with the same optimizer and rate and
   `fit` on the app's split (seed 0), `evaluate` on the test part. "app": the same grid as a sweep --
   core.sweeps.create_study + SweepDriver on a JobManager with the app's default process runner (each
   trial a run: the worker splits, trains with the live-progress and TensorBoard callbacks, evaluates,
   predicts, saves the model and predictions; the driver reports each epoch to Optuna's journal file). Wall
   time from the first submit to the last tell, vs the sum of the plain fits. Pruning is off here (same work
   in both). Also printed: the training processes the sweep used (one for all trials of a sweep now).
2. Pruning. The same grid with learning rates from 1e-5 (hopeless in E epochs) to 1e-2, median pruner:
   epochs run / epochs asked, and the wall time against the unpruned sweep of part 1's tiny size.

    .venv/bin/python bench/sweep_overhead.py [--epochs 6 --rounds 3] [--long-epochs 30 --long-rounds 1]  (~5 min)
"""

from __future__ import annotations

import argparse
import os
import statistics
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
    with manager._cond:  # noqa: SLF001 - the worker imports TensorFlow before the clock starts, as in the app
        manager._start_workers()  # noqa: SLF001
    time.sleep(1)
    assert manager._runners[0]._child.wait_ready(300)  # noqa: SLF001
    pids: set[int] = set()
    start = time.perf_counter()
    driver = SweepDriver(manager, storage, name, dataset).start()
    while driver.running:
        pids.update(manager.training_pids())
        driver.join(0.05)
    wall = time.perf_counter() - start
    manager.shutdown()
    assert driver.error is None, driver.error
    trials = driver.study.get_trials(deepcopy=False)
    states = {manager.store.read_status(t.user_attrs["run_id"])["state"] for t in trials}
    assert states <= {"completed", "pruned"}, states
    epochs = sum(len(t.intermediate_values) for t in trials)
    return wall, trials, epochs, len(pids)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6, help="epochs of a tiny trial")
    parser.add_argument("--long-epochs", type=int, default=30, help="epochs of a realistic trial; 0: skip")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (sweep, plain fits) for the tiny trials")
    parser.add_argument("--long-rounds", type=int, default=1, help="rounds for the realistic trials")
    args = parser.parse_args()
    dataset = load_builtin("digits")
    spec = preset("Small CNN", dataset)
    print(f"load average at start: {os.getloadavg()}")

    grid = SweepPlan((Dimension("optimizer", "choice", choices=("adam", "rmsprop")),
                      Dimension("learning_rate", "float", low=1e-4, high=1e-2, log=True)),
                     sampler="grid", pruner="none", n_trials=8).check()
    points = grid.grid_points()
    walls = {}
    sizes = [(args.epochs, args.rounds), *([(args.long_epochs, args.long_rounds)] if args.long_epochs > 0 else [])]
    for epochs, rounds in sizes:
        config = TrainConfig(epochs=epochs, batch_size=32, seed=0)
        apps, plains, loads = [], [], []
        for r in range(rounds):  # alternating, so a change of load on this shared machine hits both
            with tempfile.TemporaryDirectory() as tmp:
                app, _, _, processes = _sweep(dataset, spec, config, grid, Path(tmp), f"overhead {epochs} {r}")
            apps.append(app)
            plains.append(_plain(dataset, spec, config, points))
            loads.append(os.getloadavg()[0])
        app, plain = statistics.median(apps), statistics.median(plains)
        walls[epochs] = app
        ratios = ", ".join(f"{a / p:.2f}" for a, p in zip(apps, plains, strict=True))
        print(f"\n1. {len(points)} trials x {epochs} epochs, Small CNN on digits; median of {rounds} round(s), load "
              f"{min(loads):.1f}-{max(loads):.1f}")
        print(f"   plain fits in one warm process: {plain:7.1f} s  ({plain / len(points):.2f} s a fit)")
        print(f"   sweep through the app:          {app:7.1f} s  ({app / len(points):.2f} s a trial, "
              f"{(app - plain) / len(points):+.2f} s each; {processes} training process(es))")
        print(f"   ratio app / plain = {app / plain:.2f} (goal <= 1.05); each round: {ratios}")

    config = TrainConfig(epochs=args.epochs, batch_size=32, seed=0)
    hopeless = SweepPlan((Dimension("optimizer", "choice", choices=("adam", "rmsprop")),
                          Dimension("learning_rate", "float", low=1e-5, high=1e-2, log=True)),
                         sampler="grid", pruner="median", n_trials=8).check()
    with tempfile.TemporaryDirectory() as tmp:
        pruned_wall, trials, epochs, _ = _sweep(dataset, spec, config, hopeless, Path(tmp), "pruning")
    asked = len(trials) * args.epochs
    n_pruned = sum(t.state.name == "PRUNED" for t in trials)
    print("\n2. the same grid with rates 1e-5 .. 1e-2 (half hopeless), median pruner")
    print(f"   trials pruned: {n_pruned} of {len(trials)}; epochs run {epochs} of {asked} asked "
          f"({1 - epochs / asked:.0%} saved)")
    app = walls[args.epochs]
    print(f"   wall time {pruned_wall:.1f} s vs {app:.1f} s unpruned: ratio {pruned_wall / app:.2f}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
