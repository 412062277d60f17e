"""Where a worker's stdout/stderr go: inherited, labelled, captured, null or a file.

Redirection happens on the file descriptors (``dup2``), so output from C
extensions and subprocesses follows the same route as ``print``.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable, Optional


class _Pump(threading.Thread):
    """Reads a pipe and hands each chunk (or line) to a sink until EOF."""

    def __init__(self, read_fd: int, sink: Callable[[bytes], None], by_line: bool, prefix: bytes = b"") -> None:
        super().__init__(daemon=True, name="mpigroup-output")
        self.read_fd = read_fd
        self.sink = sink
        self.by_line = by_line
        self.prefix = prefix

    def run(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.read_fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            if not self.by_line:
                self.sink(chunk)
                continue
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if lines:  # whole lines only, one message per chunk read
                self.sink(b"".join(self.prefix + line + b"\n" for line in lines))
        if pending:  # a last line without newline still ends a line (never glued to others)
            self.sink(self.prefix + pending + (b"\n" if self.by_line else b""))
        os.close(self.read_fd)


class OutputRouting:
    """Sets up fd 1 and fd 2 for one worker and drains pumps at exit."""

    def __init__(self) -> None:
        self._pumps: list[_Pump] = []
        self._write_fds: list[int] = []

    def _pipe_to(self, fd: int, sink: Callable[[bytes], None], by_line: bool, prefix: bytes = b"") -> None:
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, fd)
        os.close(write_fd)
        pump = _Pump(read_fd, sink, by_line, prefix)
        pump.start()
        self._pumps.append(pump)
        self._write_fds.append(fd)

    def route(self, fd: int, mode, *, label: Optional[str], send: Callable[[str, bytes], None],
              forward: bool = False) -> None:
        """Point ``fd`` where ``mode`` says; ``forward`` sends default output to the head."""
        stream = "stdout" if fd == 1 else "stderr"
        if mode is None and forward:
            self._pipe_to(fd, lambda data: send(f"forward-{stream}", data), by_line=True,
                          prefix=(label or "").encode())
        elif mode is None:
            if label:
                original = os.dup(fd)
                self._pipe_to(fd, lambda data: os.write(original, data), by_line=True, prefix=label.encode())
        elif mode == "pipe":
            self._pipe_to(fd, lambda data: send(stream, data), by_line=False)
        elif mode == "devnull":
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)
        elif mode == "stdout" and fd == 2:
            os.dup2(1, 2)
            self._write_fds.append(2)
        else:
            target = os.open(str(mode), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(target, fd)
            os.close(target)

    def close(self) -> None:
        """Flush Python's buffers, close the pipes' write ends and drain pumps."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):  # the target closed or removed it
                pass
        for fd in self._write_fds:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)  # drops the last reference to the pipe's write end
            os.close(null)
        deadline = time.monotonic() + 2.0  # a leftover child may hold the pipe open
        for pump in self._pumps:
            pump.join(timeout=max(0.0, deadline - time.monotonic()))
