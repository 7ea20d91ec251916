"""Fixtures of the mirror's tests (the registries come from tests/node_registries.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
