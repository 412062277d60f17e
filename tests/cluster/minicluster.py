"""A cluster of N hosts made of Linux namespaces on this machine.

Each host (``h1`` .. ``hN``) has its own network, UTS, mount and PID
namespaces, its own hostname, ``/etc/hosts``, ``/dev/shm``, ``/tmp`` (but
for the checkout and its venv, shared like a cluster file system when they
live under ``/tmp``) and ``/run``, and an sshd listening on its own address. The hosts' ``eth0`` are
veth links into a bridge that lives in a network namespace of its own.
Addresses come from ``SUBNET``, which exists only inside those namespaces:
nothing is added to the root namespace (no link, no address, no route), and
no traffic can leave them.

Open MPI's launcher reaches the hosts over ssh, as on a real cluster:
:meth:`Cluster.mpi_env` gives the ``PRTE_MCA_plm_ssh_agent`` setting that
points ssh at the cluster's key and config. A host has its own PID
namespace, so only something running inside it (its sshd) can start a
process there.

Use from Python (pytest fixtures do)::

    with Cluster(3) as cluster:
        cluster.run("h1", ["mpiexec", "--host", cluster.host_spec(), ...])

or from the shell (``scripts/mini_cluster.sh up 3`` / ``exec h1 CMD`` /
``down``). Everything the cluster made goes away when the object is closed,
when the process that made it exits, and even when that process is killed:
each host's init watches a pipe held by the owner (see :mod:`nshost`).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

HERE = Path(__file__).resolve().parent
SUBNET = "10.231.7"  # /24, only ever inside the cluster's namespaces
STATE_DIR = Path("/run/mpigroup-minicluster")


class ClusterError(RuntimeError):
    """The namespace cluster could not be built on this machine."""


def unavailable_reason() -> Optional[str]:
    """Why namespace hosts cannot be made here, or None if they can."""
    if sys.platform != "linux":
        return "namespace hosts need Linux"
    if os.geteuid() != 0:
        return "namespace hosts need root (unshare of net/pid/mount namespaces)"
    for tool in ("ip", "nsenter", "ssh-keygen", "ssh"):
        if shutil.which(tool) is None:
            return f"{tool!r} is not installed"
    if not os.path.exists("/usr/sbin/sshd"):
        return "openssh-server is not installed (/usr/sbin/sshd missing)"
    probe = subprocess.run(["unshare", "--net", "--pid", "--mount", "--uts", "--fork", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create namespaces: {probe.stderr.strip()}"
    return None


def ensure_packages() -> None:
    """Install what the hosts need (Debian's openssh-server) if it is missing."""
    missing = [pkg for pkg, path in (("openssh-server", "/usr/sbin/sshd"),
                                     ("openssh-client", "/usr/bin/ssh"),
                                     ("iproute2", "/usr/sbin/ip"))
               if not os.path.exists(path)]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise ClusterError(f"missing {missing} and no apt-get to install them")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def remove_stale_dirs(parent: Path) -> list[str]:
    """Remove the key directories of clusters whose owner was killed (SIGKILL skips close()).

    Their namespaces and processes are gone already (the kernel removed them
    with the owner's pipe); only the directory with the keys stays behind.
    """
    removed = []
    for path in parent.glob("mpigroup-cluster-*"):
        try:
            owner = int((path / "owner").read_text())
        except (OSError, ValueError):
            continue  # not ours to judge (no owner recorded)
        try:
            os.kill(owner, 0)
            continue  # its owner still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
    return removed


class _NsProcess:
    """The outside handle of one namespace's init process."""

    def __init__(self, kind: str, name: str, setup: dict, keep_r: int) -> None:
        ready_r, ready_w = os.pipe()
        self.go_r, self.go_w = os.pipe() if kind == "host" else (-1, -1)
        fds = [keep_r, ready_w] + ([self.go_r] if kind == "host" else [])
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "nshost.py"), "--kind", kind, "--name", name,
             "--keep-fd", str(keep_r), "--ready-fd", str(ready_w), "--go-fd", str(self.go_r),
             "--setup", json.dumps(setup)],
            pass_fds=fds, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.close(ready_w)
        if self.go_r >= 0:
            os.close(self.go_r)
        self.ready_r = ready_r
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.wait(timeout=5)
            raise ClusterError(f"{name}: namespace init failed: {self.proc.stderr.read().strip()}")
        self.pid = int(line)  # the init's pid in the root PID namespace

    def go(self) -> None:
        os.write(self.go_w, b"go\n")
        os.close(self.go_w)
        self.go_w = -1

    def wait_ready(self, timeout: float) -> None:
        import select

        readable, _, _ = select.select([self.ready_r], [], [], timeout)
        data = os.read(self.ready_r, 64) if readable else b""
        os.close(self.ready_r)
        if b"ready" not in data:
            err = ""
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().strip()
            raise ClusterError(f"{self.name}: host did not come up: {err or 'timeout'}")

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        for fd in (self.go_w,):
            if fd >= 0:
                os.close(fd)
        self.go_w = -1
        if self.proc.stdout:
            self.proc.stdout.close()
        if self.proc.stderr:
            self.proc.stderr.close()


class Cluster:
    """N namespace hosts joined by a bridge; see the module docstring."""

    def __init__(self, nhosts: int, *, hostnames: Optional[Sequence[str]] = None,
                 workdir: Optional[str] = None, shared_paths: Sequence[str] = ()) -> None:
        if nhosts < 1 or nhosts > 16:
            raise ValueError(f"nhosts must be 1..16, got {nhosts}")
        self.names = [f"h{i + 1}" for i in range(nhosts)]
        # What gethostname() says on each host: normally its name; a test may
        # give two hosts one hostname (sites whose node names differ from it).
        self.hostnames = list(hostnames) if hostnames else list(self.names)
        if len(self.hostnames) != nhosts:
            raise ValueError("hostnames must name every host")
        self.addresses = {name: f"{SUBNET}.{i + 1}" for i, name in enumerate(self.names)}
        self.shared_paths = list(shared_paths)
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="mpigroup-cluster-", dir="/var/tmp"))
        self._hosts: dict[str, _NsProcess] = {}
        self._bridge: Optional[_NsProcess] = None
        self._keep_r, self._keep_w = os.pipe()
        self.up = False

    # ------------------------------------------------------------ set-up
    def start(self) -> "Cluster":
        reason = unavailable_reason()
        if reason:
            raise ClusterError(reason)
        t0 = time.monotonic()
        remove_stale_dirs(self.dir.parent)
        try:
            self._write_config()
            self._bridge = _NsProcess("bridge", "bridge", {}, self._keep_r)
            self._bridge.wait_ready(10)
            self._nsrun(self._bridge.pid, "ip", "link", "add", "br0", "type", "bridge")
            self._nsrun(self._bridge.pid, "ip", "link", "set", "br0", "up")
            for name, hostname in zip(self.names, self.hostnames):
                self._add_host(name, hostname)
            for name in self.names:
                self._hosts[name].wait_ready(15)
            self._wait_sshd()
        except BaseException:
            self.close()
            raise
        self.up = True
        self.setup_seconds = time.monotonic() - t0
        return self

    def _write_config(self) -> None:
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        (d / "owner").write_text(f"{os.getpid()}\n")  # lets a later cluster remove this one if we are killed
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "id_ed25519")],
                       check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")],
                       check=True)
        shutil.copy(d / "id_ed25519.pub", d / "authorized_keys")
        lines = ["127.0.0.1 localhost"]
        # Two hosts that share a hostname are still reached by their own name.
        lines += [f"{addr} {name}" for name, addr in self.addresses.items()]
        (d / "hosts").write_text("\n".join(lines) + "\n")
        (d / "ssh_config").write_text(
            "Host *\n"
            f"  IdentityFile {d / 'id_ed25519'}\n"
            "  IdentitiesOnly yes\n"
            "  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n"
            "  LogLevel ERROR\n"
            "  BatchMode yes\n"
            "  ConnectTimeout 10\n")
        for name, addr in self.addresses.items():
            (d / f"sshd_config.{name}").write_text(
                f"ListenAddress {addr}\n"
                "Port 22\n"
                f"HostKey {d / 'host_key'}\n"
                f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
                "PermitRootLogin prohibit-password\n"
                "PasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\n"
                "UsePAM no\n"
                "StrictModes no\n"
                "PidFile none\n"
                "MaxStartups 100:30:200\n"
                "MaxSessions 100\n"
                "LogLevel ERROR\n")

    def _shared_under_tmp(self) -> list[str]:
        """Paths under /tmp that hosts must still see (a shared file system, as on a cluster)."""
        tmp = os.path.realpath("/tmp")
        out = []
        for path in {str(HERE.parents[1]), sys.prefix, *self.shared_paths}:
            real = os.path.realpath(path)
            if real.startswith(tmp + os.sep) and os.path.isdir(real):
                out.append(real)
        # a path inside another would be hidden by the outer bind only if mounted first
        return sorted(set(out), key=len)

    def _add_host(self, name: str, hostname: str) -> None:
        d = self.dir
        setup = {"hosts_file": str(d / "hosts"), "sshd_config": str(d / f"sshd_config.{name}"),
                 "sshd_log": str(d / f"sshd.{name}.log"), "shared_tmp": self._shared_under_tmp()}
        host = _NsProcess("host", hostname, setup, self._keep_r)
        self._hosts[name] = host
        assert self._bridge is not None
        bridge = self._bridge.pid
        self._nsrun(bridge, "ip", "link", "add", f"v{name}", "type", "veth",
                    "peer", "name", "eth0", "netns", str(host.pid))
        self._nsrun(bridge, "ip", "link", "set", f"v{name}", "master", "br0", "up")
        self._nsrun(host.pid, "ip", "addr", "add", f"{self.addresses[name]}/24", "dev", "eth0")
        self._nsrun(host.pid, "ip", "link", "set", "eth0", "up")
        host.go()

    @staticmethod
    def _nsrun(pid: int, *argv: str) -> None:
        res = subprocess.run(["nsenter", "-t", str(pid), "-n", *argv], capture_output=True, text=True)
        if res.returncode != 0:
            raise ClusterError(f"{' '.join(argv)}: {res.stderr.strip()}")

    def _wait_sshd(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        first = self.names[0]
        for name in self.names:
            while True:
                res = self.run(first, self.ssh_command(name, "true"), capture_output=True, timeout=15)
                if res.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    log = (self.dir / f"sshd.{name}.log")
                    raise ClusterError(f"sshd on {name} not reachable: {res.stderr.strip()} "
                                       f"{log.read_text() if log.exists() else ''}")
                time.sleep(0.1)

    # ------------------------------------------------------------ use
    def pid_of(self, name: str) -> int:
        return self._hosts[name].pid

    def host_spec(self, slots: int = 1, hosts: Optional[Sequence[str]] = None) -> str:
        """``h1:S,h2:S,...`` for ``mpiexec --host``."""
        return ",".join(f"{h}:{slots}" for h in (hosts or self.names))

    def ssh_command(self, name: str, *argv: str) -> list[str]:
        return ["ssh", "-F", str(self.dir / "ssh_config"), name, *argv]

    def mpi_env(self) -> dict[str, str]:
        """Variables that point Open MPI's ssh launcher at the cluster."""
        return {"PRTE_MCA_plm_ssh_agent": f"ssh -F {self.dir / 'ssh_config'}"}

    def enter_command(self, name: str, *, cwd: Optional[str] = None) -> list[str]:
        """The argv prefix that runs a command inside host ``name``."""
        return ["nsenter", "-t", str(self._hosts[name].pid), "-n", "-u", "-m", "-p",
                f"--wd={cwd or os.getcwd()}", "--"]

    def run(self, name: str, argv: Sequence[str], *, cwd: Optional[str] = None,
            **kwargs) -> subprocess.CompletedProcess:
        """Run ``argv`` inside host ``name`` (subprocess.run keywords pass through)."""
        kwargs.setdefault("text", True)
        return subprocess.run([*self.enter_command(name, cwd=cwd), *argv], **kwargs)

    def popen(self, name: str, argv: Sequence[str], *, cwd: Optional[str] = None,
              **kwargs) -> subprocess.Popen:
        kwargs.setdefault("text", True)
        return subprocess.Popen([*self.enter_command(name, cwd=cwd), *argv], **kwargs)

    def host_pids(self, name: str) -> list[int]:
        """Root-namespace pids of every process inside host ``name`` but its init and sshd."""
        init = self._hosts[name].pid
        ns = os.readlink(f"/proc/{init}/ns/pid")
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == init:
                continue
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") != ns:
                    continue
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    cmd = fh.read().split(b"\0")
            except OSError:
                continue
            if b"[listener]" in cmd[0] or (cmd[0].endswith(b"sshd") and b"-D" in cmd):
                continue  # the host's own sshd (it retitles itself "sshd: ... [listener]")
            found.append(int(entry))
        return found

    def kill_host(self, name: str) -> None:
        """Lose a whole host: SIGKILL its init, so the kernel kills everything in it."""
        self._hosts[name].kill()

    # ------------------------------------------------------------ teardown
    def close(self) -> None:
        for host in self._hosts.values():
            host.kill()
        self._hosts.clear()
        if self._bridge is not None:
            self._bridge.kill()
            self._bridge = None
        for fd in (self._keep_r, self._keep_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._keep_r = self._keep_w = -1
        shutil.rmtree(self.dir, ignore_errors=True)
        self.up = False

    def __enter__(self) -> "Cluster":
        return self.start() if not self.up else self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------- the CLI
def _state_file(name: str) -> Path:
    return STATE_DIR / f"{name}.json"


def _keep(args: argparse.Namespace) -> None:
    """Hold a cluster until SIGTERM (the process behind ``up``)."""
    cluster = Cluster(args.nhosts)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    try:
        cluster.start()
        state = {"keeper": os.getpid(), "dir": str(cluster.dir), "hosts": cluster.names,
                 "pids": {n: cluster.pid_of(n) for n in cluster.names},
                 "addresses": cluster.addresses, "env": cluster.mpi_env(),
                 "setup_seconds": round(cluster.setup_seconds, 2)}
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        _state_file(args.cluster).write_text(json.dumps(state, indent=1))
        print(json.dumps(state), flush=True)
        sys.stdout.close()
        while not stop:
            time.sleep(0.2)
    finally:
        cluster.close()
        _state_file(args.cluster).unlink(missing_ok=True)


def _load(name: str) -> dict:
    path = _state_file(name)
    if not path.exists():
        sys.exit(f"no cluster named {name!r} is up (no {path})")
    return json.loads(path.read_text())


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="mini_cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster", default="default", help="name of the cluster (several may be up)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build N hosts and keep them until `down`")
    up.add_argument("nhosts", type=int)
    keep = sub.add_parser("_keep")
    keep.add_argument("nhosts", type=int)
    sub.add_parser("down", help="tear the cluster down")
    sub.add_parser("status", help="print the cluster's hosts and settings")
    ex = sub.add_parser("exec", help="run a command inside a host (with the cluster's ssh setting for "
                                     "Open MPI and mpigroup's MPI defaults)")
    ex.add_argument("host")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.cmd == "_keep":
        _keep(args)
        return 0
    if args.cmd == "up":
        if _state_file(args.cluster).exists():
            sys.exit(f"cluster {args.cluster!r} is already up; run `down` first")
        ensure_packages()
        reason = unavailable_reason()
        if reason:
            sys.exit(f"cannot build the cluster: {reason}")
        proc = subprocess.Popen([sys.executable, __file__, "--cluster", args.cluster, "_keep",
                                 str(args.nhosts)], stdout=subprocess.PIPE, text=True,
                                start_new_session=True)
        line = proc.stdout.readline()
        if not line:
            proc.wait()
            return 1
        state = json.loads(line)
        print(f"cluster {args.cluster!r} up in {state['setup_seconds']} s: "
              + ", ".join(f"{h}={state['addresses'][h]}" for h in state["hosts"]))
        print("run inside a host:  scripts/mini_cluster.sh exec h1 CMD ...")
        return 0
    state = _load(args.cluster)
    if args.cmd == "status":
        print(json.dumps(state, indent=1))
    elif args.cmd == "down":
        try:
            os.kill(state["keeper"], signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while _state_file(args.cluster).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        _state_file(args.cluster).unlink(missing_ok=True)
        shutil.rmtree(state["dir"], ignore_errors=True)
        print(f"cluster {args.cluster!r} down")
    elif args.cmd == "exec":
        if args.host not in state["pids"]:
            sys.exit(f"no host {args.host!r}; hosts: {', '.join(state['hosts'])}")
        env = dict(os.environ, **state["env"])
        try:  # as `mpigroup run` would: mpigroup's MPI defaults where unset (root, fault isolation)
            from mpigroup.base.mpienv import apply_defaults

            apply_defaults(env)
        except ImportError:
            pass
        cmd = ["nsenter", "-t", str(state["pids"][args.host]), "-n", "-u", "-m", "-p",
               f"--wd={os.getcwd()}", "--", *(args.command or ["bash"])]
        return subprocess.call(cmd, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
