"""benches/ is not a package: put it on the path so its orchestration code can be tested."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHES = Path(__file__).resolve().parents[2] / "benches"
if str(BENCHES) not in sys.path:
    sys.path.insert(0, str(BENCHES))
