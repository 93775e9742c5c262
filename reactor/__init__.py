"""reactor: declarative, class-based reactors.

Business transactions whose steps form a dependency graph, roll back with saga
compensation on failure, and pause at interrupt points with their context persisted,
to be resumed later -- from another process -- by execution id or correlation id.

Example::

    from reactor import Reactor, Input, step

    class Checkout(Reactor):
        order_id = Input(schema={"type": "integer"})

        @step
        def reserve(self, order_id):
            return stock.reserve(order_id)

        @reserve.undo
        def release(self, result):
            stock.release(result)

    ex = Checkout.run(order_id=7)
"""

from . import schemas
from ._config import configure
from ._dsl import (
    NOTHING,
    Halt,
    Input,
    MapFailure,
    MapResult,
    Skip,
    Source,
    compose,
    input,
    interrupt,
    map_,
    result,
    step,
    value,
)
from ._execution import Context, Execution, FailureInfo, PendingInterrupt, RollbackFailure
from ._reactor import Reactor, registry
from ._status import Status
from .errors import (
    AlreadyResumed,
    AmbiguousStep,
    CorrelationConflict,
    DefinitionChanged,
    DefinitionError,
    ExecutionFailed,
    ExecutionNotFound,
    InputInvalid,
    InterruptTimeout,
    NotPaused,
    NotPending,
    PayloadInvalid,
    ReactorError,
    ReactorWarning,
    SerializationError,
    StorageError,
)
from .storage import MemoryStorage, RedisStorage, Storage

__all__ = [
    "NOTHING",
    "AlreadyResumed",
    "AmbiguousStep",
    "Context",
    "CorrelationConflict",
    "DefinitionChanged",
    "DefinitionError",
    "Execution",
    "ExecutionFailed",
    "ExecutionNotFound",
    "FailureInfo",
    "Halt",
    "Input",
    "InputInvalid",
    "InterruptTimeout",
    "MapFailure",
    "MapResult",
    "MemoryStorage",
    "NotPaused",
    "NotPending",
    "PayloadInvalid",
    "PendingInterrupt",
    "Reactor",
    "ReactorError",
    "ReactorWarning",
    "RedisStorage",
    "RollbackFailure",
    "SerializationError",
    "Skip",
    "Source",
    "Status",
    "Storage",
    "StorageError",
    "compose",
    "configure",
    "input",
    "interrupt",
    "map_",
    "registry",
    "result",
    "schemas",
    "step",
    "value",
]
