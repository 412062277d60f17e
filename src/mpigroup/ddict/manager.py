"""A DDict manager: one spawned rank serving one shard.

It reads requests from its channel one at a time, so every request on a
shard is atomic (``fetch_add``, ``setdefault``, ``pop``, a batch put), and
answers each on the requesting thread's reply channel. Blobs arrive and leave
as they were serialized by the clients; the manager decodes a value only
for ``fetch_add``.
"""
from __future__ import annotations

import ctypes
import os
import socket
import time
import traceback
from collections import OrderedDict
from typing import Any, Callable, Optional

from ..base.procs import pid_alive
from ..errors import SharedObjectError
from . import cma
from .keys import shard_of
from .ops import READ_ONLY, Op, Status
from .shard import NoCheckpoint, ShardFull, ShardStore, read_entries
from .transport import Channel, RequestChannel, build_frame, decode_value, encode_value, split_frame

_SMALL = 4096  # blobs below this are copied out of the request; larger ones are kept as views
_REPLY_CACHE = 256  # reply channels kept attached (one per client thread)
_REPLY_PATIENCE = 30.0  # seconds a reply may wait on a full reply ring (reader on another node) before it is dropped


class _Whole(list):
    """Reply blobs that are each one buffer (no per-blob piece lists to build)."""


class _Stuck(Exception):
    """A reply ring stayed full: its reader is gone."""


# Plain ints of the codes the loop uses per request (an enum member lookup costs ~0.3 us on 3.11).
_OK, _ERROR, _FULL, _NO_CHECKPOINT = (int(s) for s in (Status.OK, Status.ERROR, Status.FULL, Status.NO_CHECKPOINT))
_STOP = int(Op.STOP)

Result = Optional[tuple]  # (status, payload, blobs), or None: answered later (a WAIT)


class Manager:
    """The state and request loop of one manager rank."""

    def __init__(self, index: int, n_managers: int, requests: RequestChannel, budget: int,
                 working_set_size: int, restore: Optional[dict]) -> None:
        self.index, self.n = index, n_managers
        self.requests = requests
        self.store = ShardStore(budget, working_set_size)
        self.replies: OrderedDict[tuple, Channel] = OrderedDict()
        self.waiters: dict[bytes, list[tuple[int, tuple, Optional[float]]]] = {}
        self.startup_error: Optional[tuple] = None
        self.host = socket.gethostname()
        self.running = True
        self.epoch = 0  # mirrors the request channel's EPOCH word
        self.lent = False  # a blob's address was handed out since the epoch last moved
        self.handlers: dict[int, Callable[[int, tuple, tuple, list], Result]] = {
            int(op): getattr(self, f"_op_{op.name.lower()}") for op in Op}
        try:
            if restore:
                self._restore(restore)
        except BaseException as exc:
            self.startup_error = _error_payload(exc)

    # ------------------------------------------------------------- restore
    def _restore(self, restore: dict) -> None:
        files, old_n = restore["files"], restore["managers"]
        if old_n == self.n:  # same sharding: only our own file
            sources = [files[self.index]]
        else:
            sources = files
        items = []
        for path in sources:
            for key, blob in read_entries(path):
                if old_n == self.n or shard_of(key, self.n) == self.index:
                    items.append((key, blob))
        try:
            self.store.put_many(items)
        except ShardFull as exc:
            raise ShardFull(f"restoring {restore['path']}: {exc}") from None
        self.store.checkpoint_id = int(restore.get("checkpoint_id", 0))

    # ---------------------------------------------------------------- loop
    def serve(self) -> None:
        while self.running:
            deadline = time.monotonic() + (0.2 if self.waiters else 1.0)
            body = self.requests.recv(deadline)
            if body is None:
                self._expire_waiters()
                continue
            header, blobs = split_frame(body)
            op, reqid, reply = header[0], header[1], header[2]
            try:
                if self.startup_error is not None and op != _STOP:
                    self._reply(reply, reqid, _ERROR, self.startup_error)
                    continue
                if self.lent and op not in READ_ONLY:
                    self._move_epoch()  # before anything is freed: readers of lent addresses retry
                handler = self.handlers.get(op)
                if handler is None:
                    raise ValueError(f"unknown DDict operation {op}")
                result = handler(reqid, reply, header[3:], blobs)
            except ShardFull as exc:
                result = (_FULL, str(exc), ())
            except NoCheckpoint as exc:
                result = (_NO_CHECKPOINT, str(exc), ())
            except Exception as exc:
                result = (_ERROR, _error_payload(exc), ())
            if result is not None:
                status, payload, out = result
                self._reply(reply, reqid, status, payload, out)
            if self.waiters:
                self._expire_waiters()

    # ---------------------------------------------------------- operations
    # One method per Op, named _op_<name>: (request id, reply address, args, blobs) -> Result.
    def _op_get(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        keys, = args
        get = self.store.data.get
        found = [get(k) for k in keys]
        if None not in found:
            return _OK, None, _Whole(found)  # the common case: all there
        return _OK, [b is not None for b in found], _Whole([b for b in found if b is not None])

    def _op_get_direct(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        key, = args
        blob = self.store.get(key)
        if blob is None:
            return _OK, None, ()
        if len(blob) < cma.MIN_BYTES:
            return _OK, None, _Whole([blob])
        self.lent = True
        return _OK, (cma.address_of(blob), len(blob), self.epoch), ()

    def _op_put(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        keys, = args
        items = [(k, bytes(b) if len(b) < _SMALL else b) for k, b in zip(keys, blobs)]
        self.store.put_many(items)
        self._wake(keys)
        return _OK, None, ()

    def _op_contains(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        return _OK, args[0] in self.store, ()

    def _op_delete(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        return _OK, self.store.delete(args[0]) is not None, ()

    def _op_pop(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        blob = self.store.delete(args[0])
        return _OK, blob is not None, () if blob is None else [(blob,)]

    def _op_popitem(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        item = self.store.popitem()
        return _OK, None if item is None else item[0], () if item is None else [(item[1],)]

    def _op_setdefault(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        key, = args
        blob = self.store.get(key)
        if blob is None:
            blob = bytes(blobs[0]) if len(blobs[0]) < _SMALL else blobs[0]
            self.store.put_many([(key, blob)])
            self._wake([key])
        return _OK, None, [(blob,)]

    def _op_fetch_add(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        key, delta = args
        blob = self.store.get(key)
        old = 0 if blob is None else decode_value(memoryview(blob))
        new = bytes(b"".join(encode_value(old + delta)))
        self.store.put_many([(key, new)])
        self._wake([key])
        return _OK, old, ()

    def _op_wait(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        key, timeout = args
        blob = self.store.get(key)
        if blob is not None:
            return _OK, None, [(blob,)]
        deadline = None if timeout is None else time.monotonic() + timeout
        self.waiters.setdefault(key, []).append((reqid, reply, deadline))
        return None  # answered by a later write of the key

    def _op_len(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        return _OK, len(self.store), ()

    def _op_keys(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        return _OK, list(self.store.data), ()

    def _op_items(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        return _OK, list(self.store.data), _Whole(self.store.data.values())

    def _op_clear(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        self.store.clear()
        return _OK, None, ()

    def _op_checkpoint(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        return _OK, self.store.checkpoint(), ()

    def _op_rollback(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        return _OK, self.store.rollback(), ()

    def _op_stats(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        stats = self.store.stats()
        stats.update(manager=self.index, host=socket.gethostname(), pid=os.getpid())
        return _OK, stats, ()

    def _op_persist(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        path, = args
        return _OK, self.store.write(path), ()

    def _op_stop(self, reqid: int, reply: tuple, args: tuple, blobs: list) -> Result:
        self.running = False
        return _OK, None, ()

    def _move_epoch(self) -> None:
        self.epoch += 1
        self.requests.set_epoch(self.epoch)
        self.lent = False

    # ------------------------------------------------------------ replies
    def _channel(self, reply: tuple) -> Channel:
        key = reply[:2]
        chan = self.replies.get(key)
        if chan is None:
            chan = Channel.at(reply)
            self.replies[key] = chan
            while len(self.replies) > _REPLY_CACHE:
                self.replies.popitem(last=False)
        else:
            self.replies.move_to_end(key)
        return chan

    def _reply(self, reply: tuple, reqid: int, status: int, payload: Any, blobs: Any = ()) -> None:
        try:
            chan = self._channel(reply)
        except Exception:  # the client's channel is gone with the client
            return
        if isinstance(blobs, _Whole):
            frame = build_frame((reqid, status, payload), whole=blobs)
        else:
            frame = build_frame((reqid, status, payload), blobs)
        limit = time.monotonic() + _REPLY_PATIENCE
        host, pid = reply[4], reply[5]
        check = {"next": time.monotonic() + 0.5}

        def stalled() -> None:  # the reply ring is full: is its reader still there?
            now = time.monotonic()
            if now > limit:
                raise _Stuck()
            if now > check["next"]:
                check["next"] = now + 0.5
                if host == self.host and not pid_alive(pid):
                    raise _Stuck()

        try:
            chan.send(frame, limit, stalled)
        except (TimeoutError, _Stuck, SharedObjectError):  # its reader stopped reading, or the ring is gone
            self.replies.pop(reply[:2], None)  # or broken (another manager died mid-reply): drop this reply

    def _wake(self, keys: list) -> None:
        if not self.waiters:
            return
        for key in keys:
            for reqid, reply, _ in self.waiters.pop(key, ()):
                self._reply(reply, reqid, _OK, None, [(self.store.get(key),)])

    def _expire_waiters(self) -> None:
        now = time.monotonic()
        for key in list(self.waiters):
            alive = [w for w in self.waiters[key] if w[2] is None or w[2] > now]
            if alive:
                self.waiters[key] = alive
            else:
                del self.waiters[key]


def _error_payload(exc: BaseException) -> tuple:
    return (type(exc).__name__, str(exc), traceback.format_exc(), socket.gethostname(), os.getpid())


def _keep_freed_memory() -> None:
    """Let glibc reuse freed value buffers instead of unmapping them: every received
    frame is a fresh buffer, and fresh pages cost a page fault each."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 32 << 20)   # M_MMAP_THRESHOLD: the glibc maximum
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: only slower


def run_manager(index: int, n_managers: int, requests: RequestChannel, budget: int, working_set_size: int,
                restore: Optional[dict]) -> None:
    """Entry point of a manager rank (a ProcessTemplate target)."""
    _keep_freed_memory()
    cma.allow_readers()
    requests.claim()
    Manager(index, n_managers, requests, budget, working_set_size, restore).serve()
