"""Where executions are kept: :class:`MemoryStorage` and :class:`RedisStorage`, and the
interface (:class:`Storage`) with the errors a third-party store raises."""

from ._base import CorrelationTaken, EarlyPayloadWaiting, Storage, StoredExecution, WriteConflict
from .memory import MemoryStorage
from .redis import RedisStorage

__all__ = [
    "CorrelationTaken",
    "EarlyPayloadWaiting",
    "MemoryStorage",
    "RedisStorage",
    "Storage",
    "StoredExecution",
    "WriteConflict",
]
