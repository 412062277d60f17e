"""The DDict handle: a ``MutableMapping`` sharded over manager ranks.

A handle holds the managers' request channels and puids; it pickles in a few
hundred bytes and works in any process of the run. Each client thread has a
reply channel of its own, so threads never wait on each other's answers.
While a request is outstanding the client checks, once a second, that the
managers it waits on are alive: a dead manager raises DDictManagerError,
never a hang.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import pickle
import socket
import threading
import time
from collections.abc import MutableMapping
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from ..base import config
from ..errors import (DDictError, DDictFullError, DDictKeyError, DDictManagerError, DDictTimeoutError,
                      RemoteError, SharedObjectError)
from ..group import ProcessGroup, ProcessTemplate
from ..policy import Policy
from ..runtime import context
from ..system import System
from . import cma
from .keys import decode_key, encode_key, shard_of
from .manager import run_manager
from .ops import Op, Status
from .transport import Channel, RequestChannel, build_frame, decode_value, encode_value, split_frame

DEFAULT_TOTAL_MEM = 1 << 30
MANIFEST = "manifest.json"
_MISSING = object()
_LIVENESS_EVERY = 1.0

_HOST = socket.gethostname()
_DIRECT_CACHE = 4096  # where large values lie, per (request channel, key): see DDict._get_direct
_direct_cache: dict[tuple, tuple] = {}
_local = threading.local()  # this thread's reply channel and request ids


# Plain ints of the statuses checked per reply (an enum member lookup costs ~0.3 us on 3.11).
_OK, _FULL = int(Status.OK), int(Status.FULL)


def _reply_channel() -> Channel:
    chan = getattr(_local, "channel", None)
    if chan is None:
        chan = _local.channel = Channel(config.cached("MPIGROUP_DDICT_REPLY_BYTES"))
        _local.address = chan.address
        _local.ids = itertools.count(1)
    return chan


def _shard_file(i: int, n: int) -> str:
    return f"shard-{i:05d}-of-{n:05d}.bin"


class DDict(MutableMapping):
    """``DDict(managers_per_node=1, n_nodes=None, total_mem=1 GiB, *, policy=None, timeout=None, name="",
    working_set_size=4, restore_from=None)``

    A distributed dictionary whose shards live in ``managers_per_node``
    manager ranks on each of ``n_nodes`` nodes (all nodes by default), or on
    each given ``policy``. ``total_mem`` bytes are split evenly between the
    managers; see ``stats`` for what counts. ``timeout`` (seconds, None: no
    limit) bounds every request; a dead manager is reported either way.
    """

    def __init__(self, managers_per_node: int = 1, n_nodes: Optional[int] = None,
                 total_mem: int = DEFAULT_TOTAL_MEM, *, policy: Policy | Sequence[Policy] | None = None,
                 timeout: Optional[float] = None, name: str = "", working_set_size: int = 4,
                 restore_from: Optional[str] = None) -> None:
        policies = self._placement(managers_per_node, n_nodes, total_mem, policy, timeout, working_set_size)
        if not policies:
            policies = [pol for pol in System().hostname_policies()[:n_nodes] for _ in range(managers_per_node)]
        n = len(policies)
        restore = _read_manifest(restore_from) if restore_from is not None else None
        self._name = name
        self._timeout = timeout
        self._pinned: Optional[int] = None
        request_bytes = config.get("MPIGROUP_DDICT_CHANNEL_BYTES")
        self._channels = []
        try:
            for _ in range(n):
                self._channels.append(RequestChannel(request_bytes))
        except SharedObjectError as exc:  # ArenaFull: MPIGROUP_ARENA_BYTES too small for the request rings
            for chan in self._channels:
                chan.destroy()
            raise DDictError(f"cannot make the request rings of {n} DDict managers: {exc}") from exc
        self._group = ProcessGroup(ignore_error_on_exit=True, name=f"ddict-{name}" if name else "ddict")
        budget = total_mem // n
        for i, pol in enumerate(policies):
            self._group.add_process(1, ProcessTemplate(
                run_manager, args=(i, n, self._channels[i], budget, working_set_size, restore), policy=pol))
        self._group.start()
        self._puids = list(self._group.puids)
        self._hosts: list[str] = [""] * n
        self._pids: list[int] = [0] * n
        try:
            for i, st in enumerate(self._fan_out(Op.STATS, range(n))):
                self._hosts[i], self._pids[i] = st["host"], st["pid"]
        except BaseException:
            self._total_mem = total_mem
            self.destroy(timeout=10)
            raise
        self._total_mem = total_mem

    @staticmethod
    def _placement(managers_per_node: Any, n_nodes: Any, total_mem: Any, policy: Any, timeout: Any,
                   working_set_size: Any) -> list[Policy]:
        """Validate the arguments; the explicit policies (or [] for "per node")."""
        if not isinstance(managers_per_node, int) or managers_per_node < 1:
            raise ValueError(f"managers_per_node must be a positive int, got {managers_per_node!r}")
        if not isinstance(total_mem, int) or total_mem < 1:
            raise ValueError(f"total_mem must be a positive number of bytes, got {total_mem!r}")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        if not isinstance(working_set_size, int) or working_set_size < 0:
            raise ValueError(f"working_set_size must be an int >= 0, got {working_set_size!r}")
        if policy is not None:
            if n_nodes is not None:
                raise ValueError("give either n_nodes or policy, not both")
            pols = list(policy) if isinstance(policy, (list, tuple)) else [policy]
            for p in pols:
                if not isinstance(p, Policy):
                    raise TypeError(f"policy must be a Policy or a list of them, got {type(p).__name__}")
            return [p for p in pols for _ in range(managers_per_node)]
        nodes = System().nnodes
        if n_nodes is not None and (not isinstance(n_nodes, int) or not 1 <= n_nodes <= nodes):
            raise ValueError(f"n_nodes must be between 1 and {nodes} (the nodes of this allocation), got {n_nodes!r}")
        return []

    # ------------------------------------------------------------ handles
    def __reduce__(self) -> tuple:
        return (_rebuild, ((self._name, self._timeout, self._pinned, self._channels, self._puids,
                            self._hosts, self._pids, self._total_mem),))

    def serialize(self) -> str:
        """A string from which ``DDict.attach`` makes a handle in another process."""
        return base64.b64encode(pickle.dumps(self, protocol=5)).decode("ascii")

    @classmethod
    def attach(cls, serialized: str) -> "DDict":
        """A handle to the DDict that ``serialize()`` described."""
        try:
            obj = pickle.loads(base64.b64decode(serialized.encode("ascii"), validate=True))
        except Exception as exc:
            raise ValueError(f"not a serialized DDict: {exc}") from None
        if not isinstance(obj, DDict):
            raise ValueError(f"not a serialized DDict: it holds a {type(obj).__name__}")
        return obj

    def manager(self, index: int) -> "DDict":
        """A handle whose every operation goes to manager ``index`` only."""
        if not isinstance(index, int) or not 0 <= index < len(self._channels):
            raise ValueError(f"manager index must be 0..{len(self._channels) - 1}, got {index!r}")
        clone = _rebuild(self.__reduce__()[1][0])
        clone._pinned = index
        return clone

    def which_manager(self, key: Any) -> int:
        """The index of the manager that holds ``key`` (for this handle)."""
        return self._route(encode_key(key))

    @property
    def managers(self) -> int:
        return len(self._channels)

    # --------------------------------------------------------- transport
    def _route(self, key: bytes) -> int:
        return self._pinned if self._pinned is not None else shard_of(key, len(self._channels))

    def _targets(self) -> range | list[int]:
        if not self._channels:
            raise DDictError(f"DDict {self._name!r} was destroyed")
        return [self._pinned] if self._pinned is not None else range(len(self._channels))

    def _deadline(self, timeout: Any = _MISSING) -> Optional[float]:
        timeout = self._timeout if timeout is _MISSING else timeout
        if timeout is None:
            return None
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0, got {timeout}")
        return time.monotonic() + timeout

    def _watch(self, managers: Iterable[int]) -> Any:
        """A ``stalled`` hook: raises DDictManagerError once one of ``managers`` has exited."""
        managers = list(managers)
        state = {"next": time.monotonic() + _LIVENESS_EVERY}

        def stalled() -> None:
            now = time.monotonic()
            if now < state["next"]:
                return
            state["next"] = now + _LIVENESS_EVERY
            self._check_alive(managers)

        return stalled

    def _check_alive(self, managers: list[int]) -> None:
        try:
            statuses = context.current().api.call("status", puids=[self._puids[m] for m in managers])
        except Exception as exc:
            raise DDictManagerError(f"cannot reach the runtime to check the DDict managers: {exc}") from exc
        for m, st in zip(managers, statuses):
            if st.get("state") == "exited":
                raise DDictManagerError(
                    f"DDict manager {m} (puid {self._puids[m]}, pid {st.get('pid')}, host {st.get('host')}) "
                    f"exited with code {st.get('exitcode')}; the keys it held are lost")

    def _send(self, m: int, op: Op, args: tuple, blobs: Sequence = (), deadline: Optional[float] = None) -> int:
        try:
            if not self._channels or not self._channels[m].exists():
                raise DDictError(f"DDict {self._name!r} was destroyed")
            _reply_channel()
        except SharedObjectError as exc:  # ArenaFull for the reply ring, LeftUniverse while exiting
            raise DDictError(f"this thread cannot make or use its DDict reply channel: {exc}") from exc
        reqid = next(_local.ids)
        frame = build_frame((int(op), reqid, _local.address) + args, blobs)  # plain ints on the wire
        try:
            self._channels[m].send(frame, deadline, self._watch([m]))
        except TimeoutError as exc:
            raise DDictTimeoutError(f"DDict manager {m} did not accept a request in time "
                                    f"(timeout {self._timeout} s)") from exc
        except SharedObjectError as exc:
            raise DDictManagerError(f"the request channel of DDict manager {m} is broken: {exc}") from exc
        return reqid

    def _recv(self, chan: Channel, deadline: Optional[float], stalled: Any) -> Optional[memoryview]:
        """The next reply body on this thread's channel (None at the deadline); DDictError subclasses only."""
        try:
            return chan.recv(deadline, stalled)
        except SharedObjectError as exc:
            raise DDictManagerError(f"this thread's DDict reply channel is broken: {exc}") from exc

    def _collect(self, pending: dict[int, int], deadline: Optional[float]) -> dict[int, tuple]:
        """Wait for the replies to ``pending`` (request id -> manager); raises on errors."""
        chan = _reply_channel()
        stalled = self._watch(pending.values())
        got: dict[int, tuple] = {}
        while len(got) < len(pending):
            body = self._recv(chan, deadline, stalled)
            if body is None:
                missing = sorted(m for r, m in pending.items() if r not in got)
                raise DDictTimeoutError(f"DDict manager(s) {missing} did not answer in time")
            (reqid, status, payload), blobs = split_frame(body)
            if reqid in pending and reqid not in got:  # anything else is the late answer to a timed-out call
                got[reqid] = (status, payload, blobs)
        for reqid, (status, payload, _) in got.items():
            if status != _OK:
                _raise_status(status, payload, pending[reqid])
        return got

    def _call(self, m: int, op: Op, args: tuple = (), blobs: Sequence = (), timeout: Any = _MISSING) -> tuple:
        deadline = self._deadline(timeout)
        reqid = self._send(m, op, args, blobs, deadline)
        return self._collect({reqid: m}, deadline)[reqid][1:]

    def _fan_out(self, op: Op, managers: Iterable[int], args: tuple = ()) -> list:
        """The same request to several managers at once; their payloads in order."""
        deadline = self._deadline()
        pending = {self._send(m, op, args, (), deadline): m for m in managers}
        got = self._collect(pending, deadline)
        return [got[r][1] for r in pending]

    # ------------------------------------------------------------ mapping
    def __setitem__(self, key: Any, value: Any) -> None:
        k = encode_key(key)
        batch = getattr(self, "_batch", None)
        if batch is not None:
            keys, blobs = batch.setdefault(self._route(k), ([], []))
            keys.append(k)
            blobs.append(encode_value(value))
            return
        self._call(self._route(k), Op.PUT, ([k],), [encode_value(value)])

    def __getitem__(self, key: Any) -> Any:
        k = encode_key(key)
        m = self._route(k)
        if self._channels and cma.enabled() and self._hosts[m] == _HOST:
            try:
                value = self._get_direct(m, k, key)
            except SharedObjectError as exc:  # reading the epoch word
                raise DDictManagerError(f"the request channel of DDict manager {m} is gone: {exc}") from exc
            if value is not _MISSING:
                return value
        _, blobs = self._call(m, Op.GET, ([k],))
        if not blobs:
            raise DDictKeyError(key)
        return decode_value(blobs[0])

    def _get_direct(self, m: int, k: bytes, key: Any) -> Any:
        """``self[k]`` on manager ``m`` of this node, copying a large value straight
        from the manager's memory; _MISSING: ask through the ring instead.

        Where the value lies is remembered: while the manager's epoch has not
        moved (no request since that may have freed it), the copy needs no request.
        """
        chan = self._channels[m]
        slot = (*chan.ref[:2], k)
        where = _direct_cache.get(slot)
        if where is not None and chan.exists() and chan.epoch() == where[2]:
            value = self._read_direct(m, *where)
            if value is not _MISSING:
                return value
        where, blobs = self._call(m, Op.GET_DIRECT, (k,))
        if where is None:  # small or missing: answered in the reply itself
            if not blobs:
                raise DDictKeyError(key)
            return decode_value(blobs[0])
        if len(_direct_cache) >= _DIRECT_CACHE:
            _direct_cache.clear()
        _direct_cache[slot] = where
        return self._read_direct(m, *where)

    def _read_direct(self, m: int, address: int, nbytes: int, epoch: int) -> Any:
        """The value whose blob manager ``m`` holds at ``address``, or _MISSING if the
        copy cannot be trusted (the manager may have freed that blob meanwhile)."""
        buf = cma.read(self._pids[m], address, nbytes)
        if buf is None or self._channels[m].epoch() != epoch:
            cma.Counters.retries += 1
            return _MISSING
        cma.Counters.reads += 1
        return decode_value(memoryview(buf))

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except DDictKeyError:
            return default

    def __delitem__(self, key: Any) -> None:
        k = encode_key(key)
        found, _ = self._call(self._route(k), Op.DELETE, (k,))
        if not found:
            raise DDictKeyError(key)

    def __contains__(self, key: Any) -> bool:
        k = encode_key(key)
        return self._call(self._route(k), Op.CONTAINS, (k,))[0]

    def __len__(self) -> int:
        return sum(self._fan_out(Op.LEN, self._targets()))

    def __iter__(self) -> Iterator[Any]:
        for m in self._targets():
            for k in self._call(m, Op.KEYS)[0]:
                yield decode_key(k)

    def keys(self) -> list:  # type: ignore[override]
        """Every key, from all shards (a snapshot list)."""
        return [decode_key(k) for keys in self._fan_out(Op.KEYS, self._targets()) for k in keys]

    def _items(self, managers: Iterable[int]) -> list[tuple[Any, Any]]:
        deadline = self._deadline()
        pending = {self._send(m, Op.ITEMS, (), (), deadline): m for m in managers}
        got = self._collect(pending, deadline)
        out = []
        for reqid in pending:
            _, keys, blobs = got[reqid]
            out.extend((decode_key(k), decode_value(b)) for k, b in zip(keys, blobs))
        return out

    def items(self) -> list:  # type: ignore[override]
        """Every (key, value) pair, from all shards (a snapshot list)."""
        return self._items(self._targets())

    def values(self) -> list:  # type: ignore[override]
        """Every value, from all shards (a snapshot list)."""
        return [v for _, v in self._items(self._targets())]

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        k = encode_key(key)
        found, blobs = self._call(self._route(k), Op.POP, (k,))
        if found:
            return decode_value(blobs[0])
        if default is _MISSING:
            raise DDictKeyError(key)
        return default

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return some (key, value) pair; KeyError if the DDict is empty."""
        for m in self._targets():
            key, blobs = self._call(m, Op.POPITEM)
            if key is not None:
                return decode_key(key), decode_value(blobs[0])
        raise DDictKeyError("popitem(): the DDict is empty")

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """``d[key]`` if present, else store and return ``default`` (atomically)."""
        k = encode_key(key)
        _, blobs = self._call(self._route(k), Op.SETDEFAULT, (k,), [encode_value(default)])
        return decode_value(blobs[0])

    def clear(self) -> None:
        self._fan_out(Op.CLEAR, self._targets())

    def update(self, other: Any = (), /, **kwds: Any) -> None:  # type: ignore[override]
        """As ``dict.update``, sent as one batch per manager."""
        pairs = list(other.items() if isinstance(other, Mapping) else other)  # keys need not be hashable
        pairs.extend(kwds.items())
        self.put_many(pairs)

    # -------------------------------------------------------------- batch
    def put_many(self, mapping: Mapping[Any, Any] | Iterable[tuple[Any, Any]], timeout: Any = _MISSING) -> None:
        """Store many pairs with one request per manager (all sent before any answer is awaited).

        Each manager stores its share whole or not at all: DDictFullError names
        the managers whose share did not fit, and their keys keep their old values.
        """
        pairs = mapping.items() if isinstance(mapping, Mapping) else mapping
        per: dict[int, tuple[list, list]] = {}
        for key, value in pairs:
            k = encode_key(key)
            keys, blobs = per.setdefault(self._route(k), ([], []))
            keys.append(k)
            blobs.append(encode_value(value))
        self._put_grouped(per, timeout)

    def _put_grouped(self, per: dict[int, tuple[list, list]], timeout: Any = _MISSING) -> None:
        deadline = self._deadline(timeout)
        pending = {self._send(m, Op.PUT, (keys,), blobs, deadline): m for m, (keys, blobs) in per.items()}
        self._collect_all(pending, deadline)

    def _collect_all(self, pending: dict[int, int], deadline: Optional[float]) -> None:
        """Like _collect, but reports every manager whose share failed, after all answered."""
        chan = _reply_channel()
        stalled = self._watch(pending.values())
        failed: list[str] = []
        left = set(pending)
        while left:
            body = self._recv(chan, deadline, stalled)
            if body is None:
                raise DDictTimeoutError(f"DDict manager(s) {sorted(pending[r] for r in left)} did not answer in time")
            (reqid, status, payload), _ = split_frame(body)
            if reqid in left:
                left.discard(reqid)
                if status == _FULL:
                    failed.append(f"manager {pending[reqid]}: {payload}")
                elif status != _OK:
                    _raise_status(status, payload, pending[reqid])
        if failed:
            raise DDictFullError("batch not stored by " + "; ".join(failed) + " (other managers stored theirs)")

    def get_many(self, keys: Sequence[Any], default: Any = _MISSING, timeout: Any = _MISSING) -> list:
        """The values of ``keys``, in order, with one request per manager.

        A missing key raises DDictKeyError unless ``default`` is given.
        """
        keys = list(keys)
        encoded = [encode_key(k) for k in keys]
        per: dict[int, list[int]] = {}
        if self._pinned is not None or len(self._channels) == 1:
            per[self._route(b"")] = list(range(len(keys)))
        else:
            for i, k in enumerate(encoded):
                per.setdefault(self._route(k), []).append(i)
        deadline = self._deadline(timeout)
        pending = {self._send(m, Op.GET, ([encoded[i] for i in idx],), (), deadline): m for m, idx in per.items()}
        got = self._collect(pending, deadline)
        out: list = [None] * len(keys)
        for reqid, m in pending.items():
            _, found, blobs = got[reqid]
            if found is None:  # every key was there
                for i, blob in zip(per[m], blobs):
                    out[i] = decode_value(blob)
                continue
            it = iter(blobs)
            for i, ok in zip(per[m], found):
                if ok:
                    out[i] = decode_value(next(it))
                elif default is _MISSING:
                    raise DDictKeyError(keys[i])
                else:
                    out[i] = default
        return out

    def start_batch_put(self) -> None:
        """Buffer ``d[k] = v`` in this handle (serialized at once) until ``end_batch_put()``
        sends them, one request per manager."""
        if getattr(self, "_batch", None) is not None:
            raise DDictError("a batch put is already open on this handle")
        self._batch: Optional[dict] = {}

    def end_batch_put(self) -> None:
        """Send the buffered puts (see ``put_many`` for errors)."""
        batch = getattr(self, "_batch", None)
        if batch is None:
            raise DDictError("end_batch_put() without start_batch_put()")
        self._batch = None
        self._put_grouped(batch)

    # ------------------------------------------------------------ special
    def fetch_add(self, key: Any, n: int = 1) -> Any:
        """Atomically add ``n`` to the number stored at ``key`` (0 if absent); returns the old value."""
        k = encode_key(key)
        return self._call(self._route(k), Op.FETCH_ADD, (k, n))[0]

    def wait_for(self, key: Any, timeout: Optional[float] = None) -> Any:
        """Block until ``key`` exists (written by any process); returns its value.

        DDictTimeoutError after ``timeout`` seconds (None: wait as long as it takes).
        """
        k = encode_key(key)
        _, blobs = self._call(self._route(k), Op.WAIT, (k, timeout), timeout=timeout)
        return decode_value(blobs[0])

    def local_keys(self) -> list:
        """The keys held by managers on this node."""
        here = socket.gethostname()
        mine = [m for m in self._targets() if self._hosts[m] == here]
        return [decode_key(k) for keys in self._fan_out(Op.KEYS, mine) for k in keys] if mine else []

    # -------------------------------------------------------- checkpoints
    def checkpoint(self) -> int:
        """Start a new checkpoint on every manager; returns its id. Call it at a quiet point:
        writes racing with it may land on either side of it on some shards."""
        return max(self._fan_out(Op.CHECKPOINT, self._targets()))

    def rollback(self) -> int:
        """Undo every write since the current checkpoint began; returns the previous checkpoint id."""
        return min(self._fan_out(Op.ROLLBACK, self._targets()))

    @property
    def checkpoint_id(self) -> int:
        return max(st["checkpoint_id"] for st in self._fan_out(Op.STATS, self._targets()))

    def persist(self, path: str) -> str:
        """Write the current state under directory ``path`` (one file per manager, then
        ``manifest.json`` last); ``DDict(..., restore_from=path)`` loads it."""
        path = os.path.abspath(path)
        os.makedirs(path, exist_ok=True)
        n = len(self._channels)
        stats = self._fan_out(Op.STATS, range(n))
        counts = self._fan_out_args(Op.PERSIST, [(os.path.join(path, _shard_file(i, n)),) for i in range(n)])
        manifest = {"format": "mpigroup-ddict", "version": 1, "name": self._name, "managers": n,
                    "checkpoint_id": max(st["checkpoint_id"] for st in stats),
                    "shards": [{"file": _shard_file(i, n), "entries": counts[i]} for i in range(n)],
                    "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        tmp = os.path.join(path, f".{MANIFEST}.tmp-{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(path, MANIFEST))
        return path

    def _fan_out_args(self, op: Op, args: list[tuple]) -> list:
        deadline = self._deadline()
        pending = {self._send(m, op, a, (), deadline): m for m, a in enumerate(args)}
        got = self._collect(pending, deadline)
        return [got[r][1] for r in pending]

    @property
    def stats(self) -> list[dict]:
        """Per manager: manager (its index), host, pid, keys, bytes_used (encoded keys + serialized
        values, rollback copies included), bytes_budget, bytes_for_rollback, checkpoint_id."""
        return self._fan_out(Op.STATS, self._targets())

    # ----------------------------------------------------------- lifecycle
    def destroy(self, timeout: float = 30.0) -> None:
        """Stop the managers and free their memory and channels; the handle is unusable after."""
        if not self._channels:
            return
        try:
            deadline = time.monotonic() + timeout
            pending = {}
            for m in range(len(self._channels)):
                try:
                    pending[self._send(m, Op.STOP, (), (), deadline)] = m
                except DDictError:
                    pass  # already dead or stuck: killed below
            try:
                self._collect(pending, deadline)
            except DDictError:
                pass
        finally:
            self._stop_group()
            for chan in self._channels:
                chan.destroy()
            self._channels = []

    def _stop_group(self) -> None:
        group = getattr(self, "_group", None)
        if group is None:
            return
        self._group = None
        try:
            group.join(timeout=10)
        except Exception:
            group.kill()
            group.join(timeout=10)

    def __enter__(self) -> "DDict":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.destroy()

    def __repr__(self) -> str:
        pinned = "" if self._pinned is None else f", pinned to manager {self._pinned}"
        return f"<DDict {self._name or ''} {len(self._channels)} managers{pinned}>"


def _rebuild(state: tuple) -> DDict:
    obj = DDict.__new__(DDict)
    (obj._name, obj._timeout, obj._pinned, obj._channels, obj._puids, obj._hosts, obj._pids,
     obj._total_mem) = state
    obj._channels = list(obj._channels)
    obj._group = None
    return obj


def _raise_status(status: int, payload: Any, m: int) -> None:
    """Raise the DDictError a manager's non-OK answer stands for."""
    if status == Status.FULL:
        raise DDictFullError(f"DDict manager {m}: {payload}")
    if status == Status.NO_CHECKPOINT:
        raise DDictError(f"rollback: {payload}")
    if status == Status.ERROR:
        exc_type, message, tb, host, pid = payload
        if exc_type == "ShardFull":
            raise DDictFullError(f"DDict manager {m}: {message}")
        remote = RemoteError(exc_type, message, tb, host=host)
        raise DDictError(f"DDict manager {m} (pid {pid}, host {host}) failed: {exc_type}: {message}") from remote
    raise DDictError(f"DDict manager {m} answered with unknown status {status}")


def _read_manifest(path: str) -> dict:
    """What managers need to restore from ``path``; a clear error if it is not a complete persist."""
    path = os.path.abspath(path)
    mf = os.path.join(path, MANIFEST)
    try:
        with open(mf) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise DDictError(f"restore_from={path}: no {MANIFEST} (not a DDict persist, or one that did not finish)") from None
    except ValueError as exc:
        raise DDictError(f"restore_from={path}: {MANIFEST} is not valid JSON ({exc})") from None
    if manifest.get("format") != "mpigroup-ddict" or manifest.get("version") != 1:
        raise DDictError(f"restore_from={path}: {MANIFEST} is not a version-1 mpigroup DDict manifest")
    files = [os.path.join(path, s["file"]) for s in manifest["shards"]]
    for f in files:
        if not os.path.isfile(f):
            raise DDictError(f"restore_from={path}: shard file {f} is missing")
    return {"path": path, "files": files, "managers": manifest["managers"],
            "checkpoint_id": manifest.get("checkpoint_id", 0)}
