"""Fixtures shared by every area."""

from __future__ import annotations

from node_registries import manager_registries

__all__ = ["manager_registries"]
