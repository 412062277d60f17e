"""The pure modules of mpigroup.sync: the arena allocator and the frame serializer (no MPI)."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from mpigroup.errors import ArenaFull, MPIGroupError, SharedObjectError
from mpigroup.sync import serialize
from mpigroup.sync.arena import ALIGN, Arena


# ------------------------------------------------------------------ arena
def test_arena_blocks_are_aligned_first_fit_and_skip_the_reserved_head():
    arena = Arena(4096)
    a = arena.allocate(1)
    b = arena.allocate(65)
    c = arena.allocate(64)
    assert (a, b, c) == (ALIGN, 2 * ALIGN, 4 * ALIGN)  # 1 -> 64 bytes, 65 -> 128 bytes
    assert arena.bytes_used == 64 + 128 + 64
    assert arena.high_water == c + 64


def test_arena_free_reuses_the_first_hole_that_fits():
    arena = Arena(4096)
    a, b, c = arena.allocate(64), arena.allocate(128), arena.allocate(64)
    arena.free(b)
    assert arena.allocate(200) > c  # the 128-byte hole is too small
    assert arena.allocate(100) == b  # this one fits it
    arena.free(a)
    assert arena.allocate(0) == a  # zero bytes still take one aligned block


def test_arena_coalesces_both_neighbours():
    arena = Arena(64 * 5)  # four usable blocks of 64 after the reserved one
    blocks = [arena.allocate(64) for _ in range(4)]
    with pytest.raises(ArenaFull):
        arena.allocate(1)
    arena.free(blocks[0])
    arena.free(blocks[2])
    with pytest.raises(ArenaFull):
        arena.allocate(128)  # two free blocks, not adjacent
    arena.free(blocks[1])  # joins the left and the right hole
    assert arena.allocate(192) == blocks[0]
    assert arena.bytes_used == 192 + 64


def test_arena_full_is_a_shared_object_error_and_a_memory_error():
    arena = Arena(1024)
    with pytest.raises(ArenaFull) as info:
        arena.allocate(2048)
    assert isinstance(info.value, MemoryError) and isinstance(info.value, SharedObjectError)
    assert isinstance(info.value, MPIGroupError)
    assert "MPIGROUP_ARENA_BYTES" in str(info.value)


def test_arena_rejects_bad_sizes_and_double_free():
    with pytest.raises(ValueError):
        Arena(ALIGN)
    arena = Arena(1024)
    off = arena.allocate(10)
    arena.free(off)
    with pytest.raises(KeyError):
        arena.free(off)
    assert arena.bytes_used == 0 and arena.high_water == ALIGN


# -------------------------------------------------------------- serialize
def _frame(obj, plain=False) -> bytes:
    return b"".join(bytes(p.cast("B") if p.ndim != 1 or p.format != "B" else p) for p in serialize.dumps(obj, plain))


def _round_trip(obj, plain=False):
    frame = bytearray(_frame(obj, plain))
    assert serialize.body_length(frame) == len(frame) - 8
    return serialize.loads(memoryview(frame)[8:])


@pytest.mark.parametrize("obj", [None, 0, -7, 3.5, "text", b"bytes", ("a", [1, 2], {"k": {1, 2}}), list(range(1000))])
def test_plain_objects_round_trip_in_one_piece(obj):
    pieces = serialize.dumps(obj)
    assert len(pieces) == 1
    assert serialize.frame_size(pieces) == pieces[0].nbytes
    assert _round_trip(obj) == obj
    assert _round_trip(obj, plain=True) == obj


def test_numpy_arrays_travel_out_of_band_and_come_back_as_views():
    a = np.arange(100_000, dtype=np.float64)
    pieces = serialize.dumps({"a": a, "n": 1})
    assert len(pieces) == 3  # header with the lengths, the pickle, the array's buffer
    assert pieces[2].nbytes == a.nbytes
    assert np.shares_memory(np.frombuffer(pieces[2], np.float64), a)  # not copied on the way out
    assert serialize.frame_size(pieces) == sum(p.nbytes for p in pieces)
    frame = bytearray(_frame({"a": a, "n": 1}))
    body = memoryview(frame)[8:]
    out = serialize.loads(body)
    assert out["n"] == 1 and np.array_equal(out["a"], a)
    assert np.shares_memory(out["a"], np.frombuffer(frame, np.uint8))  # a view of the received bytes


def test_several_buffers_and_non_contiguous_arrays():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    b = np.arange(20, dtype=np.uint8)[::2]  # not contiguous: pickled in band
    c = bytearray(b"x" * 1000)
    out = _round_trip([a, b, pickle.PickleBuffer(c)])
    assert np.array_equal(out[0], a) and np.array_equal(out[1], b)
    assert bytes(out[2]) == bytes(c)


def test_main_objects_and_lambdas_go_by_value():
    f = _round_trip(lambda x: x + 1)
    assert f(1) == 2

    class Local:
        value = 5

    assert _round_trip(Local).value == 5
    assert b"__main__" not in serialize.pickle_value(1)


def test_unpicklable_objects_raise_type_error_in_the_caller():
    import threading

    with pytest.raises(TypeError, match="cannot be pickled"):
        serialize.dumps(threading.Lock())


# ---------------------------------------------------------- lazy import
def test_pure_modules_load_no_mpi_and_change_no_environment():
    code = ("import os, sys; before = dict(os.environ); import mpigroup.sync.serialize, mpigroup.sync.arena; "
            "print('mpi4py.MPI' in sys.modules, dict(os.environ) == before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


def test_package_names_are_loaded_on_first_use():
    code = ("import sys; import mpigroup.sync as s; assert 'mpi4py.MPI' not in sys.modules; "
            "from mpigroup.sync import LockOwnerDied, ObjectGone, QueueBroken, ArenaFull, LeftUniverse; "
            "assert 'mpi4py.MPI' not in sys.modules; from mpigroup.sync import Queue, Event, Ring; "
            "import mpigroup.errors as e; assert LockOwnerDied is e.LockOwnerDied and ObjectGone is e.ObjectGone; "
            "print('mpi4py.MPI' in sys.modules, Queue.__module__, Ring.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "mpigroup.sync.queues", "mpigroup.sync.ring"]
