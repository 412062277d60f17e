"""Settings: one declaration per MPIGROUP_* variable, validated with errors that name it; README lists them all."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mpigroup.base import config
from mpigroup.errors import MPIGroupError, SettingError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name,value", [
    ("MPIGROUP_QUEUE_BYTES", "abc"),
    ("MPIGROUP_ARENA_BYTES", "99999999999999"),
    ("MPIGROUP_ARENA_BYTES", "1k"),
    ("MPIGROUP_HOST_TIMEOUT", "-1"),
    ("MPIGROUP_BOOT_TIMEOUT", "nan"),
    ("MPIGROUP_SPIN_YIELD", "2"),
    ("MPIGROUP_LOG_LEVEL", "loud"),
    ("MPIGROUP_TELEMETRY_LEVEL", "4"),
    ("MPIGROUP_TELEMETRY_PORT", "70000"),
])
def test_a_bad_value_names_the_variable_the_value_and_what_is_allowed(name, value):
    with pytest.raises(SettingError) as info:
        config.get(name, {name: value})
    text = str(info.value)
    assert name in text and repr(value) in text and "expected" in text
    assert isinstance(info.value, (MPIGroupError, ValueError))
    assert (info.value.name, info.value.value) == (name, value)


def test_values_parse_and_blank_means_default():
    assert config.get("MPIGROUP_QUEUE_BYTES", {"MPIGROUP_QUEUE_BYTES": "8M"}) == 8 << 20
    assert config.get("MPIGROUP_QUEUE_BYTES", {"MPIGROUP_QUEUE_BYTES": "65536"}) == 65536
    assert config.get("MPIGROUP_QUEUE_BYTES", {"MPIGROUP_QUEUE_BYTES": "  "}) == 4 << 20
    assert config.get("MPIGROUP_SPIN_YIELD", {"MPIGROUP_SPIN_YIELD": "off"}) is False
    assert config.get("MPIGROUP_LOG_LEVEL", {"MPIGROUP_LOG_LEVEL": "debug"}) == "DEBUG"
    assert config.get("MPIGROUP_HOST_TIMEOUT", {}) == 5.0


def test_cached_values_follow_reload(monkeypatch):
    monkeypatch.setenv("MPIGROUP_SPIN_US", "10")
    config.reload()
    assert config.cached("MPIGROUP_SPIN_US") == 10.0
    monkeypatch.setenv("MPIGROUP_SPIN_US", "20")
    assert config.cached("MPIGROUP_SPIN_US") == 10.0  # kept until reload
    config.reload()
    assert config.cached("MPIGROUP_SPIN_US") == 20.0
    monkeypatch.delenv("MPIGROUP_SPIN_US")
    config.reload()


def test_an_unknown_name_is_a_programming_error():
    with pytest.raises(KeyError, match="MPIGROUP_NOPE"):
        config.get("MPIGROUP_NOPE")


def test_every_variable_the_code_reads_is_declared():
    used = set()
    for path in (REPO / "src" / "mpigroup").rglob("*.py"):
        used |= set(re.findall(r"\bMPIGROUP_[A-Z_]+[A-Z]\b", path.read_text()))
    assert used - set(config.SETTINGS) == set()


def test_the_readme_lists_every_user_setting_with_its_default():
    readme = (REPO / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(MPIGROUP_[A-Z_]+)` \| ([^|]+) \|", readme, re.M))
    for name, default, _ in config.table():
        assert name in rows, f"{name} is missing from the README's settings table"
        shown = rows[name].strip()
        assert shown == (f"`{default}`" if default else "(none)"), (name, shown, default)


def test_importing_the_package_reads_no_setting_but_the_log_level():
    """A bad value of a setting nobody uses yet must not break `import mpigroup`."""
    env = dict(os.environ, MPIGROUP_QUEUE_BYTES="abc", MPIGROUP_HOST_TIMEOUT="x", MPIGROUP_ARENA_BYTES="y")
    out = subprocess.run([sys.executable, "-c", "import mpigroup, mpigroup.policy; print('ok')"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
