"""Node naming and identity at boot, and seconds settings (no MPI)."""
import pytest

from mpigroup.errors import MPIGroupError, RuntimeStartError
from mpigroup.runtime import context
from mpigroup.runtime.nodeinfo import node_identity, node_name
from mpigroup.base import config
from mpigroup.topology import NodeDesc


def _node(name):
    return NodeDesc(0, name, (0, 1), (), None, 1 << 30)


def test_node_name_prefers_the_runtime_then_the_launcher(monkeypatch):
    monkeypatch.delenv("MPIGROUP_NODE", raising=False)
    monkeypatch.setenv("PMIX_HOSTNAME", "n7")
    assert node_name() == "n7"
    monkeypatch.setenv("MPIGROUP_NODE", "n9")
    assert node_name() == "n9"


def test_node_identity_is_stable_and_names_the_namespaces():
    ident = node_identity()
    assert ident == node_identity() and "net:[" in ident and "pid:[" in ident


def test_one_name_on_two_machines_refuses_to_start():
    reports = [(_node("node"), "/tmp", "boot-a|net1"), (_node("node"), "/tmp", "boot-b|net2")]
    with pytest.raises(RuntimeStartError, match="two different nodes that both call themselves 'node'"):
        context._plan_nodes(reports)
    assert issubclass(RuntimeStartError, MPIGroupError)


def test_nodes_leaders_and_run_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("PMIX_SERVER_TMPDIR", str(tmp_path))  # where the head's run dir goes
    reports = [(_node("h1"), str(tmp_path), "a"), (_node("h2"), str(tmp_path), "b"),
               (_node("h1"), str(tmp_path), "a"), (_node("h3"), str(tmp_path), "c")]
    allocation, run_dirs, leaders, head_at = context._plan_nodes(reports)
    assert [n.hostname for n in allocation.nodes] == ["h1", "h2", "h3"]
    assert leaders == {1: "h2", 3: "h3"}  # one agent per other host; rank 2 shares the head's host
    assert set(run_dirs) == {"h1", "h2", "h3"} and len({p.rsplit("/", 1)[1] for p in run_dirs.values()}) == 1


@pytest.mark.parametrize("name", ["MPIGROUP_HOST_TIMEOUT", "MPIGROUP_BOOT_TIMEOUT"])
@pytest.mark.parametrize("raw, expect", [("2.5", 2.5), (" 7 ", 7.0)])
def test_timeout_settings(monkeypatch, name, raw, expect):
    monkeypatch.setenv(name, raw)
    assert config.get(name) == expect


def test_timeout_settings_defaults(monkeypatch):
    monkeypatch.setenv("MPIGROUP_HOST_TIMEOUT", "")
    monkeypatch.delenv("MPIGROUP_BOOT_TIMEOUT", raising=False)
    assert config.get("MPIGROUP_HOST_TIMEOUT") == 5.0 and config.get("MPIGROUP_BOOT_TIMEOUT") == 120.0


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "nan"])
def test_timeout_settings_name_the_variable(monkeypatch, raw):
    monkeypatch.setenv("MPIGROUP_HOST_TIMEOUT", raw)
    with pytest.raises(ValueError, match=r"MPIGROUP_HOST_TIMEOUT=.*seconds"):
        config.get("MPIGROUP_HOST_TIMEOUT")
