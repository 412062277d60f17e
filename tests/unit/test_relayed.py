"""The pure parts of shared objects across hosts: the head's relayed-operation server,
the wait conditions, owner idents and the relay frame marks (no MPI here)."""
from __future__ import annotations

import threading
import time

import pytest

from mpigroup.runtime import relay
from mpigroup.runtime.protocol import TAG_EVENT, TAG_REPLY, TAG_REQUEST
from mpigroup.sync import owners, relayed


class Replies:
    """Collects (ok, value) answers; waits for them with a deadline."""

    def __init__(self) -> None:
        self.got: list = []
        self.cond = threading.Condition()

    def __call__(self, ok, value) -> None:
        with self.cond:
            self.got.append((ok, value))
            self.cond.notify_all()

    def wait(self, n: int, timeout: float = 10.0) -> list:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.got) >= n, timeout), self.got
            return list(self.got)


def counter_apply(state: dict):
    """An apply function over a dict of words: ("set", k, v), ("get", k), ("inc", k)."""

    def apply(ops):
        result = None
        for op in ops:
            if op[0] == "set":
                state[op[1]] = op[2]
            elif op[0] == "get":
                result = state.get(op[1], 0)
            elif op[0] == "inc":
                state[op[1]] = state.get(op[1], 0) + 1
                result = state[op[1]]
            elif op[0] == relayed.RELEASE:
                state["released"] = state.get("released", 0) + 1
            elif op[0] == "boom":
                raise KeyError("boom")
        return result

    return apply


def test_posted_operations_are_applied_before_a_later_answered_one():
    state: dict = {}
    server = relayed.RelayedServer(counter_apply(state))
    replies = Replies()
    for i in range(100):
        server.submit([("set", "x", i)], None, 0.0, None)  # posted: no answer
    server.submit([("get", "x")], None, 0.0, replies)
    assert replies.wait(1) == [(True, 99)]


def test_a_parked_wait_is_answered_when_its_condition_holds():
    state = {"flag": 0}
    server = relayed.RelayedServer(counter_apply(state))
    replies = Replies()
    server.submit([("get", "flag")], (relayed.DIFFERS, 0), 5.0, replies)
    time.sleep(0.05)
    assert replies.got == []  # parked, not answered
    server.submit([("set", "flag", 7)], None, 0.0, None)
    assert replies.wait(1) == [(True, 7)]


def test_a_parked_wait_ends_at_its_park_time_with_the_last_result():
    server = relayed.RelayedServer(counter_apply({}))
    replies = Replies()
    t0 = time.monotonic()
    server.submit([("get", "never")], (relayed.TRUE,), 0.2, replies)
    assert replies.wait(1) == [(True, 0)]
    assert time.monotonic() - t0 >= 0.19


def test_a_failing_operation_answers_with_its_exception_and_the_server_goes_on():
    server = relayed.RelayedServer(counter_apply({}))
    replies = Replies()
    server.submit([("boom",)], None, 0.0, replies)
    server.submit([("inc", "n")], None, 0.0, replies)
    got = replies.wait(2)
    assert got[0][0] is False and isinstance(got[0][1], KeyError)
    assert got[1] == (True, 1)


def test_an_answer_that_cannot_be_sent_does_not_stop_the_server():
    """A requester whose host was lost: sending its answer raises (MPI_ERR_PROC_FAILED on the head);
    the one thread that serves every process's operations must go on serving the others."""
    state = {"flag": 0}
    server = relayed.RelayedServer(counter_apply(state))

    def lost_host(ok, value):
        raise RuntimeError("MPI_ERR_PROC_FAILED: Process Failure")

    server.submit([("inc", "n")], None, 0.0, lost_host)  # answered at once: the send fails
    server.submit([("get", "flag")], (relayed.DIFFERS, 0), 5.0, lost_host)  # parked, then fails
    server.submit([("boom",)], None, 0.0, lost_host)  # an error answer that cannot be sent either
    server.submit([("set", "flag", 1)], None, 0.0, None)
    replies = Replies()
    server.submit([("get", "n")], None, 0.0, replies)
    assert replies.wait(1) == [(True, 1)]
    assert server._thread.is_alive()


def test_reference_drops_in_a_parked_wait_are_applied_once():
    state: dict = {}
    server = relayed.RelayedServer(counter_apply(state))
    replies = Replies()
    server.submit([(relayed.RELEASE, 64, 1), ("get", "flag")], (relayed.TRUE,), 0.1, replies)
    replies.wait(1)
    assert state["released"] == 1


@pytest.mark.parametrize("result, until, met", [
    (0, (relayed.EQUALS, 0), True), (5, (relayed.EQUALS, 0), False),
    (1, (relayed.DIFFERS, 0), True), (True, (relayed.TRUE,), True), (False, (relayed.TRUE,), False),
    (("empty", (0, 0)), (relayed.RING_READY,), False), ((None, (0, 0)), (relayed.RING_READY,), False),
    ((False, (0, 0)), (relayed.RING_READY,), False), ((b"frame", (8, 8)), (relayed.RING_READY,), True),
    ((True, (8, 0)), (relayed.RING_READY,), True),
])
def test_wait_conditions(result, until, met):
    assert relayed.met(result, until) is met


def test_an_unknown_wait_condition_is_an_error():
    with pytest.raises(ValueError, match="unknown wait condition"):
        relayed.met(1, ("sometimes",))


def test_owner_idents_name_pids_and_relayed_puids_apart():
    assert not owners.is_relayed(4_194_303)  # the largest Linux pid
    assert owners.is_relayed(owners.RELAYED_BASE + 7)
    assert owners.describe(owners.RELAYED_BASE + 7) == "puid 7 on another host"
    assert owners.describe(1234) == "pid 1234"


def test_relay_frames_say_whether_they_open_or_close_a_wait():
    asks = relay.encode(TAG_REQUEST, (5, "rma", {}))
    posted = relay.encode(TAG_REQUEST, (0, "rma", {}))
    answer = relay.encode(TAG_REPLY, (5, True, 1))
    event = relay.encode(TAG_EVENT, ("x",))
    assert asks[:1] == relay.ASKS and answer[:1] == relay.ANSWERS
    assert posted[:1] == relay.OTHER and event[:1] == relay.OTHER
    assert relay.decode(asks) == (TAG_REQUEST, (5, "rma", {}))
    assert relay.decode(answer) == (TAG_REPLY, (5, True, 1))
