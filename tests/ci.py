"""A test that cannot run here: in CI (``CI`` set) that is a failure, never a silent skip;
elsewhere it is skipped with a reason starting "NOT RUN:"."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether this is a CI run (CI=true), where every test must run."""
    return bool(os.environ.get("CI"))


def cannot_run(reason: str) -> NoReturn:
    """Fails the test in CI, skips it loudly elsewhere."""
    if in_ci():
        pytest.fail(f"cannot run in CI: {reason}")
    pytest.skip(f"NOT RUN: {reason}")
