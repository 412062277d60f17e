"""Small shared harness for the mpigroup benchmarks (launch, queue, pool, ddict).

Standard library only; mpi4py is used for the machine description when it is
installed. Nothing here initialises MPI: the MPI library version is read from
an already-imported ``mpi4py.MPI`` or, failing that, from a short subprocess
that imports it with ``mpi4py.rc.initialize = False``.

Typical use::

    from harness import Table, compare, machine_info, markdown_report

    table = Table(title="Launch", unit="s", baseline="raw spawn")
    timings = compare({"mpigroup": run_group, "raw spawn": run_raw}, repeats=3, warmup=1)
    for name, t in timings.items():
        table.add_timing("N=16", name, t)
    print(table.format_text())
    print(markdown_report("Launch", command, [table]))

Values are "lower is better" unless a table is created with
``lower_is_better=False`` (throughputs); ratios always read
``contender / baseline``, and the text says which side wins.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional, Sequence

__all__ = [
    "Timing",
    "time_call",
    "compare",
    "Row",
    "Check",
    "Table",
    "machine_info",
    "format_machine",
    "command_line",
    "markdown_report",
    "write_markdown",
]


# --------------------------------------------------------------------- timing
@dataclass
class Timing:
    """Wall-clock samples (seconds) of one callable; warmup runs excluded."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def n(self) -> int:
        return len(self.samples)

    def __str__(self) -> str:
        return f"median {self.median:.4f} s, min {self.min:.4f} s, max {self.max:.4f} s (n={self.n})"


def _once(fn: Callable[[], object], setup: Optional[Callable[[], object]]) -> float:
    if setup is not None:
        setup()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_call(
    fn: Callable[[], object],
    *,
    repeats: int = 3,
    warmup: int = 0,
    setup: Optional[Callable[[], object]] = None,
) -> Timing:
    """Time ``fn()`` ``repeats`` times after ``warmup`` untimed calls.

    ``setup`` (optional) runs before every call, outside the timed region.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    for _ in range(warmup):
        _once(fn, setup)
    return Timing([_once(fn, setup) for _ in range(repeats)])


def compare(
    contenders: Mapping[str, Callable[[], object]],
    *,
    repeats: int = 3,
    warmup: int = 0,
    progress: Optional[Callable[[str], None]] = None,
) -> dict[str, Timing]:
    """Time several callables, interleaved round-robin.

    Each round runs every contender once, in the given order, so slow drift of
    a noisy machine (other load, thermal, page cache) hits all of them alike
    instead of whichever happened to run last. ``warmup`` rounds are run first
    and discarded. ``progress`` (e.g. ``print``) gets one line per timed call.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    for _ in range(warmup):
        for name, fn in contenders.items():
            dt = _once(fn, None)
            if progress:
                progress(f"  warmup  {name:<28} {dt:8.4f} s")
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for rep in range(repeats):
        for name, fn in contenders.items():
            dt = _once(fn, None)
            samples[name].append(dt)
            if progress:
                progress(f"  run {rep + 1:<3} {name:<28} {dt:8.4f} s")
    return {name: Timing(s) for name, s in samples.items()}


# ---------------------------------------------------------------------- table
@dataclass
class Row:
    case: str
    contender: str
    value: float
    unit: str = "s"
    minimum: Optional[float] = None  # min over repeats, when the value is a median
    note: str = ""


_COMPARE = {
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


@dataclass
class Check:
    """A target on the ratio ``contender / baseline`` for one case."""

    case: str
    contender: str
    baseline: str
    ratio: Optional[float]
    limit: float
    comparison: str  # "<=", "<", ">=" or ">"
    description: str = ""

    @property
    def met(self) -> Optional[bool]:
        if self.ratio is None:
            return None
        return _COMPARE[self.comparison](self.ratio, self.limit)

    @property
    def verdict(self) -> str:
        return {True: "MET", False: "NOT MET", None: "n/a"}[self.met]

    def _body(self) -> str:
        ratio = "n/a" if self.ratio is None else f"{self.ratio:.2f}x"
        desc = f" -- {self.description}" if self.description else ""
        return (f"{self.case}: {self.contender} / {self.baseline} = {ratio}"
                f" (target {self.comparison} {self.limit:g}x){desc}")

    def line(self) -> str:
        return f"[{self.verdict:>7}] {self._body()}"

    def markdown(self) -> str:
        return f"**{self.verdict}** {self._body()}"


def _fmt(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    mag = abs(value)
    if mag >= 100:
        return f"{value:.1f}"
    if mag >= 1:
        return f"{value:.3f}"
    if mag >= 0.001:
        return f"{value:.4f}"
    return f"{value:.3g}"


def _fixed_width(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """First column left-aligned, the rest right-aligned, two spaces apart."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in body])


def _md_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


class Table:
    """Rows of (case, contender, value, unit), shown as cases x contenders.

    ``baseline`` names the contender that ratios are taken against by default
    (``contender / baseline`` per case). ``lower_is_better`` sets how a ratio
    reads: for times, a ratio below 1 means the contender is faster.
    Extra ratio pairs (neither being the default baseline) are added with
    :meth:`add_ratio`.
    """

    def __init__(
        self,
        title: str = "",
        *,
        unit: str = "s",
        baseline: Optional[str] = None,
        lower_is_better: bool = True,
        value_label: str = "median",
    ) -> None:
        self.title = title
        self.unit = unit
        self.baseline = baseline
        self.lower_is_better = lower_is_better
        self.value_label = value_label
        self.rows: list[Row] = []
        self.ratio_pairs: list[tuple[str, str]] = []  # (contender, baseline)
        self.checks: list[Check] = []
        self.notes: list[str] = []

    # -- filling
    def add(self, case: str, contender: str, value: float, unit: Optional[str] = None,
            *, minimum: Optional[float] = None, note: str = "") -> Row:
        row = Row(str(case), contender, float(value), unit or self.unit, minimum, note)
        self.rows.append(row)
        return row

    def add_timing(self, case: str, contender: str, timing: Timing, *, note: str = "") -> Row:
        """Add a :class:`Timing` as its median (min kept for the detail view)."""
        return self.add(case, contender, timing.median, "s", minimum=timing.min, note=note)

    def add_ratio(self, contender: str, baseline: str) -> None:
        """Also report ``contender / baseline`` for every case that has both."""
        if (contender, baseline) not in self.ratio_pairs:
            self.ratio_pairs.append((contender, baseline))

    def note(self, text: str) -> None:
        """A free-text line printed under the table (caveats, what is compared)."""
        self.notes.append(text)

    # -- queries
    @property
    def cases(self) -> list[str]:
        return list(dict.fromkeys(r.case for r in self.rows))

    @property
    def contenders(self) -> list[str]:
        return list(dict.fromkeys(r.contender for r in self.rows))

    def get(self, case: str, contender: str) -> Optional[Row]:
        for row in self.rows:
            if row.case == case and row.contender == contender:
                return row
        return None

    def value(self, case: str, contender: str) -> Optional[float]:
        row = self.get(case, contender)
        return None if row is None else row.value

    def ratio(self, case: str, contender: str, baseline: Optional[str] = None) -> Optional[float]:
        """``contender / baseline`` for ``case``; None when either is missing or baseline is 0."""
        baseline = baseline or self.baseline
        if baseline is None:
            raise ValueError("no baseline given and the table has none")
        num, den = self.value(case, contender), self.value(case, baseline)
        if num is None or den is None or den == 0:
            return None
        return num / den

    def _pairs(self) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        if self.baseline is not None:
            pairs += [(c, self.baseline) for c in self.contenders if c != self.baseline]
        pairs += [p for p in self.ratio_pairs if p not in pairs]
        return pairs

    def check(self, case: str, contender: str, baseline: str, limit: float,
              comparison: str = "<=", description: str = "") -> Check:
        """Record (and return) whether ``contender / baseline`` meets ``limit`` for ``case``."""
        if comparison not in _COMPARE:
            raise ValueError(f"comparison must be one of {', '.join(_COMPARE)}")
        chk = Check(case, contender, baseline, self.ratio(case, contender, baseline),
                    limit, comparison, description)
        self.checks.append(chk)
        return chk

    # -- output
    def direction(self) -> str:
        if self.lower_is_better:
            return "lower is better; ratio = contender / baseline, < 1.00x means the contender is faster"
        return "higher is better; ratio = contender / baseline, > 1.00x means the contender is better"

    def _grid(self) -> tuple[list[str], list[list[str]]]:
        units = {r.unit for r in self.rows}
        unit = units.pop() if len(units) == 1 else ""
        header = ["case"] + [f"{c} ({unit})" if unit else c for c in self.contenders]
        body = []
        for case in self.cases:
            line = [case]
            for contender in self.contenders:
                row = self.get(case, contender)
                if row is None:
                    line.append("-")
                else:
                    line.append(_fmt(row.value) + ("" if unit else f" {row.unit}"))
            body.append(line)
        return header, body

    def ratio_lines(self) -> list[str]:
        out = []
        for contender, baseline in self._pairs():
            for case in self.cases:
                r = self.ratio(case, contender, baseline)
                if r is None:
                    continue
                if self.lower_is_better:
                    word = "faster" if r < 1 else "slower" if r > 1 else "same"
                else:
                    word = "better" if r > 1 else "worse" if r < 1 else "same"
                out.append(f"{case}: {contender} / {baseline} = {r:.2f}x ({word})")
        return out

    def ratio_grid(self) -> tuple[list[str], list[list[str]]]:
        """One row per ratio pair, one column per case, cells like ``1.08x``.

        Empty body when the table has no ratio pairs with data.
        """
        pairs = [p for p in self._pairs()
                 if any(self.ratio(c, *p) is not None for c in self.cases)]
        header = ["ratio"] + self.cases
        body = []
        for contender, baseline in pairs:
            cells = [f"{contender} / {baseline}"]
            for case in self.cases:
                r = self.ratio(case, contender, baseline)
                cells.append("-" if r is None else f"{r:.2f}x")
            body.append(cells)
        return header, body

    def format_text(self) -> str:
        header, body = self._grid()
        lines = []
        if self.title:
            lines += [self.title, "=" * len(self.title)]
        lines.append(f"{self.value_label} per case ({self.direction().split(';')[0]})")
        lines.append(_fixed_width(header, body))
        rheader, rbody = self.ratio_grid()
        if rbody:
            lines += ["", f"Ratios ({self.direction()}):", _fixed_width(rheader, rbody)]
        if self.checks:
            lines += ["", "Targets:"]
            lines += [f"  {c.line()}" for c in self.checks]
        if self.notes:
            lines += [""] + [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def format_markdown(self, *, show_min: bool = True) -> str:
        header, body = self._grid()
        has_min = show_min and any(r.minimum is not None for r in self.rows)
        out = [f"{self.value_label.capitalize()} values, {self.direction().split(';')[0]}.", "",
               _md_table(header, body)]
        if has_min:
            mbody = []
            for case in self.cases:
                cells = [case]
                for c in self.contenders:
                    row = self.get(case, c)
                    cells.append("-" if row is None or row.minimum is None else _fmt(row.minimum))
                mbody.append(cells)
            out += ["", "Minimum over repeats:", "", _md_table(header, mbody)]
        rheader, rbody = self.ratio_grid()
        if rbody:
            out += ["", f"Ratios ({self.direction()}):", "", _md_table(rheader, rbody)]
        if self.checks:
            out += ["", "Targets:", ""] + [f"- {c.markdown()}" for c in self.checks]
        if self.notes:
            out += ["", "Notes:", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(out)


# -------------------------------------------------------------------- machine
def wait_pid_gone(pid: int, timeout: float, max_delay: float = 2e-3) -> None:
    """Wait until ``pid`` no longer exists (a raw child reaped by Open MPI's daemon); TimeoutError after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    delay = 1e-4
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"raw child {pid} still exists after {timeout} s")
        time.sleep(delay)
        delay = min(delay * 2, max_delay)


def _first_line(text: str) -> str:
    # Open MPI's version string ends in a NUL byte; drop it and any padding.
    lines = text.replace("\x00", "").strip().splitlines()
    return lines[0].strip() if lines else ""


def _mpi_versions() -> tuple[Optional[str], Optional[str]]:
    """(MPI library version first line, mpi4py version) without initialising MPI."""
    try:
        import mpi4py
    except ImportError:
        return None, None
    mod = sys.modules.get("mpi4py.MPI")
    if mod is not None:
        try:
            return _first_line(mod.Get_library_version()), mpi4py.__version__
        except Exception:
            return None, mpi4py.__version__
    code = ("import mpi4py; mpi4py.rc.initialize = False; mpi4py.rc.finalize = False\n"
            "from mpi4py import MPI; print(MPI.Get_library_version().strip().splitlines()[0])")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        lib = _first_line(out.stdout) or None
    except Exception:
        lib = None
    return lib, mpi4py.__version__


def _cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _mem_total_gib() -> Optional[float]:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_info() -> dict[str, object]:
    """Where the numbers came from: cores, CPU, memory, OS, Python, MPI."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    mpi_lib, mpi4py_version = _mpi_versions()
    mem = _mem_total_gib()
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu": _cpu_model(),
        "memory_gib": None if mem is None else round(mem, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "mpi4py": mpi4py_version,
        "mpi_library": mpi_lib,
    }


def format_machine(info: Optional[Mapping[str, object]] = None) -> list[str]:
    info = machine_info() if info is None else info
    cores = f"{info['cores']}"
    if info.get("usable_cores") not in (None, info["cores"]):
        cores += f" ({info['usable_cores']} usable)"
    lines = [f"cores: {cores}"]
    if info.get("cpu"):
        lines.append(f"cpu: {info['cpu']}")
    if info.get("memory_gib") is not None:
        lines.append(f"memory: {info['memory_gib']} GiB")
    lines.append(f"os: {info['os']}")
    lines.append(f"python: {info['python']}")
    lines.append(f"mpi4py: {info.get('mpi4py') or 'not installed'}")
    lines.append(f"MPI library: {info.get('mpi_library') or 'unknown'}")
    return lines


def command_line(argv: Optional[Sequence[str]] = None, prefix: Sequence[str] = ()) -> str:
    """Shell-quoted command line, e.g. ``command_line(prefix=[py, '-m', 'mpigroup'])``."""
    argv = list(sys.argv if argv is None else argv)
    return " ".join(shlex.quote(a) for a in [*prefix, *argv])


# ------------------------------------------------------------------- markdown
def markdown_report(
    title: str,
    command: str,
    tables: Iterable[Table],
    *,
    notes: Sequence[str] = (),
    level: int = 2,
    date: Optional[str] = None,
    machine: Optional[Mapping[str, object]] = None,
) -> str:
    """A RESULTS.md section: title, command, date, machine, then each table."""
    date = date or _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    h = "#" * level
    out = [f"{h} {title}", "", "Command:", "", "```sh", command, "```", "",
           f"Date: {date}", "", "Machine:", ""]
    out += [f"- {line}" for line in format_machine(machine)]
    for table in tables:
        out.append("")
        if table.title:
            out += [f"{h}# {table.title}", ""]
        out.append(table.format_markdown())
    if notes:
        out += ["", "Run notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def write_markdown(path: str, title: str, command: str, tables: Iterable[Table], **kwargs) -> str:
    """Write :func:`markdown_report` to ``path`` (overwriting) and return the text."""
    text = markdown_report(title, command, tables, **kwargs)
    with open(path, "w") as fh:
        fh.write(text)
    return text
