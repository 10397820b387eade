"""asyncdyn: an asyncio engine for Amazon DynamoDB, built for throughput."""

from .batch import BatchWriter, Rejected, WriterStats
from .client import Client, Table
from .credentials import Credentials, CredentialsProvider
from .errors import (
    AccessDenied,
    AsyncDynError,
    CancellationReason,
    ChecksumMismatch,
    ClientClosed,
    ConditionalCheckFailed,
    ConfigurationError,
    ExpiredIterator,
    InvalidCursor,
    InvalidExpression,
    InvalidItem,
    InvalidTransaction,
    OutcomeUnknown,
    RequestTimeout,
    ResourceInUse,
    RetriesExhausted,
    ServerError,
    ServiceError,
    StreamNotEnabled,
    TableNotFound,
    Throttled,
    TransactionCanceled,
    TransactionConflict,
    TransactionInProgress,
    TransportError,
    TrimmedDataAccess,
    UndeclaredAccess,
    UniqueConflict,
    UnprocessedItemsError,
    UnprocessedKeysError,
    ValidationError,
)
from .expressions import Attr, Condition, Key, KeyCondition, Update
from .fanout import TimeBuckets, WriteSharding
from .model import Design, Raw, field
from .paging import Page
from .retry import RetryPolicy
from .schema import GlobalIndex, KeySchema, LocalIndex
from .stats import StatsSnapshot
from .streams import (
    CheckpointStore,
    MemoryCheckpoints,
    Record,
    RecordBatch,
    Stream,
    TableCheckpoints,
)
from .telemetry import Telemetry
from .transactions import TxAction, TxGet
from .transport import HttpResponse, Transport
from .ttl import expires_at, is_expired

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AsyncDynError",
    "Attr",
    "BatchWriter",
    "CancellationReason",
    "CheckpointStore",
    "ChecksumMismatch",
    "Client",
    "ClientClosed",
    "Condition",
    "ConditionalCheckFailed",
    "ConfigurationError",
    "Credentials",
    "CredentialsProvider",
    "Design",
    "ExpiredIterator",
    "GlobalIndex",
    "HttpResponse",
    "InvalidCursor",
    "InvalidExpression",
    "InvalidItem",
    "InvalidTransaction",
    "Key",
    "KeyCondition",
    "KeySchema",
    "LocalIndex",
    "MemoryCheckpoints",
    "OutcomeUnknown",
    "Page",
    "Raw",
    "Record",
    "RecordBatch",
    "Rejected",
    "RequestTimeout",
    "ResourceInUse",
    "RetriesExhausted",
    "RetryPolicy",
    "ServerError",
    "ServiceError",
    "StatsSnapshot",
    "Stream",
    "StreamNotEnabled",
    "Table",
    "TableCheckpoints",
    "TableNotFound",
    "Telemetry",
    "Throttled",
    "TimeBuckets",
    "TransactionCanceled",
    "TransactionConflict",
    "TransactionInProgress",
    "Transport",
    "TransportError",
    "TrimmedDataAccess",
    "TxAction",
    "TxGet",
    "UndeclaredAccess",
    "UniqueConflict",
    "UnprocessedItemsError",
    "UnprocessedKeysError",
    "Update",
    "ValidationError",
    "WriteSharding",
    "WriterStats",
    "expires_at",
    "field",
    "is_expired",
]
