"""Golden files: a command's JSON as it should be, kept beside the tests.

``assert_golden("drift", value)`` compares ``value`` with ``tests/cli/golden/drift.json``.
After a deliberate change of shape, refresh every golden file with
``POISE_UPDATE_GOLDEN=1 ./dev test tests/cli`` and review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "cli" / "golden"


def assert_golden(name: str, value: Any) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    if os.environ.get("POISE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no golden file {path}: run with POISE_UPDATE_GOLDEN=1 to make it"
    assert json.loads(text) == json.loads(path.read_text()), f"{name}: differs from {path}"
