"""One worker of tests/core/test_multiworker.py: trains runs under the TF_CONFIG its parent set.

Usage: python tests/core/multiworker_child.py RUNS_DIR RESULT_JSON

Each worker has its own RunStore folder (as two machines would) and calls core.training.train_run as the
job worker does, twice in the same process (the job worker keeps TensorFlow warm): a full run, then a run
that the chief (worker 0) asks to stop after STOP_AFTER_STEP steps, as a click on Stop in its browser would.
RESULT_JSON is rewritten after each run with, per run, what the run recorded and a digest of the final
weights, so the parent can check that the workers trained in sync even if a later run fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

EPOCHS = 2
# per replica; the global batch (32) makes 40 steps an epoch, enough for the engine to run several steps per
# call (Keras' steps_per_execution) unless it keeps one per call under a distribution strategy
BATCH = 16
STOP_AFTER_STEP = 5  # the second run: the chief's Stop request, made when this step has been reported


def main(runs_dir: str, result_path: str) -> None:
    start = time.perf_counter()
    import numpy as np

    from core.datasets import load_builtin, split_dataset
    from core.models import build_model
    from core.runs import RunStore
    from core.specs import preset
    from core.training import LiveProgress, TrainConfig, train_run

    class StopAfter(LiveProgress):
        """Progress whose owner clicks Stop once step `at` has been reported (deterministic, unlike a timer)."""

        def __init__(self, epochs: int, at: int) -> None:
            super().__init__(epochs)
            self.at = at

        def add_batch(self, step: int, loss: float, **values) -> None:
            super().add_batch(step, loss, **values)
            if step >= self.at and not self.stop_event.is_set():  # a call of several steps may jump past `at`
                self.request_stop()

    chief = json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 0
    ds = load_builtin("digits")
    split = split_dataset(ds)
    config = TrainConfig(epochs=EPOCHS, batch_size=BATCH)
    store = RunStore(runs_dir)
    built: list = []

    def keep_model(spec, dataset, notes=None):  # the engine's own builder; the model is kept to read its weights
        model = build_model(spec, dataset, notes=notes)
        built.append(model)
        return model

    results = []
    for stop in (False, True):
        run_id = store.create_run({"dataset": {"name": ds.name}, "training": config.to_dict()})
        progress = StopAfter(EPOCHS, STOP_AFTER_STEP) if stop and chief else LiveProgress(EPOCHS)
        out = train_run(store, run_id, dataset=ds, split=split, spec=preset("Small MLP", ds), config=config,
                        progress=progress, build_model=keep_model)
        weights = built[-1].get_weights()
        predictions = store.read_predictions(run_id)
        probs = predictions["probs"]
        results.append({
            "state": out.state,
            "message": out.message,
            "extra": out.extra,
            "strategy": store.read_config(run_id).get("strategy"),
            "epochs": store.read_metrics(run_id),
            "has_model": store.run_info(run_id).has_model,
            "n_train": len(split.y_train),
            "n_test": len(split.y_test),
            "probs_rows": len(probs),
            "probs_accuracy": float(np.mean(np.argmax(probs, axis=1) == predictions["y_true"])),
            "weights_sha256": hashlib.sha256(b"".join(w.tobytes() for w in weights)).hexdigest(),
            "seconds": round(time.perf_counter() - start, 2),
        })
        Path(result_path).write_text(json.dumps(results, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
