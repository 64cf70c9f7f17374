"""Helpers shared by the benchmarks: where the data is, and how results are written."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
TESS_DIR = Path(os.environ.get("SER_DATA_DIR", ROOT.parent / "shared" / "data" / "tess"))


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def emit(name: str, result: dict[str, Any]) -> None:
    """Print one JSON object on stdout and keep a copy in bench/results/NAME.json."""
    payload = {"benchmark": name, "machine": machine(), **result}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload))
