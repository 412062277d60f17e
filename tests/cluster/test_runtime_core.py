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
