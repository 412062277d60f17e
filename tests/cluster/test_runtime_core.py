"""The runtime core across 2 and 3 namespace hosts, under a real mpiexec."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# /tmp is private to each host, as on real nodes; this directory is seen by all
REMOTE_VISIBLE = REPO / "tests" / "_build" / "cluster"


def lines(text: str, word: str) -> list[list[str]]:
    return [ln.split()[1:] for ln in text.splitlines() if ln.startswith(word + " ")]


def assert_clean(proc) -> None:
    """Exit 0 and no launcher or PMIx error text anywhere."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    for bad in ("PMIX ERROR", "PRTE ERROR", "double free", "Segmentation", "lost communication"):
        assert bad not in out, out[-4000:]


def test_system_nodes_and_placement(cluster):
    proc = cluster.mpiexec("placement.py")
    assert_clean(proc)
    (nodes,) = lines(proc.stdout, "NODES")
    n = len(cluster.names)
    assert nodes[0] == str(n) and nodes[1:1 + n] == cluster.names
    assert all(int(c) >= 1 for c in nodes[1 + n:])
    want = {(t, i): h for t, i, h in lines(proc.stdout, "WANT")}
    ran = {(t, i): (host, node) for t, i, host, node in lines(proc.stdout, "RAN")}
    assert set(ran) == set(want), (sorted(want), sorted(ran))
    for key, host in want.items():
        hostname, node = ran[key]
        assert hostname == node, key  # each namespace host's hostname is its node name
        assert node == host if host != "*" else node in cluster.names, (key, host, node)
    spread = Counter(node for (tag, _), (_, node) in ran.items() if tag == "rr")
    assert set(spread.values()) == {2}, spread


def results(text: str) -> dict[str, str]:
    return {name: value for name, value in lines(text, "RESULT")}


def test_exit_codes_tracebacks_signals_restart_walltime_on_a_remote_host(cluster):
    shared = REMOTE_VISIBLE
    shared.mkdir(parents=True, exist_ok=True)
    proc = cluster.mpiexec("lifecycle.py", env={"MPIGROUP_SHARED_DIR": str(shared)})
    assert_clean(proc)
    got = results(proc.stdout)
    remote = cluster.names[-1]
    assert got["codes"] == "3,0"
    assert got["traceback"] == f"RemoteError|{remote}|True"
    assert "ValueError: broken on purpose" in proc.stdout + proc.stderr
    for how, code in (("stop", -2), ("terminate", -15), ("kill", -9)):
        codes, seconds = got[how].split("|")
        assert codes == f"{code},{code}", (how, got[how])
        assert float(seconds) < 20
    assert got["restarts"] == "True"
    seconds, codes = got["walltime"].split("|")
    assert 1.5 <= float(seconds) < 30 and codes not in ("", "0", "None"), got["walltime"]


def test_labelled_output_from_every_host_loses_no_line(cluster):
    n_lines = 300
    proc = cluster.mpiexec("output.py", str(n_lines))
    assert_clean(proc)
    members = len(cluster.names) * 2
    seen = Counter()
    hosts_seen = set()
    for ln in proc.stdout.splitlines():
        m = re.match(r"^\[talk (\d+) rank (\d+)@(\S+)\] LINE (\d+) (\d+)$", ln)
        if m:
            seen[int(m.group(4))] += 1
            hosts_seen.add(m.group(3))
    assert seen == {i: n_lines for i in range(members)}, seen
    assert hosts_seen == set(cluster.names)
    assert sum(1 for ln in proc.stderr.splitlines() if "ERRLINE" in ln) == members


def test_twenty_consecutive_group_starts_across_hosts_run_clean(cluster3):
    rounds = 20
    proc = cluster3.mpiexec("starts.py", str(rounds), timeout=300)
    assert_clean(proc)
    got = lines(proc.stdout, "ROUND")
    assert [int(r) for r, *_ in got] == list(range(rounds))
    assert all(ok == total == "6" for _, ok, total, _ in got), got


def test_mpigroup_run_inside_a_batch_allocation(cluster3, tmp_path):
    """`mpigroup run` sizes mpiexec from the batch allocation (here a PBS node file) and runs there."""
    import os
    import sys

    nodefile = REMOTE_VISIBLE / f"nodefile-{os.getpid()}"
    nodefile.parent.mkdir(parents=True, exist_ok=True)
    nodefile.write_text("".join(f"{h}\n{h}\n" for h in cluster3.names))  # 2 slots per node
    try:
        mpigroup = os.path.join(os.path.dirname(sys.executable), "mpigroup")
        proc = cluster3.cluster.run(
            "h1", [mpigroup, "run", "--label-output", str(REPO / "tests/cluster/scripts/placement.py")],
            cwd=str(REPO), capture_output=True, timeout=240,
            env=cluster3.env({"PBS_NODEFILE": str(nodefile), "PBS_JOBID": "42.cluster"}))
    finally:
        nodefile.unlink()
    assert_clean(proc)
    (nodes,) = lines(proc.stdout, "NODES")
    assert nodes[:4] == ["3", "h1", "h2", "h3"]
    # labelled: "[name puid rank r@host] RAN ..." for every member, on the host it was placed on
    ran = re.findall(r"^\[\S+ \d+ rank \d+@(\S+)\] RAN (\S+) (\d+) (\S+) (\S+)$", proc.stdout, re.M)
    assert ran and all(label == node for label, _, _, _, node in ran), ran[:5]
    assert {node for *_, node in ran} == {"h1", "h2", "h3"}


def test_telemetry_level_2_samples_every_node(cluster):
    import os
    import shutil

    from mpigroup.telemetry.runstore import RunStore

    base = REMOTE_VISIBLE / f"telemetry-{os.getpid()}-{len(cluster.names)}"
    try:
        proc = cluster.mpiexec("telemetry_nodes.py", env={
            "MPIGROUP_TELEMETRY_LEVEL": "2", "MPIGROUP_TELEMETRY_INTERVAL": "0.5",
            "MPIGROUP_TELEMETRY_DIR": str(base)},
            mpiexec_args=["-x", "MPIGROUP_TELEMETRY_LEVEL", "-x", "MPIGROUP_TELEMETRY_INTERVAL",
                          "-x", "MPIGROUP_TELEMETRY_DIR"])
        assert_clean(proc)
        (run_dir,) = [p for p in base.iterdir() if p.is_dir()]
        store = RunStore(str(run_dir))
        assert sorted(store.nodes()) == sorted(cluster.names)
        for node in cluster.names:
            series = [s for s in store.query("cpu_percent") if s.tags.get("node") == node]
            assert series and len(series[0].points) >= 2, (node, series)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _mpi_hello() -> str:
    import os
    import subprocess
    import sys

    exe = REMOTE_VISIBLE / "mpi_hello"
    source = REPO / "examples" / "mpi_hello.c"
    if not exe.exists() or exe.stat().st_mtime < source.stat().st_mtime:
        REMOTE_VISIBLE.mkdir(parents=True, exist_ok=True)
        tmp = exe.with_name(f"mpi_hello.{os.getpid()}")
        subprocess.run([os.path.join(sys.prefix, "bin", "mpicc"), "-O2", "-o", str(tmp), str(source)], check=True)
        tmp.replace(exe)
    return str(exe)


def test_the_documented_launch_line_exits_0_with_and_without_mpigroup_env(cluster2):
    """`mpiexec -n 2 python -m mpigroup script.py` as typed: no mpigroup defaults at all."""
    import os
    import shlex
    import subprocess
    import sys

    exe = _mpi_hello()
    plain = {"PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
             **cluster2.cluster.mpi_env()}
    if os.geteuid() == 0:
        plain.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    exported = subprocess.run([os.path.join(os.path.dirname(sys.executable), "mpigroup"), "env"],
                              capture_output=True, text=True, env=plain, check=True).stdout
    with_env = dict(plain)
    for line in exported.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            with_env[name] = shlex.split(value)[0] if value else ""
    assert "PRTE_MCA_state_base_recoverable" in with_env
    cmd = ["mpiexec", "--host", "h1:1,h2:1", "-n", "2", sys.executable, "-m", "mpigroup",
           str(REPO / "tests/cluster/scripts/plain_launch.py"), exe]
    for env in (plain, with_env):
        proc = cluster2.cluster.run("h1", cmd, cwd=str(REPO), env=env, capture_output=True, timeout=180)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        assert "exiting improperly" not in out and "prterun has exited" not in out, out[-4000:]
        assert "CAUGHT RemoteError h2" in proc.stdout and "PMI 0 0" in proc.stdout, out[-4000:]
        assert "ValueError: expected failure" in proc.stderr
        # the head warns once that fault isolation is off, and only then
        assert proc.stderr.count("fault-isolation settings") == (1 if env is plain else 0)


def test_pmi_worlds_spanning_hosts_run_clean_and_repeat(cluster):
    """Three MPI worlds in a row, each over every host: one MPI_COMM_WORLD each, no launcher error."""
    import os
    import shutil

    exe = _mpi_hello()
    outdir = REMOTE_VISIBLE / f"pmi-out-{os.getpid()}-{len(cluster.names)}"
    outdir.mkdir(parents=True, exist_ok=True)
    n = len(cluster.names)
    try:
        proc = cluster.mpiexec("pmi_world.py", exe, str(outdir), "2", "3")
        assert_clean(proc)
        assert lines(proc.stdout, "STATUS") == [["0"] * (2 * n)] * 3, proc.stdout
        texts = [(outdir / f"rank{r}.out").read_text() for r in range(2 * n)]  # the last world's
        assert sum(f"allreduce sum={n * (2 * n + 1)} expected={n * (2 * n + 1)}" in t for t in texts) == 1, texts
        mpi_ranks = set()
        for member, text in enumerate(texts):  # member i: its env var, its host
            m = re.search(rf"rank (\d+) of {2 * n} on (\S+) cpus=\S+ var=(\S+)", text)
            assert m, text
            mpi_ranks.add(int(m.group(1)))
            assert m.group(2) == cluster.names[member % n] and m.group(3) == f"rank-{member}", text
        assert mpi_ranks == set(range(2 * n))
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
