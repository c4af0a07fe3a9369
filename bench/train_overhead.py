"""Wall time of training through the app's job engine vs plain model.fit (budget <= 1.05x, goal 1.02x).

Same model (the Article CNN adapted to digits), same data and split, same epochs and seed. Rounds
alternate plain / app so drift on a shared machine hits both. "app" is the whole run as a user gets it:
submit -> run folder, config, per-epoch metrics (fsynced), batch lines, test evaluation, model and
predictions saved -- while a poller reads the live snapshot and builds the page's figures once a
second (what the Train page's fragment does). "plain" is what a script would do for the same outputs:
build + compile + fit with validation, then evaluate and predict on the test split and model.save.
Both median and best-of ratios are printed: on a shared machine the best-of is the less noisy one.

    .venv/bin/python bench/train_overhead.py [--epochs 12] [--rounds 4] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.charts_training import batch_figure, history_figure, lr_figure  # noqa: E402
from core.datasets import load_builtin, split_dataset  # noqa: E402
from core.jobs import JobManager, TrainRequest  # noqa: E402
from core.models import build_model  # noqa: E402
from core.runs import RunStore  # noqa: E402
from core.specs import preset  # noqa: E402
from core.training import TrainConfig  # noqa: E402


def plain_fit(dataset, spec, config, out: Path) -> float:
    import keras

    start = time.perf_counter()
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    split = split_dataset(dataset, seed=config.seed, val_fraction=config.val_fraction,
                          test_fraction=config.test_fraction)
    model = build_model(spec, dataset)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    model.fit(split.x_train, split.y_train, batch_size=config.batch_size, epochs=config.epochs, verbose=0,
              validation_data=(split.x_val, split.y_val))
    model.evaluate(split.x_test, split.y_test, batch_size=config.batch_size, verbose=0)
    model.predict(split.x_test, batch_size=config.batch_size, verbose=0)
    model.save(out / "plain.keras")
    return time.perf_counter() - start


def app_fit(manager: JobManager, dataset, spec, config) -> tuple[float, float]:
    """(wall time submit -> final status, worst delay epoch end -> seen by the poller)."""
    start = time.perf_counter()
    run_id = manager.submit(TrainRequest(dataset, spec, config))
    delays: list[float] = []
    figures: list = []
    shown_epochs, next_poll = 0, start
    while True:
        if time.perf_counter() >= next_poll:  # what the page's fragment does once a second
            next_poll += 1.0
            snap = manager.snapshot(run_id)
            if len(snap.records) > len(figures) // 3:  # the page rebuilds epoch charts on a new epoch only
                figures = [history_figure({run_id: snap.records}, "loss"),
                           history_figure({run_id: snap.records}, "accuracy"), lr_figure({run_id: snap.records})]
            for fig in [*figures, batch_figure(snap.batch_losses)]:
                fig.to_json()
            if len(snap.records) > shown_epochs and snap.epoch_ended_at is not None:
                delays.append(time.time() - snap.epoch_ended_at)  # the newest epoch is now on the chart
                shown_epochs = len(snap.records)
        if run_id in manager.active_run_ids():
            time.sleep(0.02)  # a fine check for the end, so the wall time is not rounded up to the poll
            continue
        break
    wall = time.perf_counter() - start
    status = manager.store.read_status(run_id)
    assert status["state"] == "completed", status
    return wall, max(delays) if delays else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    dataset = load_builtin("digits")
    spec = preset("Article CNN", dataset)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=0).validate()
    with tempfile.TemporaryDirectory() as tmp:
        manager = JobManager(RunStore(Path(tmp) / "runs"))
        print(f"{spec.name} on digits, {args.epochs} epochs, batch {args.batch_size}, {args.rounds} rounds")
        plain_fit(dataset, spec, TrainConfig(epochs=1), Path(tmp))  # warm-up: TensorFlow start-up is not overhead
        app_fit(manager, dataset, spec, TrainConfig(epochs=1))
        plain, app, delays, plain_cpu, app_cpu = [], [], [], [], []
        for i in range(args.rounds):
            cpu = time.process_time()
            plain.append(plain_fit(dataset, spec, config, Path(tmp)))
            plain_cpu.append(time.process_time() - cpu)
            cpu = time.process_time()
            wall, delay = app_fit(manager, dataset, spec, config)
            app_cpu.append(time.process_time() - cpu)
            app.append(wall)
            delays.append(delay)
            print(f"round {i + 1}: plain {plain[-1]:.2f} s   app {app[-1]:.2f} s   ratio {app[-1] / plain[-1]:.3f}")
        manager.shutdown()
    ratio = statistics.median(app) / statistics.median(plain)
    print(f"median plain {statistics.median(plain):.2f} s, median app {statistics.median(app):.2f} s")
    print(f"CPU time of the process, median app / median plain: {statistics.median(app_cpu) / statistics.median(plain_cpu):.3f}")
    print(f"overhead ratio (median app / median plain): {ratio:.3f}  (budget 1.05, goal 1.02)")
    print(f"best-of ratio (min app / min plain): {min(app) / min(plain):.3f}; "
          f"median of per-round ratios: {statistics.median(a / p for a, p in zip(app, plain, strict=True)):.3f}")
    print(f"epoch end -> seen by a 1 s poller: worst {max(delays):.2f} s (budget 1.5 s)")


if __name__ == "__main__":
    main()
