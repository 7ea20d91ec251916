"""Settings and fixtures shared by every test area."""

from __future__ import annotations

from hypothesis import settings
from node_registries import manager_registries

# Timing deadlines make property tests flaky on a loaded 2-core machine.
settings.register_profile("ocistore", deadline=None)
settings.load_profile("ocistore")

__all__ = ["manager_registries"]
