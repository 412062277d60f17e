"""One namespace host: the process that becomes PID 1 of a new host.

Run by :mod:`minicluster` (never by hand)::

    python nshost.py --kind host|bridge --name h1 --keep-fd N --setup JSON

It unshares the network, UTS, mount and PID namespaces (``bridge``: network
only), forks the host's init, prints the init's pid (as seen from outside),
and waits for it. The init sets the hostname, mounts a private ``/proc``,
``/dev/shm``, ``/tmp`` and ``/run``, binds the host's ``/etc/hosts``, brings
up ``lo``, waits for its ``eth0`` to appear (the harness moves it in), then
starts sshd and reaps every orphan of the host until the keep pipe closes.

Life span: the harness holds the write end of the keep pipe. When it closes
(the harness exits, is killed, or tears the cluster down) the init exits; the
kernel then kills every process of the host's PID namespace, and the network
namespace with its veth end goes away with its last process. So nothing
outlives the harness, even after SIGKILL.
"""
from __future__ import annotations

import argparse
import ctypes
import errno
import json
import os
import select
import signal
import subprocess
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def _init(args: argparse.Namespace, setup: dict) -> None:
    """PID 1 of the host."""
    keep_fd = args.keep_fd
    if args.kind == "host":
        name = args.name.encode()
        _check(_libc.sethostname(name, len(name)), "sethostname")
        _run("mount", "-t", "proc", "proc", "/proc")
        for path in ("/dev/shm", "/run"):
            _run("mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", path)
        # a private /tmp, except the paths every host must see (the checkout
        # and its venv when they live under /tmp, as a fresh CI clone may)
        os.makedirs("/run/outer-tmp")
        _run("mount", "--bind", "/tmp", "/run/outer-tmp")
        _run("mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/tmp")
        for shared in setup.get("shared_tmp", []):
            rel = os.path.relpath(shared, "/tmp")
            os.makedirs(shared, exist_ok=True)
            _run("mount", "--bind", os.path.join("/run/outer-tmp", rel), shared)
        _run("mount", "--bind", setup["hosts_file"], "/etc/hosts")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    _run("ip", "link", "set", "lo", "up")
    children = []
    ready = os.fdopen(args.ready_fd, "w")
    if args.kind == "host":
        # The harness moves our eth0 in and addresses it, then writes "go".
        go = os.read(args.go_fd, 16)
        if go.strip() != b"go":
            os._exit(1)
        children.append(subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", setup["sshd_config"]],
                                         stdin=subprocess.DEVNULL,
                                         stderr=open(setup["sshd_log"], "ab")))
    ready.write("ready\n")
    ready.close()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        try:
            readable, _, _ = select.select([keep_fd], [], [], 0.5)
        except InterruptedError:
            readable = []
        if readable and not os.read(keep_fd, 1):
            os._exit(0)  # the harness is gone: the kernel takes the host down with us
        while True:  # reap every orphan of the host
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("host", "bridge"), required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--keep-fd", type=int, required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--go-fd", type=int, default=-1)
    parser.add_argument("--setup", default="{}")
    args = parser.parse_args()
    setup = json.loads(args.setup)
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
    flags = CLONE_NEWNET
    if args.kind == "host":
        flags |= CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWPID
    _check(_libc.unshare(flags), "unshare")
    if args.kind == "host":
        _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    pid = os.fork()
    if pid == 0:
        try:
            _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
            _init(args, setup)
        except BaseException as exc:  # report to the harness through stderr
            print(f"nshost {args.name}: {exc!r}", file=sys.stderr, flush=True)
            os._exit(1)
        os._exit(0)
    print(pid, flush=True)
    sys.stdout.close()
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
        except InterruptedError:
            continue
        except OSError as exc:
            if exc.errno == errno.ECHILD:
                os._exit(0)
            time.sleep(0.1)


if __name__ == "__main__":
    main()
