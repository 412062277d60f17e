"""ProcessTemplate: what to run, where, and with which environment and output.

Validation happens here, in the caller, before anything is spawned: an
unpicklable target, a missing or non-executable program, or a bad stdout
mode raises at once with the reason.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import cloudpickle

from ..base import sharing
from ..policy import Policy
from ..policy.policy import current_with_policy


class ProcessTemplate:
    """A process description, Dragon-style: ``ProcessTemplate(target, args, ...)``.

    ``target`` is either a picklable callable (cloudpickle, so lambdas and
    functions of the user's ``__main__`` work) or the path/name of an
    executable. ``stdout``/``stderr`` accept ``None`` (forwarded to the
    launcher's output, line-buffered), :attr:`PIPE` (captured, read with
    ``ProcessGroup.stdout(puid)``), :attr:`DEVNULL`, or a file path.
    ``stderr`` also accepts :attr:`STDOUT`.
    """

    PIPE = subprocess.PIPE
    DEVNULL = subprocess.DEVNULL
    STDOUT = subprocess.STDOUT

    def __init__(
        self,
        target: Union[Callable[..., Any], str, os.PathLike],
        args: Sequence[Any] = (),
        kwargs: Optional[Mapping[str, Any]] = None,
        cwd: Union[str, os.PathLike] = ".",
        env: Optional[Mapping[str, str]] = None,
        stdout: Any = None,
        stderr: Any = None,
        policy: Optional[Policy] = None,
        name: str = "",
    ) -> None:
        if policy is not None and not isinstance(policy, Policy):
            raise TypeError(f"policy must be a mpigroup.Policy, got {type(policy).__name__}")
        if not (callable(target) or isinstance(target, (str, os.PathLike))):
            raise TypeError(f"target must be a callable or an executable path, got {type(target).__name__}")
        self.target = target
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.cwd = os.path.abspath(os.fspath(cwd))
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.stdout = self._mode(stdout, "stdout")
        self.stderr = self._mode(stderr, "stderr")
        self.policy = policy
        self.with_policy = current_with_policy()  # `with Policy(...)` active at creation
        self.name = name or getattr(target, "__name__", os.path.basename(os.fspath(target)) if not callable(target) else "")
        if not os.path.isdir(self.cwd):
            raise FileNotFoundError(f"ProcessTemplate cwd does not exist: {self.cwd}")
        if callable(target):
            self.kind = "python"
            try:
                before = sharing.handles_pickled()
                self._payload = cloudpickle.dumps((target, self.args, self.kwargs))
                # handles to shared objects inside: the set joins the universe at boot
                self.shares_objects = sharing.handles_pickled() != before
            except Exception as exc:
                raise TypeError(f"ProcessTemplate target or arguments cannot be pickled: {exc}") from exc
        elif isinstance(target, (str, os.PathLike)):
            self.kind = "exec"
            self.shares_objects = False
            self._payload = None
            self.argv = [self._resolve_executable(os.fspath(target))] + [str(a) for a in self.args]
            if self.kwargs:
                raise TypeError("kwargs are only valid with a Python callable target")
        else:
            raise TypeError(f"target must be a callable or an executable path, got {type(target).__name__}")

    def _resolve_executable(self, program: str) -> str:
        if os.sep in program:
            path = program if os.path.isabs(program) else os.path.join(self.cwd, program)
            if not os.path.exists(path):
                raise FileNotFoundError(f"executable not found: {path}")
            if os.path.isdir(path) or not os.access(path, os.X_OK):
                raise PermissionError(f"not an executable file: {path}")
            return path
        found = shutil.which(program, path=self.env.get("PATH", os.environ.get("PATH")))
        if found is None:
            local = os.path.join(self.cwd, program)
            hint = f" (a file {local} exists: name it as './{program}')" if os.path.exists(local) else ""
            raise FileNotFoundError(f"executable {program!r} not found on PATH{hint}")
        return found

    @staticmethod
    def _mode(value: Any, stream: str) -> Any:
        if value is None:
            return None
        if value == subprocess.PIPE:
            return "pipe"
        if value == subprocess.DEVNULL:
            return "devnull"
        if value == subprocess.STDOUT:
            if stream != "stderr":
                raise ValueError("STDOUT is only valid for stderr")
            return "stdout"
        if isinstance(value, (str, os.PathLike)):
            return os.path.abspath(os.fspath(value))
        raise ValueError(f"{stream} must be None, PIPE, DEVNULL, STDOUT (stderr only) or a file path, got {value!r}")

    @property
    def payload(self) -> Any:
        """What the worker runs: cloudpickled (fn, args, kwargs) or an argv list."""
        return self._payload if self.kind == "python" else self.argv

    def release_arguments(self) -> None:
        """Drop this template's references to its Python arguments (already pickled into the payload)."""
        if self.kind == "python":
            self.args, self.kwargs = (), {}

    def __repr__(self) -> str:
        return f"ProcessTemplate({self.name or self.target!r}, kind={self.kind}, policy={self.policy})"

