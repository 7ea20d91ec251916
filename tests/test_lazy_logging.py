"""ocistore's loggers (``ocistore/_log.py``): ``logging`` only when a record could go somewhere.

Until ``logging`` is imported nothing can have configured it, so DEBUG and INFO records are
dropped without importing it; WARNING and above, and every record once it is loaded, reach
``logging`` with the caller's location, and the ``ocistore`` logger has its NullHandler.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from ocistore._log import DEBUG, INFO, WARNING, Logger, get_logger

IN_A_FRESH_PROCESS = """
import json, sys
from ocistore._log import get_logger
log = get_logger("ocistore.test")
log.debug("quiet %s", 1)
log.info("quiet %s", 2)
log.log(20, "quiet %s", 3)
enabled = log.isEnabledFor(20)
before = "logging" in sys.modules
log.warning("a warning nobody configured a handler for")
after = "logging" in sys.modules
import logging
handlers = [type(h).__name__ for h in logging.getLogger("ocistore").handlers]
print(json.dumps([before, enabled, after, handlers]))
"""


def test_records_nobody_could_see_do_not_import_logging() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IN_A_FRESH_PROCESS],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    before, enabled, after, handlers = json.loads(done.stdout)
    assert before is False and enabled is False  # DEBUG/INFO: dropped, logging not loaded
    assert after is True  # a warning goes to logging ...
    assert handlers == ["NullHandler"]  # ... whose "ocistore" logger has its NullHandler,
    assert done.stderr == ""  # so that an unconfigured program prints nothing (no lastResort)


def _here() -> int:
    return sys._getframe(1).f_lineno


@pytest.mark.parametrize(
    ("method", "level"),
    [("debug", DEBUG), ("info", INFO), ("warning", WARNING), ("log", INFO)],
)
def test_records_carry_the_callers_location(
    caplog: pytest.LogCaptureFixture, method: str, level: int
) -> None:
    log = get_logger("ocistore.test.location")
    caplog.set_level(logging.DEBUG, logger="ocistore")
    args = (level, "%s happened") if method == "log" else ("%s happened",)
    line = _here() + 1
    getattr(log, method)(*args, "something")
    [record] = [r for r in caplog.records if r.name == "ocistore.test.location"]
    assert record.levelno == level and record.getMessage() == "something happened"
    assert record.funcName == "test_records_carry_the_callers_location"
    assert record.lineno == line and record.pathname == __file__


def test_extra_and_levels_pass_through(caplog: pytest.LogCaptureFixture) -> None:
    log = Logger("ocistore.test.extra")
    caplog.set_level(logging.WARNING, logger="ocistore")
    log.info("below the configured level")
    assert not log.isEnabledFor(INFO) and log.isEnabledFor(WARNING)
    log.warning("kept", extra={"event_reason": "Failed"})
    [record] = [r for r in caplog.records if r.name == "ocistore.test.extra"]
    assert record.getMessage() == "kept" and record.event_reason == "Failed"  # type: ignore[attr-defined]


def test_the_levels_are_loggings() -> None:
    assert (DEBUG, INFO, WARNING) == (logging.DEBUG, logging.INFO, logging.WARNING)
