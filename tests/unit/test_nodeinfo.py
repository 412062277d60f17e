"""Node discovery helpers (pure)."""
import pytest

from mpigroup.runtime.nodeinfo import parse_cpu_list, parse_gpu_override
from mpigroup.topology import Placement, gpu_env


def test_parse_cpu_list():
    assert parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpu_list("") == []


def test_gpu_override_forms_and_errors():
    assert parse_gpu_override("nvidia:0-3") == ([0, 1, 2, 3], "nvidia")
    assert parse_gpu_override("none") == ([], None)
    with pytest.raises(ValueError, match="VENDOR:IDS"):
        parse_gpu_override("cuda:0")
    with pytest.raises(ValueError, match="bad id list"):
        parse_gpu_override("amd:x")


@pytest.mark.parametrize("vendor,var", [("nvidia", "CUDA_VISIBLE_DEVICES"), ("amd", "ROCR_VISIBLE_DEVICES"),
                                        ("intel", "ZE_AFFINITY_MASK")])
def test_gpu_env_by_vendor(vendor, var):
    assert gpu_env(Placement("h", 0, None, (2, 3), vendor)) == {var: "2,3"}
    assert gpu_env(Placement("h", 0, None, None, vendor)) == {}
