"""Unit tests for mpigroup.policy: Policy, merging, resolution and evaluation (no MPI)."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import pytest

from mpigroup.errors import PolicyError
from mpigroup.policy import (
    Policy,
    evaluate,
    get_global_policy,
    gpu_policies,
    hostname_policies,
    resolve_policy,
    set_global_policy,
)
from mpigroup.policy import policy as policy_mod
from mpigroup.topology import Allocation, NodeDesc, Placement

P = Policy.Placement
D = Policy.Distribution


@pytest.fixture(autouse=True)
def _clean_state():
    """Each test starts with an empty ``with`` stack and the default global policy."""
    set_global_policy(None)
    policy_mod._POLICY_STACK.clear()
    yield
    set_global_policy(None)
    policy_mod._POLICY_STACK.clear()


@pytest.fixture
def alloc3() -> Allocation:
    """Three nodes: n0 (4 cpus, 2 nvidia gpus), n1 (2 cpus, no gpu), n2 (3 cpus, 1 amd gpu)."""
    return Allocation.of(
        [
            NodeDesc(0, "n0", (0, 1, 2, 3), (0, 1), "nvidia"),
            NodeDesc(1, "n1", (0, 1)),
            NodeDesc(7, "n2", (0, 1, 2), (0,), "amd"),
        ]
    )


# --------------------------------------------------------------- construction
class TestPolicyFields:
    def test_defaults(self):
        p = Policy()
        assert p.placement is P.DEFAULT
        assert p.host_name == ""
        assert p.host_id == -1
        assert p.distribution is D.DEFAULT
        assert p.cpu_affinity == [] and p.gpu_affinity == []

    def test_enum_members_match_dragon(self):
        assert {m.name for m in P} == {"LOCAL", "ANYWHERE", "HOST_NAME", "HOST_ID", "DEFAULT"}
        assert {m.name for m in D} == {"ROUNDROBIN", "BLOCK", "DEFAULT"}

    def test_host_name_implies_host_name_placement(self):
        assert Policy(host_name="n1").placement is P.HOST_NAME

    def test_host_id_implies_host_id_placement(self):
        assert Policy(host_id=3).placement is P.HOST_ID

    def test_host_name_checked_before_host_id(self):
        assert Policy(host_name="n1", host_id=3).placement is P.HOST_NAME

    def test_explicit_placement_not_overridden(self):
        assert Policy(placement=P.ANYWHERE, host_name="n1").placement is P.ANYWHERE

    def test_default_lists_not_shared(self):
        a, b = Policy(), Policy()
        a.cpu_affinity.append(1)
        assert b.cpu_affinity == []

    def test_tuple_affinity_normalised_to_list(self):
        assert Policy(cpu_affinity=(1, 2)).cpu_affinity == [1, 2]

    def test_equality_by_value(self):
        assert Policy(host_name="a", cpu_affinity=[1]) == Policy(host_name="a", cpu_affinity=[1])
        assert Policy(host_name="a") != Policy(host_name="b")

    @pytest.mark.parametrize(
        "kwargs, needle",
        [
            ({"cpu_affinity": [0, -1]}, "cpu_affinity must be a list of non-negative ints"),
            ({"cpu_affinity": ["0"]}, "cpu_affinity must be a list of non-negative ints"),
            ({"cpu_affinity": [True]}, "cpu_affinity must be a list of non-negative ints"),
            ({"cpu_affinity": "0-3"}, "cpu_affinity must be a list"),
            ({"cpu_affinity": [1, 1]}, "duplicate"),
            ({"gpu_affinity": [1.5]}, "gpu_affinity must be a list of non-negative ints"),
            ({"host_id": "3"}, "host_id must be an int"),
            ({"host_id": -5}, "host_id must be >= 0"),
            ({"host_name": 3}, "host_name must be a str"),
            ({"placement": "HOST_NAME"}, "placement must be a Policy.Placement"),
            ({"distribution": 1}, "distribution must be a Policy.Distribution"),
            ({"placement": P.HOST_NAME}, "host_name is empty"),
            ({"placement": P.HOST_ID}, "host_id is not set"),
        ],
    )
    def test_validation(self, kwargs, needle):
        with pytest.raises(PolicyError, match=needle):
            Policy(**kwargs)

    def test_policy_error_is_value_error(self):
        with pytest.raises(ValueError):
            Policy(host_id="x")


class TestReprAndPickle:
    def test_repr_default(self):
        assert repr(Policy()) == "Policy()"

    def test_repr_shows_set_fields_only(self):
        r = repr(Policy(host_name="n1", cpu_affinity=[0, 1], distribution=D.BLOCK))
        assert r == (
            "Policy(placement=Policy.Placement.HOST_NAME, host_name='n1', "
            "distribution=Policy.Distribution.BLOCK, cpu_affinity=[0, 1])"
        )

    @pytest.mark.parametrize("proto", range(2, pickle.HIGHEST_PROTOCOL + 1))
    def test_pickle_roundtrip(self, proto):
        p = Policy(placement=P.HOST_ID, host_id=2, distribution=D.BLOCK, cpu_affinity=[3], gpu_affinity=[0, 1])
        q = pickle.loads(pickle.dumps(p, protocol=proto))
        assert q == p
        assert q.placement is P.HOST_ID and q.distribution is D.BLOCK

    def test_importing_policy_does_not_import_mpi(self):
        import mpigroup.policy as pkg

        code = "import sys, mpigroup.policy; print('mpi4py' in sys.modules)"
        src = str(Path(pkg.__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": src}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert out.stdout.strip() == "False"


# --------------------------------------------------------------------- merge
class TestMerge:
    def test_high_overrides_set_fields(self):
        low = Policy(host_name="a", cpu_affinity=[1], distribution=D.BLOCK)
        high = Policy(host_name="b", gpu_affinity=[0])
        m = Policy.merge(low, high)
        assert m.host_name == "b"
        assert m.placement is P.HOST_NAME
        assert m.cpu_affinity == [1]  # not set in high: kept from low
        assert m.gpu_affinity == [0]
        assert m.distribution is D.BLOCK

    def test_unset_high_keeps_low(self):
        low = Policy(placement=P.ANYWHERE, distribution=D.ROUNDROBIN)
        assert Policy.merge(low, Policy()) == low

    def test_placement_override_keeps_low_host_name(self):
        m = Policy.merge(Policy(host_name="a"), Policy(placement=P.ANYWHERE))
        assert m.placement is P.ANYWHERE and m.host_name == "a"

    def test_none_sides(self):
        p = Policy(host_id=1)
        assert Policy.merge(None, p) == p
        assert Policy.merge(p, None) == p
        assert Policy.merge(None, None) == Policy()

    def test_merge_returns_copy(self):
        low = Policy(cpu_affinity=[1])
        m = Policy.merge(low, Policy())
        m.cpu_affinity.append(2)
        assert low.cpu_affinity == [1]

    def test_merge_rejects_non_policy(self):
        with pytest.raises(PolicyError, match="expects Policy"):
            Policy.merge(Policy(), {"host_name": "a"})


# ---------------------------------------------------------- with / global
class TestContextAndGlobal:
    def test_current_none_outside_with(self):
        assert Policy.current() is None
        assert policy_mod.current_with_policy() is None

    def test_with_pushes_and_pops(self):
        p = Policy(host_name="a")
        with p as entered:
            assert entered is p
            assert Policy.current() == p
        assert Policy.current() is None

    def test_nesting_inner_wins_outer_fills(self):
        with Policy(host_name="a", cpu_affinity=[1]):
            with Policy(host_name="b"):
                cur = Policy.current()
                assert cur.host_name == "b"
                assert cur.cpu_affinity == [1]
            assert Policy.current().host_name == "a"
        assert Policy.current() is None

    def test_pop_on_exception(self):
        with pytest.raises(RuntimeError):
            with Policy(host_name="a"):
                raise RuntimeError("boom")
        assert Policy.current() is None

    def test_global_policy(self):
        assert get_global_policy() == Policy()
        g = Policy(distribution=D.BLOCK)
        set_global_policy(g)
        assert get_global_policy() is g
        assert Policy.global_policy() is g
        set_global_policy(None)
        assert get_global_policy() == Policy()

    def test_set_global_rejects_non_policy(self):
        with pytest.raises(PolicyError):
            set_global_policy("block")


# ------------------------------------------------------------------ resolve
class TestResolve:
    def test_nothing_set_gives_default(self):
        assert resolve_policy() == Policy()

    def test_global_is_lowest(self):
        set_global_policy(Policy(distribution=D.BLOCK, cpu_affinity=[0]))
        r = resolve_policy()
        assert r.distribution is D.BLOCK and r.cpu_affinity == [0]
        r.cpu_affinity.append(5)  # a copy, not the global itself
        assert get_global_policy().cpu_affinity == [0]

    def test_with_stack_beats_global(self):
        set_global_policy(Policy(distribution=D.BLOCK, cpu_affinity=[0]))
        with Policy(cpu_affinity=[1]):
            r = resolve_policy()
        assert r.cpu_affinity == [1] and r.distribution is D.BLOCK

    def test_group_beats_with_stack(self):
        with Policy(host_name="w", gpu_affinity=[3]):
            r = resolve_policy(group=Policy(host_name="g"))
        assert r.host_name == "g" and r.gpu_affinity == [3]

    def test_template_beats_group(self):
        r = resolve_policy(group=Policy(host_name="g", cpu_affinity=[1]), template=Policy(host_name="t"))
        assert r.host_name == "t" and r.cpu_affinity == [1]

    def test_explicit_beats_everything(self):
        set_global_policy(Policy(host_name="glob"))
        with Policy(host_name="w"):
            r = resolve_policy(
                explicit=Policy(host_name="e"), group=Policy(host_name="g"), template=Policy(host_name="t")
            )
        assert r.host_name == "e"

    def test_each_level_contributes_its_field(self):
        set_global_policy(Policy(distribution=D.BLOCK))
        with Policy(host_id=4):
            r = resolve_policy(
                explicit=Policy(gpu_affinity=[2]),
                group=Policy(cpu_affinity=[9]),
                template=Policy(host_name="t"),
            )
        assert r == Policy(
            placement=P.HOST_NAME, host_name="t", host_id=4, distribution=D.BLOCK,
            cpu_affinity=[9], gpu_affinity=[2],
        )

    def test_rejects_non_policy(self):
        with pytest.raises(PolicyError):
            resolve_policy(explicit="n1")


# ----------------------------------------------------------------- evaluate
class TestEvaluate:
    def test_host_name(self, alloc3):
        (pl,) = evaluate([Policy(host_name="n2")], alloc3, "n0")
        assert pl == Placement("n2", 7, None, None, "amd")

    def test_host_id(self, alloc3):
        (pl,) = evaluate([Policy(host_id=7)], alloc3, "n0")
        assert pl.hostname == "n2" and pl.host_id == 7

    def test_local(self, alloc3):
        (pl,) = evaluate([Policy(placement=P.LOCAL)], alloc3, "n1")
        assert pl.hostname == "n1" and pl.gpu_vendor is None

    def test_roundrobin_default(self, alloc3):
        pls = evaluate([Policy()] * 7, alloc3, "n0")
        assert [p.hostname for p in pls] == ["n0", "n1", "n2", "n0", "n1", "n2", "n0"]

    def test_roundrobin_explicit_anywhere(self, alloc3):
        pls = evaluate([Policy(placement=P.ANYWHERE, distribution=D.ROUNDROBIN)] * 4, alloc3, "n0")
        assert [p.hostname for p in pls] == ["n0", "n1", "n2", "n0"]

    def test_block_fills_by_cpu_count_and_wraps(self, alloc3):
        pls = evaluate([Policy(distribution=D.BLOCK)] * 11, alloc3, "n0")
        # capacities 4, 2, 3 -> 9 per round, then wrap
        assert [p.hostname for p in pls] == ["n0"] * 4 + ["n1"] * 2 + ["n2"] * 3 + ["n0"] * 2

    def test_pinned_processes_do_not_advance_distribution(self, alloc3):
        pols = [Policy(), Policy(host_name="n2"), Policy(), Policy(placement=P.LOCAL), Policy()]
        assert [p.hostname for p in evaluate(pols, alloc3, "n0")] == ["n0", "n2", "n1", "n0", "n2"]

    def test_cpu_and_gpu_affinity(self, alloc3):
        (pl,) = evaluate([Policy(host_name="n0", cpu_affinity=[3, 1], gpu_affinity=[1])], alloc3, "x")
        assert pl.cpus == (3, 1) and pl.gpus == (1,) and pl.gpu_vendor == "nvidia"

    def test_empty_affinity_gives_none(self, alloc3):
        (pl,) = evaluate([Policy(host_name="n0")], alloc3, "x")
        assert pl.cpus is None and pl.gpus is None

    def test_unknown_host_name(self, alloc3):
        with pytest.raises(PolicyError) as ei:
            evaluate([Policy(host_name="nope")], alloc3, "n0")
        msg = str(ei.value)
        assert "'nope'" in msg and "not in the allocation" in msg and "['n0', 'n1', 'n2']" in msg

    def test_unknown_host_id(self, alloc3):
        with pytest.raises(PolicyError, match=r"host_id 5 is not in the allocation.*\[0, 1, 7\]"):
            evaluate([Policy(host_id=5)], alloc3, "n0")

    def test_local_not_in_allocation(self, alloc3):
        with pytest.raises(PolicyError, match=r"LOCAL.*'login1'.*not in the allocation"):
            evaluate([Policy(placement=P.LOCAL)], alloc3, "login1")

    def test_bad_cpu(self, alloc3):
        with pytest.raises(PolicyError) as ei:
            evaluate([Policy(host_name="n1", cpu_affinity=[1, 5, 6])], alloc3, "n0")
        msg = str(ei.value)
        assert "cpu(s) [5, 6]" in msg and "'n1'" in msg and "cpus are 0-1" in msg

    def test_bad_gpu(self, alloc3):
        with pytest.raises(PolicyError) as ei:
            evaluate([Policy(host_name="n1", gpu_affinity=[0])], alloc3, "n0")
        msg = str(ei.value)
        assert "gpu(s) [0]" in msg and "'n1'" in msg and "gpus are (none)" in msg

    def test_bad_cpu_on_distributed_node(self, alloc3):
        # second process lands on n1 (2 cpus) where cpu 3 does not exist
        with pytest.raises(PolicyError, match=r"policy\[1\].*cpu\(s\) \[3\].*'n1'"):
            evaluate([Policy(cpu_affinity=[3])] * 2, alloc3, "n0")

    def test_first_error_raised_before_anything_returned(self, alloc3):
        pols = [Policy(host_name="n0"), Policy(host_name="bad1"), Policy(host_name="bad2")]
        with pytest.raises(PolicyError, match=r"policy\[1\].*'bad1'"):
            evaluate(pols, alloc3, "n0")

    def test_empty_allocation(self):
        with pytest.raises(PolicyError, match="no nodes"):
            evaluate([Policy()], Allocation(), "n0")
        assert evaluate([], Allocation(), "n0") == []

    def test_non_policy_rejected(self, alloc3):
        with pytest.raises(PolicyError, match=r"policy\[0\] is not a Policy"):
            evaluate(["n0"], alloc3, "n0")

    def test_resolved_then_evaluated(self, alloc3):
        with Policy(distribution=D.BLOCK):
            pols = [resolve_policy(group=Policy(cpu_affinity=[0])) for _ in range(3)]
        pls = evaluate(pols, alloc3, "n0")
        assert [p.hostname for p in pls] == ["n0"] * 3 and all(p.cpus == (0,) for p in pls)


class TestHelpers:
    def test_hostname_policies(self, alloc3):
        pols = hostname_policies(alloc3)
        assert pols == [Policy(placement=P.HOST_NAME, host_name=h) for h in ("n0", "n1", "n2")]
        assert [p.hostname for p in evaluate(pols, alloc3, "n0")] == ["n0", "n1", "n2"]

    def test_gpu_policies(self, alloc3):
        pols = gpu_policies(alloc3)
        assert len(pols) == 3  # 2 on n0, 0 on n1, 1 on n2
        assert [(p.placement, p.host_name, p.gpu_affinity) for p in pols] == [
            (P.HOST_NAME, "n0", [0]),
            (P.HOST_NAME, "n0", [1]),
            (P.HOST_NAME, "n2", [0]),
        ]
        pls = evaluate(pols, alloc3, "n0")
        assert [(p.hostname, p.gpus, p.gpu_vendor) for p in pls] == [
            ("n0", (0,), "nvidia"),
            ("n0", (1,), "nvidia"),
            ("n2", (0,), "amd"),
        ]

    def test_gpu_policies_no_gpus(self):
        assert gpu_policies(Allocation.of([NodeDesc(0, "a", (0,))])) == []


class TestFromYaml:
    def test_from_yaml_uses_current_allocation_lazily(self, monkeypatch, tmp_path):
        cfg = tmp_path / "c.yaml"
        cfg.write_text("slots:\n  - cpus: [0]\n  - cpus: [1]\n")
        alloc = Allocation.of([NodeDesc(0, "h0", (0, 1)), NodeDesc(1, "h1", (0, 1))])
        from mpigroup.runtime import context

        monkeypatch.setattr(context, "current", lambda: types.SimpleNamespace(allocation=alloc))
        pols = Policy.from_yaml(cfg)
        assert [(p.host_name, p.cpu_affinity) for p in pols] == [
            ("h0", [0]), ("h0", [1]), ("h1", [0]), ("h1", [1]),
        ]

    def test_from_yaml_explicit_allocation(self, tmp_path):
        cfg = tmp_path / "c.yaml"
        cfg.write_text("slots:\n  - cpus: [0]\n")
        alloc = Allocation.of([NodeDesc(0, "h0", (0, 1))])
        assert Policy.from_yaml(str(cfg), alloc) == [Policy(host_name="h0", cpu_affinity=[0])]
