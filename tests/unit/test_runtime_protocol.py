"""The runtime's typed messages, request table, head API and status files (no MPI)."""
import pickle
import threading
import time

import pytest

from mpigroup.base.waiting import Backoff
from mpigroup.errors import HeadUnreachable, MPIGroupError, ProtocolError, RemoteError
from mpigroup.runtime import requests
from mpigroup.runtime.commands import (PMI_PYTHON_MODULE, SHIM_MODULE, WORKER_MODULE, collect_status_files,
                                       decode_status, exec_rank_command, python_rank_command)
from mpigroup.runtime.context import AgentRole, Role, RuntimeContext
from mpigroup.runtime.head_api import HeadAPI, RemoteHeadAPI
from mpigroup.runtime.protocol import (TAG_REPLY, TAG_REQUEST, Exited, Finished, MemberState, MemberStatus,
                                       Output, PidKnown, Started)
from mpigroup.runtime.requests import Op


def _status(state=MemberState.EXITED, exitcode=3, error=None):
    return MemberStatus(puid=4, state=state, pid=1234, host="h1", rank=2, exitcode=exitcode, error=error)


def test_member_state_compares_with_the_old_strings():
    assert MemberState.EXITED == "exited" and MemberState("running") is MemberState.RUNNING
    assert pickle.loads(pickle.dumps(MemberState.PENDING)) is MemberState.PENDING


def test_member_status_attributes_and_dict_spelling():
    st = _status()
    assert st.exited and st.failed and st.pid == 1234
    assert st["pid"] == 1234 and st.get("state") == "exited" and st.get("nope", 7) == 7
    with pytest.raises(KeyError):
        st["nope"]
    with pytest.raises(Exception):  # frozen
        st.pid = 1
    assert not _status(exitcode=0).failed and not _status(MemberState.RUNNING, None).exited
    assert pickle.loads(pickle.dumps(st)) == st


def test_member_status_remote_error():
    assert _status().remote_error() is None
    err = _status(error=("ValueError", "bad", "Traceback ...")).remote_error()
    assert isinstance(err, RemoteError) and (err.exc_type, err.puid, err.rank, err.host) == ("ValueError", 4, 2, "h1")


def test_events_are_tuples_with_names():
    assert Started(5, "h", "ns") == (5, "h", "ns") and Started(5, "h").nspace == "" and Output("stdout", b"x").data == b"x"
    assert Finished(1, None).exitcode == 1
    assert pickle.loads(pickle.dumps(Exited("s1", 0, 137))) == Exited("s1", 0, 137, None)


def test_op_values_are_the_wire_names():
    assert {op.value for op in Op} <= set(requests.operations())
    assert requests.op_name(Op.STATUS) == "status" and requests.op_name("status") == "status"


class _FakeHead:
    def __init__(self):
        self.asked = []

    def new_puids(self, n):
        self.asked.append(n)
        return list(range(n))


def test_handle_request_takes_op_or_name():
    head = _FakeHead()
    assert requests.handle_request(head, Op.NEW_PUIDS, {"n": 2}) == [0, 1]
    assert requests.handle_request(head, "new_puids", {"n": 1}) == [0]
    assert HeadAPI(head).call(Op.NEW_PUIDS, n=3) == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown head operation 'nope'"):
        requests.handle_request(head, "nope", {})


class _FakeComm:
    """The head's end of a worker's channel: answers with the replies given."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.sent = []

    def send(self, obj, dest, tag):
        assert tag == TAG_REQUEST
        self.sent.append(obj)

    def Iprobe(self, source, tag):  # noqa: N802
        assert tag == TAG_REPLY
        return bool(self.replies)

    def recv(self, source, tag):
        return self.replies.pop(0)


def test_remote_head_api_sends_the_plain_name_and_skips_late_replies():
    comm = _FakeComm([(0, True, "late"), (1, True, [7])])
    assert RemoteHeadAPI(comm).call(Op.NEW_PUIDS, n=1) == [7]
    assert comm.sent == [(1, "new_puids", {"n": 1})] and type(comm.sent[0][1]) is str


def test_remote_head_api_raises_what_the_head_raised():
    comm = _FakeComm([(1, False, RemoteError("TypeError", "x", "tb", host="h"))])
    with pytest.raises(RemoteError, match="TypeError: x"):
        RemoteHeadAPI(comm).call("status", puids=[1])


def test_remote_head_api_errors():
    with pytest.raises(ProtocolError, match="reply 5 came for request 1"):
        RemoteHeadAPI(_FakeComm([(5, True, None)])).call("status", puids=[])
    t0 = time.monotonic()
    with pytest.raises(HeadUnreachable, match="did not answer 'status' within 0.05 s"):
        RemoteHeadAPI(_FakeComm([])).call(Op.STATUS, timeout=0.05, puids=[])
    assert time.monotonic() - t0 < 2
    assert issubclass(ProtocolError, MPIGroupError) and issubclass(HeadUnreachable, RuntimeError)


def test_remote_wait_change_doubles_and_resets():
    api = RemoteHeadAPI(_FakeComm([]))
    for _ in range(3):
        api.wait_change(0.0)
    assert api._backoff.delay == pytest.approx(400e-6)
    api.reset_wait()
    assert api._backoff.delay == pytest.approx(50e-6)


def test_status_files_become_messages(tmp_path):
    (tmp_path / "s1.0.exit").write_text('137\n["ValueError", "bad", "tb"]')
    (tmp_path / "s1.1.pid").write_text('{"pid": 42, "host": "h"}')
    (tmp_path / "s1.2.exit.tmp").write_text("0\n")  # not complete yet
    events = sorted(collect_status_files(str(tmp_path)), key=lambda e: e.rank)
    assert events == [Exited("s1", 0, 137, ["ValueError", "bad", "tb"]), PidKnown("s1", 1, 42)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s1.2.exit.tmp"]
    assert collect_status_files(str(tmp_path / "missing")) == []
    assert decode_status(137) == -9 and decode_status(3) == 3


def test_command_lines_name_the_worker_package():
    assert WORKER_MODULE == "mpigroup.worker"
    assert SHIM_MODULE.startswith("mpigroup.worker.") and PMI_PYTHON_MODULE.startswith("mpigroup.worker.")
    command, argv = python_rank_command("py", "/r", "s1", "h:1", ["A=1"])
    assert command == "/bin/sh" and "-m mpigroup.worker " in argv[1] and argv[-1] == "A=1"
    assert exec_rank_command("py", "/r", "s1", 0, "-") == ("py", ["-m", SHIM_MODULE, "/r", "s1", "0", "-"])


def test_agents_have_their_own_field():
    ctx = RuntimeContext(Role.AGENT, None, None, "h2", "/r", agent=AgentRole(True, "h1", 99))
    assert ctx.head is None and ctx.agent.leader and ctx.agent.head_pid == 99
    assert ctx.role == "agent"


def test_backoff_pause_with_an_interruptible_sleep():
    naps = []
    backoff = Backoff(initial=1e-3, maximum=4e-3)
    for _ in range(4):
        backoff.pause(sleep=naps.append)
    assert naps == pytest.approx([1e-3, 2e-3, 4e-3, 4e-3])
    wake = threading.Event()
    wake.set()
    t0 = time.monotonic()
    Backoff(initial=5.0, maximum=5.0).pause(sleep=wake.wait)
    assert time.monotonic() - t0 < 1
