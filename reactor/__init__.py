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

from importlib import metadata as _metadata

from . import schemas
from ._config import Config, configure, get_config, reset_config
from ._dsl import (
    NOTHING,
    Halt,
    Input,
    MapFailure,
    MapResult,
    Nothing,
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
from ._reactor import Reactor, registry
from ._records import Context, Execution, PendingInterrupt, TraceEntry
from ._status import Status
from .errors import (
    AlreadyResumed,
    AmbiguousStep,
    ArgumentInvalid,
    CorrelationConflict,
    DefinitionChanged,
    DefinitionError,
    ExecutionFailed,
    ExecutionNotFound,
    FailureInfo,
    InputInvalid,
    InterruptTimeout,
    NotPaused,
    NotPending,
    OutputInvalid,
    PayloadInvalid,
    ReactorError,
    ReactorWarning,
    RollbackFailure,
    SerializationError,
    StorageError,
)
from .storage import (
    CorrelationTaken,
    EarlyPayloadWaiting,
    MemoryStorage,
    RedisStorage,
    Storage,
    StoredExecution,
    WriteConflict,
)

try:
    __version__ = _metadata.version("reactor")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "NOTHING",
    "AlreadyResumed",
    "AmbiguousStep",
    "ArgumentInvalid",
    "Config",
    "Context",
    "CorrelationConflict",
    "CorrelationTaken",
    "DefinitionChanged",
    "DefinitionError",
    "EarlyPayloadWaiting",
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
    "Nothing",
    "OutputInvalid",
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
    "StoredExecution",
    "TraceEntry",
    "WriteConflict",
    "compose",
    "configure",
    "get_config",
    "input",
    "interrupt",
    "map_",
    "registry",
    "reset_config",
    "result",
    "schemas",
    "step",
    "value",
]
