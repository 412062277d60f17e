"""Unit tests for YAML affinity configs (mpigroup.policy.yaml_config), no MPI."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mpigroup.errors import ConfigError
from mpigroup.policy import Policy, evaluate, load_affinity_config, policies_from_yaml
from mpigroup.policy.yaml_config import AffinityConfig, SlotConfig, parse_id_list
from mpigroup.topology import Allocation, NodeDesc

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
P = Policy.Placement


def polaris_alloc(n: int = 2) -> Allocation:
    return Allocation.of(
        [NodeDesc(i, f"x300{i}", tuple(range(32)), (0, 1, 2, 3), "nvidia") for i in range(n)]
    )


def aurora_alloc(n: int = 2) -> Allocation:
    return Allocation.of(
        [NodeDesc(i, f"aurora{i}", tuple(range(104)), tuple(range(12)), "intel") for i in range(n)]
    )


def laptop_alloc() -> Allocation:
    return Allocation.of([NodeDesc(0, "laptop", (0, 1))])


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def expect_error(path: str, field: str, reason: str, alloc: Allocation | None = None) -> str:
    """Load (and expand if ``alloc``) and check the message has file, field and reason."""
    with pytest.raises(ConfigError) as ei:
        if alloc is None:
            load_affinity_config(path)
        else:
            policies_from_yaml(path, alloc)
    msg = str(ei.value)
    assert path in msg, msg
    assert f": {field}: " in msg, msg
    assert reason in msg, msg
    return msg


# ------------------------------------------------------------ shipped files
class TestShippedConfigs:
    def test_polaris(self):
        path = CONFIGS / "polaris_4gpu.yaml"
        cfg = load_affinity_config(path)
        assert cfg.name == "polaris" and cfg.gpu_vendor == "nvidia" and cfg.nodes is None
        assert [(s.gpus, s.cpus) for s in cfg.slots] == [
            ((3,), tuple(range(0, 8))),
            ((2,), tuple(range(8, 16))),
            ((1,), tuple(range(16, 24))),
            ((0,), tuple(range(24, 32))),
        ]
        alloc = polaris_alloc(2)
        pols = Policy.from_yaml(path, alloc)
        assert len(pols) == 8
        assert [p.host_name for p in pols] == ["x3000"] * 4 + ["x3001"] * 4
        assert all(p.placement is P.HOST_NAME for p in pols)
        pls = evaluate(pols, alloc, "x3000")
        assert pls[0].gpus == (3,) and pls[0].cpus == tuple(range(8)) and pls[0].gpu_vendor == "nvidia"

    def test_aurora(self):
        path = CONFIGS / "aurora_12tile.yaml"
        cfg = load_affinity_config(path)
        assert cfg.gpu_vendor == "intel" and len(cfg.slots) == 12
        assert [s.gpus for s in cfg.slots] == [(i,) for i in range(12)]
        assert all(len(s.cpus) == 8 for s in cfg.slots)
        used = {c for s in cfg.slots for c in s.cpus}
        assert 0 not in used and 52 not in used  # left for the OS
        assert all(c < 52 for s in cfg.slots[:6] for c in s.cpus)  # socket 0
        assert all(c > 52 for s in cfg.slots[6:] for c in s.cpus)  # socket 1
        alloc = aurora_alloc(2)
        pols = policies_from_yaml(path, alloc)
        assert len(pols) == 24
        pls = evaluate(pols, alloc, "aurora0")
        assert pls[11].gpus == (11,) and pls[11].gpu_vendor == "intel"

    def test_local_2cpu(self):
        path = CONFIGS / "local_2cpu.yaml"
        pols = Policy.from_yaml(path, laptop_alloc())
        assert pols == [
            Policy(host_name="laptop", cpu_affinity=[0]),
            Policy(host_name="laptop", cpu_affinity=[1]),
        ]
        pls = evaluate(pols, laptop_alloc(), "laptop")
        assert [(p.cpus, p.gpus) for p in pls] == [((0,), None), ((1,), None)]

    def test_polaris_rejected_on_laptop(self):
        path = str(CONFIGS / "polaris_4gpu.yaml")
        expect_error(path, "slots[0].cpus", "do not exist on host 'laptop'", laptop_alloc())


# ----------------------------------------------------------- valid variants
class TestValidVariants:
    def test_forms_and_count(self, tmp_path):
        path = write(
            tmp_path,
            """
            nodes: [b, a]
            slots:
              - {cpus: "0-1,4", gpu: 1, count: 2}
              - {cpus: [2, 3]}
              - {gpu: [0]}
              - {cpus: 5}
            """,
        )
        cfg = load_affinity_config(path)
        assert cfg.nodes == ("b", "a")
        assert cfg.slots[0] == SlotConfig(index=0, cpus=(0, 1, 4), gpus=(1,), count=2)
        assert cfg.slots[2].cpus == () and cfg.slots[3].cpus == (5,)
        alloc = Allocation.of([NodeDesc(0, "a", tuple(range(8)), (0, 1)), NodeDesc(1, "b", tuple(range(8)), (0, 1))])
        pols = policies_from_yaml(path, alloc)
        assert len(pols) == 10  # 2 nodes x (2 + 1 + 1 + 1)
        assert [p.host_name for p in pols] == ["b"] * 5 + ["a"] * 5  # file order of nodes
        assert pols[0] == pols[1] == Policy(host_name="b", cpu_affinity=[0, 1, 4], gpu_affinity=[1])
        assert pols[0].cpu_affinity is not pols[1].cpu_affinity  # no shared lists
        assert pols[3] == Policy(host_name="b", gpu_affinity=[0])

    def test_nodes_subset(self, tmp_path):
        path = write(tmp_path, "nodes: [x3001]\nslots:\n  - cpus: [0]\n")
        pols = policies_from_yaml(path, polaris_alloc(3))
        assert [p.host_name for p in pols] == ["x3001"]

    def test_range_string_whitespace(self):
        assert parse_id_list(" 0 - 2 , 7 ", "f", "x") == (0, 1, 2, 7)

    def test_returns_dataclass(self):
        assert isinstance(load_affinity_config(CONFIGS / "local_2cpu.yaml"), AffinityConfig)


# --------------------------------------------------------------- rejections
class TestFileRejections:
    @pytest.mark.parametrize(
        "text, field, reason",
        [
            ("slots:\n  - cpus: [0]\nbogus: 1\n", "bogus", "unknown key 'bogus'"),
            ("slots:\n  - cpus: [0]\n    cpu: [1]\n", "slots[0].cpu", "unknown key 'cpu'"),
            ("name: x\n", "slots", "missing required key"),
            ("slots: []\n", "slots", "empty list"),
            ("slots: {cpus: [0]}\n", "slots", "expected a list of slots"),
            ("slots:\n  - {}\n", "slots[0]", "empty slot"),
            ("slots:\n  - count: 2\n", "slots[0]", "cpus and/or gpu"),
            ("slots:\n  - 3\n", "slots[0]", "expected a mapping"),
            ("name: 5\nslots:\n  - cpus: [0]\n", "name", "expected a string"),
            ("gpu_vendor: nvida\nslots:\n  - cpus: [0]\n", "gpu_vendor", "unknown vendor 'nvida'"),
            ("nodes: some\nslots:\n  - cpus: [0]\n", "nodes", "expected 'all' or a list"),
            ("nodes: []\nslots:\n  - cpus: [0]\n", "nodes", "empty list"),
            ("nodes: [a, 3]\nslots:\n  - cpus: [0]\n", "nodes[1]", "hostname string"),
            ("nodes: [a, a]\nslots:\n  - cpus: [0]\n", "nodes[1]", "duplicate host 'a'"),
            ("slots:\n  - cpus: {a: 1}\n", "slots[0].cpus", "expected a range string"),
            ("slots:\n  - cpus: [0, '1']\n", "slots[0].cpus[1]", "expected a non-negative int"),
            ("slots:\n  - cpus: [true]\n", "slots[0].cpus[0]", "expected a non-negative int"),
            ("slots:\n  - cpus: [0, -1]\n", "slots[0].cpus", "negative numbers are not allowed"),
            ("slots:\n  - gpu: -1\n", "slots[0].gpu", "negative numbers are not allowed"),
            ("slots:\n  - gpu: 1.5\n", "slots[0].gpu", "expected a range string, an int or a list"),
            ("slots:\n  - cpus: []\n", "slots[0].cpus", "empty list"),
            ("slots:\n  - cpus: [1, 1]\n", "slots[0].cpus", "duplicate ids [1]"),
            ("slots:\n  - cpus: '0-3,2'\n", "slots[0].cpus", "duplicate ids [2]"),
            ("slots:\n  - cpus: [0]\n    count: 0\n", "slots[0].count", "expected a positive int"),
            ("slots:\n  - cpus: [0]\n    count: 100000000\n", "slots[0].count", "over the limit of 4096"),
            ("slots:\n  - cpus: [0]\n    count: '2'\n", "slots[0].count", "expected a positive int"),
            ("- 1\n- 2\n", "(top level)", "expected a mapping"),
            ("", "(top level)", "expected a mapping"),
            ("slots: [\n", "(yaml)", "invalid YAML"),
        ],
    )
    def test_rejected(self, tmp_path, text, field, reason):
        expect_error(write(tmp_path, text), field, reason)

    @pytest.mark.parametrize(
        "spec, reason",
        [
            ("7-0", "start > end"),
            ("0-", "malformed range '0-'"),
            ("a-b", "malformed range 'a-b'"),
            ("1--2", "malformed range '1--2'"),
            ("0,,1", "malformed range ''"),
            ("-3", "negative numbers are not allowed"),
            ("0-3;4", "malformed range '0-3;4'"),
            ("   ", "empty range string"),
        ],
    )
    def test_bad_range_strings(self, tmp_path, spec, reason):
        path = write(tmp_path, f"slots:\n  - cpus: [0]\n  - cpus: '{spec}'\n")
        expect_error(path, "slots[1].cpus", reason)

    def test_overlap_names_both_slots(self, tmp_path):
        path = write(
            tmp_path,
            """
            slots:
              - cpus: "0-3"
              - cpus: "4-7"
              - cpus: "6-9"
            """,
        )
        msg = expect_error(path, "slots[2].cpus", "overlap with slots[1].cpus")
        assert "cpus 6-7" in msg

    def test_missing_file(self, tmp_path):
        path = str(tmp_path / "nope.yaml")
        expect_error(path, "(file)", "cannot read file")


class TestAllocationRejections:
    def test_host_not_in_allocation(self, tmp_path):
        path = write(tmp_path, "nodes: [x3000, ghost]\nslots:\n  - cpus: [0]\n")
        msg = expect_error(path, "nodes[1]", "host 'ghost' is not in the allocation", polaris_alloc(2))
        assert "x3001" in msg  # lists the allocation's hosts

    def test_cpu_not_on_node(self, tmp_path):
        path = write(tmp_path, "slots:\n  - cpus: [0]\n  - cpus: '30-33'\n")
        msg = expect_error(path, "slots[1].cpus", "cpus 32-33 do not exist on host 'x3000'", polaris_alloc(1))
        assert "its cpus: 0-31" in msg

    def test_cpu_missing_only_on_second_node(self, tmp_path):
        path = write(tmp_path, "slots:\n  - cpus: [3]\n")
        alloc = Allocation.of([NodeDesc(0, "big", (0, 1, 2, 3)), NodeDesc(1, "small", (0, 1))])
        expect_error(path, "slots[0].cpus", "do not exist on host 'small'", alloc)

    def test_gpu_not_on_node(self, tmp_path):
        path = write(tmp_path, "slots:\n  - gpu: [4]\n")
        msg = expect_error(path, "slots[0].gpu", "gpus [4] do not exist on host 'x3000'", polaris_alloc(1))
        assert "its gpus: 0-3" in msg

    def test_gpu_on_cpu_only_node(self, tmp_path):
        path = write(tmp_path, "slots:\n  - gpu: 0\n")
        expect_error(path, "slots[0].gpu", "its gpus: (none)", laptop_alloc())

    def test_vendor_mismatch(self, tmp_path):
        path = write(tmp_path, "gpu_vendor: amd\nslots:\n  - gpu: 0\n")
        expect_error(path, "gpu_vendor", "config is for 'amd' GPUs but host 'x3000' has 'nvidia'", polaris_alloc(1))

    def test_aurora_on_polaris_node(self):
        path = str(CONFIGS / "aurora_12tile.yaml")
        expect_error(path, "gpu_vendor", "config is for 'intel' GPUs but host 'x3000'", polaris_alloc(1))

    def test_aurora_on_vendorless_32_core_node(self):
        path = str(CONFIGS / "aurora_12tile.yaml")
        alloc = Allocation.of([NodeDesc(0, "n", tuple(range(32)), tuple(range(12)))])
        expect_error(path, "slots[3].cpus", "cpus 32 do not exist on host 'n'", alloc)

    def test_policy_from_yaml_propagates_config_error(self, tmp_path):
        path = write(tmp_path, "slots:\n  - cpus: [99]\n")
        with pytest.raises(ConfigError, match=r"slots\[0\]\.cpus"):
            Policy.from_yaml(path, laptop_alloc())
