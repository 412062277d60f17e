"""mpigroup's logging: MPIGROUP_LOG_LEVEL, the stderr fallback, and an application's own logging."""
from __future__ import annotations

import os
import subprocess
import sys

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")

DEBUG_AND_WARNING = """
import logging, mpigroup
logging.getLogger("mpigroup.telemetry.service").debug("a debug note")
logging.getLogger("mpigroup.launcher.cli").warning("a warning")
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MPIGROUP_")}
    full["PYTHONPATH"] = os.path.abspath(SRC) + os.pathsep + full.get("PYTHONPATH", "")
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60)


def test_default_level_shows_warnings_and_hides_debug():
    proc = _python(DEBUG_AND_WARNING)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "mpigroup: a warning\n"


def test_debug_level_shows_debug_messages():
    proc = _python(DEBUG_AND_WARNING, MPIGROUP_LOG_LEVEL="DEBUG")
    assert proc.returncode == 0, proc.stderr
    assert "mpigroup: [mpigroup.telemetry.service debug] a debug note" in proc.stderr
    assert "mpigroup: a warning" in proc.stderr


def test_a_bad_level_is_a_setting_error_naming_the_variable():
    proc = _python("import mpigroup", MPIGROUP_LOG_LEVEL="loud")
    assert proc.returncode != 0
    assert "SettingError" in proc.stderr and "MPIGROUP_LOG_LEVEL='loud' is not valid" in proc.stderr
    assert "DEBUG" in proc.stderr  # says what is allowed


def test_an_application_logging_config_receives_the_records_and_the_fallback_stays_silent():
    code = ("import logging, sys\n"
            "logging.basicConfig(stream=sys.stdout, format='APP %(name)s %(levelname)s %(message)s')\n"
            + DEBUG_AND_WARNING)
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "APP mpigroup.launcher.cli WARNING a warning\n"
    assert proc.stderr == ""  # no second copy from the fallback handler
