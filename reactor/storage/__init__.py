"""Where executions are kept: :class:`MemoryStorage` and :class:`RedisStorage`."""

from ._base import Storage, StoredExecution
from .memory import MemoryStorage
from .redis import RedisStorage

__all__ = ["MemoryStorage", "RedisStorage", "Storage", "StoredExecution"]
