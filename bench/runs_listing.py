"""How long Compare runs takes to list many runs (budget: 1,000 runs ≤ 1 s, 10,000 runs ≤ 3 s).

Sweeps make hundreds of runs. This generates N runs in a temporary run store, in the files the run store
writes (a few written through `RunStore` itself: config, metrics with epoch and batch lines, status,
predictions; the rest copies of them under fresh run ids, with their settings varied), then times what the
Runs page does on the server before it can draw its table:

- `RunStore.list_runs()`: every run's config.json and status.json;
- the table of every run (`ui.runs.cached_runs_table`: identity, status, settings; no metrics);
- the metrics of the rows shown (`ui.runs.with_metrics` of one page, `ui.runs.PAGE_ROWS` rows);
- and, for the whole picture, the Runs page's whole script under Streamlit's AppTest (every widget too:
  filters, the table of one page, the run picker with every run, cross-validation), in a process of its own.

Each round runs in a fresh Python process: "cold" is the first view after the server started (nothing
read or cached yet), "rerun" the same again in that process (a click on the page). Printed: the median of
--rounds rounds, wall and CPU seconds (on a busy machine the CPU time moves less), and the page's wall
time against the budget.

    .venv/bin/python bench/runs_listing.py [--runs 1000 10000] [--rounds 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUDGET_S = {1_000: 1.0, 10_000: 3.0}
_TEMPLATES = 24  # runs written through RunStore; the others are copies of them
_STATES = ("completed", "completed", "completed", "pruned", "stopped", "failed", "diverged", "completed")


def _write_templates(store, n: int) -> list[str]:
    """Runs written by the store itself, like a sweep's trials: real config, metrics, status, predictions."""
    from core.datasets import load_builtin, split_dataset
    from core.jobs import TrainRequest, run_config
    from core.specs import preset
    from core.training import TrainConfig

    ds = load_builtin("digits")
    split = split_dataset(ds, seed=0)
    rng = np.random.default_rng(0)
    run_ids = []
    for i in range(n):
        rate = float(10 ** rng.uniform(-4, -1))
        epochs = int(rng.integers(5, 21))
        config = run_config(TrainRequest(ds, preset("Small CNN", ds), TrainConfig(learning_rate=rate, epochs=epochs),
                                         group="sweep:lr-bench", label=f"trial {i}",
                                         trial={"study": "lr-bench", "number": i, "params": {"learning_rate": rate}}))
        run_id = store.create_run(config)
        for epoch in range(1, epochs + 1):
            for batch in (10, 20):
                store.append_metrics(run_id, {"kind": "batch", "epoch": epoch, "batch": batch, "step": epoch * 40 + batch,
                                              "loss": 2.0 / epoch, "accuracy": 0.5})
            store.append_metrics(run_id, {"kind": "epoch", "epoch": epoch, "loss": 2.0 / epoch,
                                          "accuracy": 1 - 0.5 / epoch, "val_loss": 2.1 / epoch,
                                          "val_accuracy": 1 - 0.55 / epoch, "lr": rate, "time": 1.7 * epoch,
                                          "samples_per_s": 900.0})
        probs = rng.dirichlet(np.ones(ds.n_classes), size=len(split.y_test)).astype(np.float32)
        store.save_predictions(run_id, probs=probs, y_true=np.asarray(split.y_test, dtype=np.int64),
                               test_idx=np.asarray(split.test_idx, dtype=np.int64), test_loss=np.float32(0.4),
                               test_accuracy=np.float32(0.9))
        store.write_status(run_id, _STATES[i % len(_STATES)], f"{epochs} epochs")
        run_ids.append(run_id)
    return run_ids


def make_store(root: Path, n: int):
    """A run store with n runs: templates written by RunStore, then copies under new ids (newest first)."""
    from core.runs import RunStore

    store = RunStore(root)
    templates = _write_templates(store, min(n, _TEMPLATES))
    start = time.time() - n  # one run a second, so the ids are distinct and sort like real ones
    for i in range(n - len(templates)):
        source = store.run_dir(templates[i % len(templates)])
        stamp = start + i
        run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(stamp))}-{i:06x}"
        folder = root / run_id
        shutil.copytree(source, folder)
        config = json.loads((folder / "config.json").read_text())
        config.update(run_id=run_id, created=stamp, label=f"trial {i + len(templates)}")
        config["training"]["learning_rate"] = float(10 ** -(1 + (i % 300) / 100))
        (folder / "config.json").write_text(json.dumps(config, indent=2))
    return store


def _one_round(root: Path) -> dict[str, list[float]]:
    """Cold, then again in the same process (this runs in a fresh process for each round): {figure: [wall
    seconds, CPU seconds of this process]}."""
    from core.runs import RunStore
    from ui.runs import PAGE_ROWS, cached_runs_table, with_metrics

    store = RunStore(root)
    out = {}
    for when in ("cold", "rerun"):
        marks = [(time.perf_counter(), time.process_time())]
        infos = store.list_runs()
        marks.append((time.perf_counter(), time.process_time()))
        table = cached_runs_table(store, infos)
        marks.append((time.perf_counter(), time.process_time()))
        with_metrics(store, table.iloc[:PAGE_ROWS])
        marks.append((time.perf_counter(), time.process_time()))
        for name, (a, b) in {"list": (0, 1), "table": (1, 2), f"metrics of {PAGE_ROWS} rows": (2, 3),
                             "page": (0, 3)}.items():
            out[f"{name}, {when}"] = [marks[b][0] - marks[a][0], marks[b][1] - marks[a][1]]
    assert len(infos) == len(table), (len(infos), len(table))
    return out


def _page_round(root: Path) -> dict[str, list[float]]:
    """The Runs page's whole script under AppTest: its first run in this process, then a rerun."""
    from streamlit.testing.v1 import AppTest

    os.environ["KERAS_LAB_RUNS"] = str(root)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    at.switch_page("pages/runs.py")
    out = {}
    for when in ("cold", "rerun"):
        wall, cpu = time.perf_counter(), time.process_time()
        at.run()
        out[f"whole page script, {when}"] = [time.perf_counter() - wall, time.process_time() - cpu]
        assert not at.exception, at.exception
    return out


def measure(root: Path, rounds: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of each figure over rounds, each in a fresh process."""
    figures: dict[str, list[list[float]]] = {}
    for _ in range(rounds):
        for what in ("--round", "--page-round"):
            child = subprocess.run([sys.executable, __file__, what, str(root)], capture_output=True, text=True,
                                   cwd=ROOT, check=True)
            for name, seconds in json.loads(child.stdout.strip().splitlines()[-1]).items():
                figures.setdefault(name, []).append(seconds)
    return {name: (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
            for name, values in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=sorted(BUDGET_S))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the stores in this folder and leave them there")
    parser.add_argument("--round", type=Path, help=argparse.SUPPRESS)  # one round on this store (child process)
    parser.add_argument("--page-round", type=Path, help=argparse.SUPPRESS)  # the page under AppTest (child)
    args = parser.parse_args()
    if args.round or args.page_round:
        logging.disable(logging.WARNING)  # st.cache_data outside a server says so on every call
        print(json.dumps(_one_round(args.round) if args.round else _page_round(args.page_round)))
        return
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load averages {load} on {os.cpu_count()} cores; median of {args.rounds} rounds, each in a fresh process")
    base = args.keep or Path(tempfile.mkdtemp(prefix="runs-listing-"))
    try:
        for n in args.runs:
            root = base / f"runs-{n}"
            if not root.is_dir():
                start = time.perf_counter()
                make_store(root, n)
                print(f"{n:,} runs written in {time.perf_counter() - start:.1f} s ({root})")
            budget = BUDGET_S.get(n)
            for name, (wall, cpu) in measure(root, args.rounds).items():
                ratio = f"  {wall / budget:.2f}× the {budget:g} s budget" if budget and "page" in name[:12] else ""
                print(f"  {n:>6,} runs  {name:<28} {wall:7.3f} s wall {cpu:7.3f} s CPU{ratio}")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
