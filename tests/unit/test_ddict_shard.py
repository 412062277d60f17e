"""DDict pure logic: key encoding, sharding, one shard's budget, checkpoints and files."""
import os
import subprocess
import sys

import pytest

from mpigroup.ddict.keys import decode_key, encode_key, shard_of
from mpigroup.ddict.shard import NoCheckpoint, ShardFull, ShardStore, read_entries


def test_equal_keys_encode_alike_whatever_the_object_identity():
    s = "abc" * 50
    other = "".join(list(s))
    assert s is not other
    assert encode_key((s, s)) == encode_key((s, other))
    assert encode_key(frozenset({"a", "b", ("c", frozenset({3, 1}))})) == \
        encode_key(frozenset({("c", frozenset({1, 3})), "b", "a"}))
    assert encode_key(1) != encode_key(1.0) != encode_key(True)
    assert decode_key(encode_key(("x", 2, frozenset({"q"})))) == ("x", 2, frozenset({"q"}))


def test_sharding_is_the_same_in_processes_with_other_hash_seeds():
    code = ("from mpigroup.ddict.keys import encode_key, shard_of;"
            "print([shard_of(encode_key(k), 7) for k in ['a', ('b', 1), frozenset({'x', 'y', 'z'}), 10**30]])")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(outs) == 1
    here = [shard_of(encode_key(k), 7) for k in ['a', ('b', 1), frozenset({'x', 'y', 'z'}), 10**30]]
    assert outs.pop().strip() == str(here)


def test_unpicklable_key_is_a_type_error():
    import threading
    with pytest.raises(TypeError, match="picklable"):
        encode_key(threading.Lock())


def test_budget_is_exact_and_a_refused_write_changes_nothing():
    st = ShardStore(budget=100, working_set_size=0)
    st.put_many([(b"k1", b"x" * 48)])           # 2 + 48
    assert st.used == 50
    st.put_many([(b"k2", b"y" * 48)])           # exactly at the budget
    assert st.used == 100
    with pytest.raises(ShardFull):
        st.put_many([(b"k3", b"z")])
    with pytest.raises(ShardFull):
        st.put_many([(b"k1", b"x" * 49)])       # growing an existing value by one byte
    assert st.get(b"k1") == b"x" * 48 and st.used == 100 and len(st) == 2
    st.put_many([(b"k1", b"x" * 10)])           # shrinking is always allowed
    assert st.used == 62


def test_a_batch_that_does_not_fit_stores_nothing():
    st = ShardStore(budget=60, working_set_size=0)
    with pytest.raises(ShardFull):
        st.put_many([(b"a", b"1" * 20), (b"b", b"2" * 20), (b"c", b"3" * 20)])
    assert len(st) == 0 and st.used == 0
    st.put_many([(b"a", b"1" * 20), (b"a", b"2" * 30)])  # the last write of a key counts
    assert st.get(b"a") == b"2" * 30 and st.used == 31


def test_checkpoint_and_rollback_restore_the_earlier_state_and_bytes():
    st = ShardStore(budget=10_000, working_set_size=2)
    st.put_many([(b"a", b"1"), (b"b", b"2")])
    used0 = st.used
    assert st.checkpoint() == 1
    st.put_many([(b"a", b"100"), (b"c", b"3")])
    st.delete(b"b")
    assert st.get(b"a") == b"100" and b"b" not in st
    assert st.rollback() == 0
    assert dict(st.items()) == {b"a": b"1", b"b": b"2"}
    assert st.used == used0 and st.stats()["bytes_for_rollback"] == 0
    with pytest.raises(NoCheckpoint):
        st.rollback()


def test_only_working_set_size_rollbacks_are_kept_and_their_bytes_count():
    st = ShardStore(budget=10_000, working_set_size=1)
    st.put_many([(b"a", b"1")])
    st.checkpoint()
    st.put_many([(b"a", b"22")])
    assert st.used == (1 + 2) + (1 + 1)  # the new value and the kept old one
    st.checkpoint()                        # drops the first log
    assert st.used == 3
    st.put_many([(b"a", b"333")])
    assert st.rollback() == 1 and st.get(b"a") == b"22"
    with pytest.raises(NoCheckpoint):
        st.rollback()


def test_rollback_copies_count_against_the_budget():
    st = ShardStore(budget=20, working_set_size=4)
    st.put_many([(b"a", b"x" * 9)])  # 10 bytes
    st.checkpoint()
    with pytest.raises(ShardFull, match="kept for rollback|needs"):
        st.put_many([(b"a", b"y" * 10)])  # needs 11 more: the old 10 stay for rollback
    st.delete(b"a")                         # moving it to the log costs nothing
    assert st.used == 10 and len(st) == 0


def test_shard_file_round_trip_and_bad_files(tmp_path):
    st = ShardStore(budget=1 << 20)
    st.put_many([(encode_key(i), bytes([i]) * i) for i in range(50)])
    path = str(tmp_path / "s.bin")
    assert st.write(path) == 50
    assert dict(read_entries(path)) == dict(st.items())
    (tmp_path / "bad.bin").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a DDict shard"):
        list(read_entries(str(tmp_path / "bad.bin")))
    data = open(path, "rb").read()
    (tmp_path / "cut.bin").write_bytes(data[:-3])
    with pytest.raises(ValueError, match="truncated"):
        list(read_entries(str(tmp_path / "cut.bin")))
