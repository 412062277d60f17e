"""Process: the multiprocessing-style single process, a group of one."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

from ..errors import RemoteError
from ..policy import Policy
from ..runtime import context
from ..runtime.requests import Op
from .group import ProcessGroup
from .template import ProcessTemplate


class Process:
    """``Process(target, args, kwargs, policy=...)`` with start/join/is_alive/exitcode.

    Unlike a ProcessGroup, a failing Process does not raise from ``join``:
    like ``multiprocessing.Process`` it reports through ``exitcode``.
    """

    def __init__(
        self,
        target: Callable[..., Any] | str,
        args: Sequence[Any] = (),
        kwargs: Optional[Mapping[str, Any]] = None,
        policy: Optional[Policy] = None,
        *,
        cwd: str = ".",
        env: Optional[Mapping[str, str]] = None,
        stdout: Any = None,
        stderr: Any = None,
        name: Optional[str] = None,
    ) -> None:
        self._template = ProcessTemplate(target, args, kwargs, cwd=cwd, env=env, stdout=stdout, stderr=stderr, policy=policy)
        self.name = name or f"Process-{id(self):x}"
        self._group = ProcessGroup(ignore_error_on_exit=True, name=self.name)
        self._group.add_process(1, self._template)

    def start(self) -> None:
        if self._group.puids:
            # multiprocessing asserts here (an AssertionError that `python -O` removes);
            # a RuntimeError, as threading.Thread.start() raises, and what this always raised
            raise RuntimeError(f"{self.name} already started: a Process can be started only once")
        self._group.start()

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait until the process exits or ``timeout`` passes (then returns, like multiprocessing)."""
        try:
            self._group.join(timeout)
        except TimeoutError:
            pass

    def is_alive(self) -> bool:
        return bool(self._group.puids) and self._group.is_running()

    @property
    def puid(self) -> Optional[int]:
        puids = self._group.puids
        return puids[0] if puids else None

    @property
    def pid(self) -> Optional[int]:
        return None if self.puid is None else self._group.pid(self.puid)

    @property
    def exitcode(self) -> Optional[int]:
        if self.puid is None:
            return None
        return dict(self._group.exit_status)[self.puid]

    @property
    def error(self) -> Optional[RemoteError]:
        """The RemoteError of a Python target that raised, else None."""
        if self.puid is None:
            return None
        return context.current().api.call(Op.STATUS, puids=[self.puid])[0].remote_error()

    def terminate(self) -> None:
        self._group.terminate()

    def kill(self) -> None:
        self._group.kill()

    def __repr__(self) -> str:
        return f"<mpigroup.Process {self.name} puid={self.puid} exitcode={self.exitcode if self.puid else None}>"
