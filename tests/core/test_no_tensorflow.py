"""Pages that need no model never import TensorFlow (~4 s and ~0.8 GB saved per process).

See docs/architecture.md, 'Layers'.

Runs in a fresh subprocess: this pytest process may already hold TensorFlow from other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = textwrap.dedent("""
    import json, sys
    from streamlit.testing.v1 import AppTest

    problems = []
    at = AppTest.from_file("app.py", default_timeout=60).run()
    problems += [f"home: {e.value}" for e in at.exception]
    at.switch_page("pages/data.py").run()
    for name in ("digits", "iris"):
        at.selectbox(key="data_pick").set_value(name).run()
        problems += [f"data/{name}: {e.value}" for e in at.exception]
        problems += [f"data/{name}: error {e.value}" for e in at.error]
        metrics = {m.label: m.value for m in at.metric}
        if not metrics.get("Samples"):
            problems.append(f"data/{name}: no summary shown")
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
    print(json.dumps({"problems": problems, "heavy": heavy[:10]}))
""")


def test_home_and_data_page_do_not_import_tensorflow_or_keras():
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["problems"] == []
    assert result["heavy"] == [], f"imported: {result['heavy']}"
