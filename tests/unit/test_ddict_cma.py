"""The cross-memory-attach reader alone (no MPI): a child process's buffer, and the failures."""
import subprocess
import sys

import numpy as np
import pytest

from mpigroup.ddict import cma

CHILD = ("import numpy as np, sys\n"
         "a = np.arange(200_000, dtype=np.uint32)\n"
         "print(a.ctypes.data, a.nbytes, flush=True)\n"
         "sys.stdin.read()\n")


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    address, nbytes = map(int, proc.stdout.readline().split())
    yield proc, address, nbytes
    proc.stdin.close()
    proc.wait(10)


def test_reads_another_process_memory_in_one_copy(child):
    assert cma.enabled()
    proc, address, nbytes = child
    got = cma.read(proc.pid, address, nbytes)
    assert got is not None and got.nbytes == nbytes
    assert np.array_equal(got.view(np.uint32), np.arange(200_000, dtype=np.uint32))
    part = cma.read(proc.pid, address + 4 * 1000, 40)
    assert list(part.view(np.uint32)) == list(range(1000, 1010))


def test_a_missing_process_or_unmapped_address_gives_none(child):
    proc, address, nbytes = child
    assert cma.read(proc.pid, 8, 4096) is None  # page zero is never mapped
    assert cma.read(2 ** 22 + 12345, address, nbytes) is None  # no such pid (above pid_max's default)
    assert cma.enabled()  # neither failure is a refusal: direct reads stay on


def test_address_of_names_the_first_byte():
    a = np.arange(10, dtype=np.uint8)
    assert cma.address_of(memoryview(a)) == a.ctypes.data
    assert cma.address_of(memoryview(a)[3:]) == a.ctypes.data + 3
