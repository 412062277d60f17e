"""Pool and PoolExecutor over placement policies (tasks and results through RMA queues)."""
from .executor import PoolExecutor
from .pool import ApplyResult, Pool, PoolTerminated, WorkerLostError

__all__ = ["ApplyResult", "Pool", "PoolExecutor", "PoolTerminated", "WorkerLostError"]
