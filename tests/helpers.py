"""Helpers shared by the test suites (and the scripts that drive the real app): waiting for a condition,
opening a page in AppTest, the Transfer learning preset without a download, and a run stuck at chance."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def wait_until(condition: Callable[[], Any], what: str, deadline_s: float = 300.0, *,
               pause: Callable[[float], Any] = time.sleep, every_s: float = 0.05) -> Any:
    """Call condition() until it returns something truthy, and return that; raise TimeoutError naming what
    never happened. `pause(seconds)` waits between calls: time.sleep, or a Playwright page's own wait so
    that its event loop keeps turning. The deadline only bounds a hang: a loaded 2-core machine is slow."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if value := condition():
            return value
        pause(every_s)
    raise TimeoutError(f"gave up waiting for: {what}")


def offline_transfer_spec(dataset: Any) -> Any:
    """The Transfer learning preset on `dataset` with a randomly initialised backbone (weights 'none'): no
    ImageNet download is tried, and building, training and exporting work the same way."""
    from dataclasses import replace

    from core.specs import LayerSpec, preset

    spec = preset("Transfer learning", dataset)
    return replace(spec, layers=tuple(LayerSpec(layer.type, {**layer.params, "weights": "none"})
                                      if layer.type == "Backbone" else layer for layer in spec.layers))


def open_page(page: str, *, timeout: float = 60):
    """An AppTest of the app, switched to `page` ("pages/runs.py") and run; asserts it raised nothing."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def write_stuck_backbone_run(store: Any, label: str | None = None) -> str:
    """A digits run of a frozen MobileNetV2 whose ImageNet weights were unavailable, stuck at ln 10, with the
    final message core.training writes for it. The caller sets KERAS_HOME (the weights file the message
    names) and stubs core.diagnostics.relu_activations: no model is saved."""
    from types import SimpleNamespace

    from core.datasets import load_builtin, split_dataset
    from core.training import _chance_note
    from tests.core.test_diagnostics import STUCK, backbone_config
    from tests.core.test_evaluation import write_run

    run_id = write_run(store, "digits", accuracy=0.1, seed=5, epochs=0, label=label)
    config = backbone_config()
    store.update_config(run_id, model=config["model"], build_notes=config["build_notes"])
    for record in STUCK:
        store.append_metrics(run_id, record)
    digits = load_builtin("digits")
    split = split_dataset(digits, seed=0)
    note = _chance_note(0.1, SimpleNamespace(y_test=split.y_test, y_train=split.y_train, x_test=split.x_test),
                        digits, STUCK, None, config)
    store.write_status(run_id, "completed", f"5 epochs, test accuracy 0.100; {note}; {config['build_notes'][0]}")
    return run_id
