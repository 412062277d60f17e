"""mpigroup's logging: one logger per package under ``mpigroup``, warnings to stderr by default.

Every diagnostic goes through :mod:`logging` (``logging.getLogger(__name__)``
in each module). When the application has configured no logging of its
own, :class:`FallbackHandler` writes mpigroup's records to stderr as
``mpigroup: message``, which is what mpigroup printed before it used
logging. Once the application adds a handler to the root logger, records
propagate there instead and the fallback stays silent. ``MPIGROUP_LOG_LEVEL``
sets the level of the ``mpigroup`` logger (default ``WARNING``).
"""
from __future__ import annotations

import logging
import sys

__all__ = ["FallbackHandler", "setup", "ROOT_LOGGER"]

ROOT_LOGGER = "mpigroup"


class FallbackHandler(logging.Handler):
    """Writes to the current ``sys.stderr`` unless the root logger has handlers of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_Formatter())

    def emit(self, record: logging.LogRecord) -> None:
        if logging.getLogger().handlers:
            return  # the application configured logging: our records reach its handlers
        try:
            stream = sys.stderr
            if stream is None:
                return
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 (as logging.StreamHandler does)
            self.handleError(record)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno < logging.WARNING:
            text = f"[{record.name} {record.levelname.lower()}] {text}"
        line = f"mpigroup: {text}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


_installed = False


def setup() -> None:
    """Install the fallback handler and the level from ``MPIGROUP_LOG_LEVEL`` (once per process)."""
    global _installed
    if _installed:
        return
    from . import config

    logger = logging.getLogger(ROOT_LOGGER)
    logger.setLevel(config.get("MPIGROUP_LOG_LEVEL"))
    if not any(isinstance(h, FallbackHandler) for h in logger.handlers):
        logger.addHandler(FallbackHandler())
    _installed = True
