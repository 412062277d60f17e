"""Pool and PoolExecutor over placement policies (tasks and results through RMA queues)."""
from ..errors import BrokenPool, PoolTerminated, WorkerLostError
from .executor import PoolExecutor
from .pool import ApplyResult, Pool

__all__ = ["ApplyResult", "BrokenPool", "Pool", "PoolExecutor", "PoolTerminated", "WorkerLostError"]
