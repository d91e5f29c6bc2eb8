"""Scripts run in a new Python, for tests that fork worker processes."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def printed_json(script: str) -> Any:
    """What ``script`` printed as JSON, run in a new Python importing only what it imports:
    forking a process that runs TensorFlow's threads could deadlock, so workers fork from
    that one, not from the test's."""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
