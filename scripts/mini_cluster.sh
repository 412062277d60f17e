#!/usr/bin/env bash
# A cluster of namespace hosts on this machine (root, Linux), for trying
# mpigroup across hosts by hand. The test suite builds its own.
#   scripts/mini_cluster.sh up 3          build h1..h3 (installs openssh-server if missing)
#   scripts/mini_cluster.sh exec h1 CMD   run CMD inside h1, with Open MPI pointed at the cluster
#   scripts/mini_cluster.sh status        hosts, addresses, settings
#   scripts/mini_cluster.sh down          tear everything down
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-$( [ -x "$here/.venv/bin/python" ] && echo "$here/.venv/bin/python" || command -v python3)}"
exec "$py" "$here/tests/cluster/minicluster.py" "$@"
