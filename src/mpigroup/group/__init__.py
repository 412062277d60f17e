"""Process, ProcessGroup, ProcessTemplate and PMI pass-through."""
from .group import ProcessGroup
from .process import Process
from .template import ProcessTemplate

__all__ = ["Process", "ProcessGroup", "ProcessTemplate"]
