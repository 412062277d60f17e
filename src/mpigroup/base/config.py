"""Every ``MPIGROUP_*`` setting, read on first use and validated in one place.

Each setting is declared once in :data:`SETTINGS` with its type, default,
bounds and meaning; ``mpigroup info`` and the README print the same table.
Values are read from the environment when asked for (never at import), so
tests and launchers can change them; a bad value raises
:class:`~mpigroup.errors.SettingError` naming the variable, the value and
what is allowed. :func:`cached` keeps a parsed value for hot paths until
:func:`reload`.

Settings marked *internal* are how mpigroup hands facts to the processes it
starts; users do not set them.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ..errors import SettingError

__all__ = ["Setting", "SETTINGS", "get", "cached", "reload", "is_set", "table", "parse_bytes"]

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_bytes(text: str) -> int:
    """``"4194304"``, ``"4M"``, ``"4MiB"``, ``"256k"`` -> bytes (binary units). Raises ``ValueError``."""
    raw = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = raw[-1:] if raw[-1:] in _UNITS and raw[-1:] else ""
    number = raw[:-1] if unit else raw
    value = int(number.strip())
    return value * _UNITS[unit]


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 50


@dataclass(frozen=True)
class Setting:
    """One environment variable: ``kind`` is bytes, seconds, number, int, bool, choice or text."""

    name: str
    kind: str
    default: Any
    meaning: str
    low: Optional[float] = None
    high: Optional[float] = None
    choices: tuple = ()
    internal: bool = False

    def parse(self, raw: str) -> Any:
        text = raw.strip()
        if self.kind == "text":
            return text
        if self.kind == "bool":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise SettingError(self.name, raw, "expected 1/0 (or true/false, yes/no, on/off)")
        if self.kind == "choice":
            for choice in self.choices:
                if text.upper() == str(choice).upper():
                    return choice
            raise SettingError(self.name, raw, f"expected one of {', '.join(map(str, self.choices))}")
        try:
            if self.kind == "bytes":
                value: Any = parse_bytes(text)
            elif self.kind == "int":
                value = int(text)
            else:  # seconds, number
                value = float(text)
                if value != value:  # NaN
                    raise ValueError
        except ValueError:
            raise SettingError(self.name, raw, f"expected {self.allowed()}") from None
        high = self.high() if callable(self.high) else self.high
        if (self.low is not None and value < self.low) or (high is not None and value > high):
            raise SettingError(self.name, raw, f"expected {self.allowed()}")
        return value

    def allowed(self) -> str:
        what = {"bytes": "a number of bytes (suffix k, M or G allowed)", "seconds": "a number of seconds",
                "number": "a number", "int": "an integer"}.get(self.kind, self.kind)
        high = self.high() if callable(self.high) else self.high
        if self.low is not None and high is not None:
            return f"{what} from {_show(self.low, self.kind)} to {_show(high, self.kind)}"
        if self.low is not None:
            return f"{what} of at least {_show(self.low, self.kind)}"
        return what


def _show(value: float, kind: str) -> str:
    if kind == "bytes" and value == _physical_memory():
        return f"this node's memory ({value / (1 << 30):.1f} GiB)"
    if kind == "bytes":
        for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if value >= size and value % size == 0:
                return f"{value // size} {unit}"
        return f"{int(value)} bytes"
    return f"{value:g}"


_SETTINGS_LIST = [
    # runtime
    Setting("MPIGROUP_BOOT_TIMEOUT", "seconds", 120.0, "seconds the initial ranks may take to start and reach "
            "each other before each one exits with a message", low=1e-3),
    Setting("MPIGROUP_HOST_TIMEOUT", "seconds", 5.0, "seconds without a heartbeat after which the head counts "
            "a host as lost (HostLost)", low=1e-3),
    Setting("MPIGROUP_NODE", "text", "", "this node's name (set by the runtime in every process it starts; "
            "default: PMIX_HOSTNAME, then the hostname)"),
    Setting("MPIGROUP_GPUS", "text", None, "override GPU detection: VENDOR:IDS such as nvidia:0-3, or none"),
    Setting("MPIGROUP_LABEL_OUTPUT", "bool", False, "prefix every output line of a worker with its puid and host"),
    Setting("MPIGROUP_MPIEXEC", "text", "", "the mpiexec `mpigroup run` uses (default: the wheel's, then PATH)"),
    Setting("MPIGROUP_LOG_LEVEL", "choice", "WARNING", "level of mpigroup's log messages on stderr",
            choices=_LOG_LEVELS),
    # shared objects
    Setting("MPIGROUP_ARENA_BYTES", "bytes", 256 << 20, "size of the head's window that holds every Queue, "
            "Event and lock", low=64 << 10, high=_physical_memory),
    Setting("MPIGROUP_QUEUE_BYTES", "bytes", 4 << 20, "default ring size of a Queue", low=4 << 10,
            high=_physical_memory),
    Setting("MPIGROUP_SPIN_US", "number", 100.0, "microseconds a shared-object wait spins before it sleeps",
            low=0, high=1e6),
    Setting("MPIGROUP_ARENA_DIRECT", "bool", True, "on x86-64, processes on the head's host read and copy the "
            "arena's memory directly (a shared-memory window) instead of through RMA calls; atomics stay MPI"),
    Setting("MPIGROUP_SPIN_YIELD", "bool", False, "spinning waits yield the CPU (sched_yield) at each step "
            "(on a busy node a yield can cost a whole time slice)"),
    # DDict
    Setting("MPIGROUP_DDICT_CHANNEL_BYTES", "bytes", 8 << 20, "size of a DDict manager's request ring",
            low=64 << 10, high=_physical_memory),
    Setting("MPIGROUP_DDICT_REPLY_BYTES", "bytes", 4 << 20, "size of a DDict client's reply ring",
            low=64 << 10, high=_physical_memory),
    Setting("MPIGROUP_DDICT_SPIN_US", "number", 2000.0, "microseconds a DDict client or manager spins for "
            "the next message before it sleeps", low=0, high=1e6),
    Setting("MPIGROUP_DDICT_CMA", "bool", True, "large DDict gets read the manager's memory directly "
            "(process_vm_readv) on one node"),
    # telemetry
    Setting("MPIGROUP_TELEMETRY_LEVEL", "int", 0, "0 off, 1 user metrics, 2 + host metrics, 3 + GPU metrics",
            low=0, high=3),
    Setting("MPIGROUP_TELEMETRY_PORT", "int", 8000, "port of the head's HTTP endpoint (0: any free port)",
            low=0, high=65535),
    Setting("MPIGROUP_TELEMETRY_ADDR", "text", "127.0.0.1", "address the telemetry endpoint binds to"),
    Setting("MPIGROUP_TELEMETRY_INTERVAL", "seconds", 1.0, "seconds between two samples of a node monitor",
            low=0.05, high=3600),
    Setting("MPIGROUP_TELEMETRY_DIR", "text", "mpigroup-telemetry", "where telemetry run stores are kept"),
    Setting("MPIGROUP_TELEMETRY_MAX_POINTS", "int", 100000,
            "most points one OpenTSDB query may return (more: a 400 naming this setting)", low=1, high=10**9),
    Setting("MPIGROUP_TELEMETRY_CORS_ORIGIN", "text", "",
            "the one web origin the endpoint lets browsers read from (Access-Control-Allow-Origin); none if empty"),
    # internal: set by mpigroup for the processes it starts
    Setting("MPIGROUP_MPI_DEFAULTS", "bool", False, "mpiexec was started with mpigroup's MPI defaults",
            internal=True),
    Setting("MPIGROUP_PUID", "int", 0, "the puid of this spawned process", low=0, internal=True),
    Setting("MPIGROUP_AGENT_SOCKET", "text", "", "the node agent's socket (relayed workers)", internal=True),
    Setting("MPIGROUP_AGENT_KEY", "text", "", "the node agent's authentication key", internal=True),
    Setting("MPIGROUP_ERROR_FILE", "text", "", "where a PMI rank's launch shim reports a failure",
            internal=True),
    Setting("MPIGROUP_PMI_SPECS", "text", "", "the PMI world's command specs", internal=True),
    Setting("MPIGROUP_PMI_PAYLOAD", "text", "", "the Python target of a PMI world", internal=True),
    Setting("MPIGROUP_TELEMETRY_QUEUE", "text", "", "the run's telemetry queue handle", internal=True),
]
SETTINGS: dict[str, Setting] = {s.name: s for s in _SETTINGS_LIST}

_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()


def _setting(name: str) -> Setting:
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"{name} is not an mpigroup setting") from None


def is_set(name: str, env: Optional[Mapping[str, str]] = None) -> bool:
    """Whether ``name`` has a non-blank value in the environment."""
    _setting(name)
    return bool((os.environ if env is None else env).get(name, "").strip())


def get(name: str, env: Optional[Mapping[str, str]] = None) -> Any:
    """The value of setting ``name`` now (its default when unset or blank)."""
    setting = _setting(name)
    raw = (os.environ if env is None else env).get(name)
    if raw is None or not raw.strip():
        return setting.default
    return setting.parse(raw)


def cached(name: str) -> Any:
    """Like :func:`get` from ``os.environ``, parsed once per process (until :func:`reload`)."""
    try:
        return _cache[name]
    except KeyError:
        value = get(name)
        with _cache_lock:
            _cache[name] = value
        return value


def reload() -> None:
    """Forget the values :func:`cached` kept (after the environment changed)."""
    with _cache_lock:
        _cache.clear()


def table(include_internal: bool = False) -> list[tuple[str, str, str]]:
    """``(name, default, meaning)`` rows for documentation and ``mpigroup info``."""
    rows = []
    for s in _SETTINGS_LIST:
        if s.internal and not include_internal:
            continue
        if s.default in (None, ""):
            default = ""
        elif s.kind in ("bytes", "seconds", "number"):
            default = _show(s.default, s.kind)
        elif s.kind == "bool":
            default = str(int(s.default))
        else:
            default = str(s.default)
        rows.append((s.name, default, s.meaning))
    return rows


