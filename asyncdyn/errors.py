"""The exception tree, and the one table from DynamoDB's ``__type`` to a class.

::

    AsyncDynError                          everything asyncdyn raises on purpose
    ├── InvalidItem (ValueError)           a value cannot be sent; raised before any I/O
    ├── InvalidExpression (ValueError)     a malformed condition/update/projection; before any I/O
    ├── InvalidCursor (ValueError)         a page cursor that is tampered with or from another query
    ├── InvalidTransaction (ValueError)    actions that cannot make one transaction; before any I/O
    ├── ConfigurationError (ValueError)    a bad Client / RetryPolicy argument
    │   └── UndeclaredAccess               a strict design's read that is no declared pattern
    ├── TransportError                     the request did not get a readable answer (retryable)
    │   ├── ClientClosed                   the client was closed (not retried)
    │   ├── RequestTimeout (TimeoutError)  no answer within the timeout
    │   └── ChecksumMismatch               x-amz-crc32 does not match the body
    ├── ServiceError                       DynamoDB answered with an error; .code .message .status
    │   ├── ValidationError                ValidationException
    │   ├── ConditionalCheckFailed         .item: the current item when it was asked for
    │   │   └── UniqueConflict             an entity's unique field value is taken; .field .value
    │   ├── TransactionCanceled            .reasons: one CancellationReason per action, in order
    │   ├── TransactionConflict
    │   ├── TableNotFound                  ResourceNotFoundException
    │   ├── ExpiredIterator                a stream shard iterator older than 15 minutes
    │   ├── TrimmedDataAccess              a stream position past the 24-hour retention
    │   ├── ResourceInUse
    │   ├── AccessDenied                   bad or expired credentials, missing permission
    │   ├── Throttled                      throttling of any kind (retryable); .reasons
    │   ├── ServerError                    HTTP 5xx, InternalServerError (retryable)
    │   └── TransactionInProgress          (retryable with the same client token)
    ├── StreamNotEnabled                   the table has no stream; .table
    ├── NativeTransferError                an S3 export/import did not start or complete; .code .arn
    ├── RetriesExhausted                   attempts or deadline used up; .last_error
    ├── OutcomeUnknown                     a write's answer was lost and it may have been applied
    ├── UnprocessedKeysError               .partial, .unprocessed
    ├── UnprocessedItemsError              .puts .deletes, .maybe_puts .maybe_deletes
    ├── OffloadError                       S3 refused an offloaded attribute; .bucket .object_key
    │   └── DanglingReference              an item refers to an S3 object that is not there
    └── CorruptAttribute (ValueError)      a stored large attribute that cannot be read back

Retryability is a class attribute, so the retry loop and a caller's ``except`` agree.
``maybe_applied`` says whether the failed request may still have been applied by the server
(its answer was lost: a reset after sending, a timeout, a damaged body, a 5xx): the retry
loop resends such a request only when resending it cannot apply it twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = [
    "AccessDenied",
    "AsyncDynError",
    "CancellationReason",
    "ChecksumMismatch",
    "ClientClosed",
    "ConditionalCheckFailed",
    "ConfigurationError",
    "CorruptAttribute",
    "DanglingReference",
    "ExpiredIterator",
    "InvalidCursor",
    "InvalidExpression",
    "InvalidItem",
    "InvalidTransaction",
    "NativeTransferError",
    "OffloadError",
    "OutcomeUnknown",
    "RequestTimeout",
    "ResourceInUse",
    "RetriesExhausted",
    "ServerError",
    "ServiceError",
    "StreamNotEnabled",
    "TableNotFound",
    "Throttled",
    "ThrottlingReason",
    "TransactionCanceled",
    "TransactionConflict",
    "TransactionInProgress",
    "TransportError",
    "TrimmedDataAccess",
    "UndeclaredAccess",
    "UniqueConflict",
    "UnprocessedItemsError",
    "UnprocessedKeysError",
    "ValidationError",
    "error_from_response",
]


class AsyncDynError(Exception):
    """Root of every exception asyncdyn raises on purpose."""

    retryable: ClassVar[bool] = False
    # Whether the server may have applied the request although no answer said so. A class
    # default that a transport overrides per instance when it knows better (a request that
    # provably never left the client, e.g. the connection was seen closed before writing).
    maybe_applied: bool = False


class InvalidItem(AsyncDynError, ValueError):
    """A Python value that cannot be sent to DynamoDB; raised before anything is sent.

    ``path`` names the offending attribute (``order.lines[3].price``), or is empty when the
    problem is the item as a whole (its size); a batch call prefixes the position of the
    item (``puts[17].order.lines[3].price``). ``reason`` is the message without the path.
    """

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


class InvalidExpression(AsyncDynError, ValueError):
    """A condition, update, key condition or projection that cannot be built."""


class InvalidTransaction(AsyncDynError, ValueError):
    """A transaction DynamoDB would refuse: no actions or more than 100, over 4 MB, two
    actions on one item. Raised before anything is sent."""


class InvalidCursor(AsyncDynError, ValueError):
    """A page cursor that was tampered with, truncated, or made by another query or table."""


class ConfigurationError(AsyncDynError, ValueError):
    """A bad argument to ``Client``, ``RetryPolicy`` or a control-plane call."""


class UndeclaredAccess(ConfigurationError):
    """A scan, or a query that matches none of the declared access patterns, refused by a
    ``Design(strict=True)`` before anything is sent; ``.design`` names the design."""

    def __init__(self, message: str, design: str = "") -> None:
        self.design = design
        super().__init__(message)


class TransportError(AsyncDynError):
    """The request got no readable answer: connection refused or reset, truncated body.

    ``maybe_applied`` is ``True`` unless the transport knows the request never left the
    client (a refused connection, a pooled connection seen closed before writing)."""

    retryable = True
    maybe_applied = True


class ClientClosed(TransportError):
    """The client was closed before the call got its answer (or the call came after
    ``Client.close``). Not retried: no request can succeed on a closed client."""

    retryable = False


class RequestTimeout(TransportError, TimeoutError):
    """No complete answer within the request timeout or the operation's deadline."""


class ChecksumMismatch(TransportError):
    """The body does not match its ``x-amz-crc32`` header: it was damaged on the way."""


class ServiceError(AsyncDynError):
    """DynamoDB answered with an error.

    ``code`` is the text after ``#`` in ``__type`` (``ProvisionedThroughputExceededException``),
    ``message`` the server's message, ``status`` the HTTP status and ``body`` the decoded body,
    kept whole so that an unknown code loses nothing.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 400,
        body: Mapping[str, Any] | None = None,
        operation: str = "",
    ) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.body: Mapping[str, Any] = body if body is not None else {}
        self.operation = operation
        where = f" ({operation})" if operation else ""
        super().__init__(f"{code}{where}: {message}")


class ValidationError(ServiceError):
    """The server refused the request as malformed (``ValidationException``)."""


class ConditionalCheckFailed(ServiceError):
    """A condition expression was false. ``item`` is the current item when it was asked for
    (``ReturnValuesOnConditionCheckFailure=ALL_OLD``), decoded; otherwise ``None``.

    A lost optimistic-locking race (``put_versioned``, ``modify``) also sets ``table``,
    ``key``, ``expected_version`` (``None``: the write expected no versioned item) and
    ``stored_version`` (``None``: no item, or one without a version), and the message
    names them. A write of the entity layer sets ``table`` and ``key`` too, and ``current``:
    ``item`` decoded as that entity (``None`` when no item was returned)."""

    item: dict[str, Any] | None = None
    current: Any = None
    table: str | None = None
    key: dict[str, Any] | None = None
    expected_version: int | None = None
    stored_version: Any = None

    def lost_race(
        self,
        table: str,
        key: dict[str, Any] | None,
        attribute: str,
        expected: int | None,
        stored_item: Mapping[str, Any] | None,
    ) -> None:
        """Name the table, key and versions of a lost optimistic-locking race."""
        stored = None if stored_item is None else stored_item.get(attribute)
        self.table, self.key = table, key
        self.expected_version, self.stored_version = expected, stored
        wanted = (
            f"no item with {attribute!r} yet" if expected is None else f"{attribute} {expected}"
        )
        if stored_item is None:
            found = "no item"
        elif stored is None:
            found = f"an item without {attribute!r}"
        else:
            found = f"{attribute} {stored!r}"
        # Key values are the caller's own identifiers, never secrets: they make the message
        # actionable. Item contents other than the version stay out of it.
        where = f"table {table!r}" + (f", key {key!r}" if key is not None else "")
        self.args = (
            f"{where}: optimistic-locking race lost: expected {wanted}, stored {found} "
            f"(.item holds the stored item: merge and write again) - {self.code} "
            f"({self.operation}): {self.message}",
        )


class UniqueConflict(ConditionalCheckFailed):
    """An entity's ``field(unique=True)`` value is held by another item (``.entity``,
    ``.field``, ``.value``); nothing of the write was applied."""

    def __init__(self, entity: str, field: str, value: Any, *, operation: str = "") -> None:
        super().__init__(
            "ConditionalCheckFailedException",
            f"{entity}.{field} = {value!r} is already taken by another {entity}",
            operation=operation,
        )
        self.entity = entity
        self.field = field
        self.value = value


class CancellationReason:
    """Why one action of a transaction was cancelled; ``code`` is ``None`` for an action
    that was fine."""

    __slots__ = ("code", "item", "message")

    def __init__(
        self, code: str | None, message: str | None = None, item: dict[str, Any] | None = None
    ) -> None:
        self.code = code
        self.message = message
        self.item = item

    def __repr__(self) -> str:
        return f"CancellationReason(code={self.code!r}, message={self.message!r})"


class TransactionCanceled(ServiceError):
    """A transaction was cancelled; ``reasons`` holds one entry per action, in order. The
    message of a write transaction's cancellation names each failed action: its position,
    kind, table and key."""

    reasons: Sequence[CancellationReason] = ()


class TransactionConflict(ServiceError):
    """The item is part of a transaction in progress."""


class _NamedResource(ServiceError):
    """An error about a table (index, stream) that some servers answer without naming it.

    ``tables`` are the tables the request named (``table`` when it named one), ``index`` its
    index and ``stream`` its stream, if any; :meth:`locate` records them from the request
    and puts them at the front of the message."""

    tables: tuple[str, ...] = ()
    index: str | None = None
    stream: str | None = None
    #: what is said of the resource, after its name
    _state = ""

    @property
    def table(self) -> str | None:
        """The one table the request named, else ``None``."""
        return self.tables[0] if len(self.tables) == 1 else None

    def locate(
        self, tables: Sequence[str], index: str | None = None, stream: str | None = None
    ) -> None:
        """Record what the failed request named and put it at the front of the message."""
        self.tables = tuple(tables)
        self.index = index
        self.stream = stream
        if stream is not None:
            what = f"stream {stream!r}"
        elif not self.tables:
            return
        elif len(self.tables) == 1:
            what = f"table {self.tables[0]!r}"
            if index is not None:
                what += f" or its index {index!r}"
        else:
            what = "one of the tables " + ", ".join(map(repr, self.tables))
        where = f" ({self.operation})" if self.operation else ""
        message = f": {self.message}" if self.message else ""
        hint = self._hint()
        hint = f" ({hint})" if hint else ""
        self.args = (f"{what} {self._state}: {self.code}{where}{message}{hint}",)

    def _hint(self) -> str:
        """What to do about it, said after the server's words (empty: nothing to say)."""
        return ""


class TableNotFound(_NamedResource):
    """The table (or index, or stream) does not exist or is not active yet.

    The message names what the request named (:meth:`locate`). moto answers a query on an
    unknown index this way too, so with an index the message says "table T or its index I"."""

    _state = "does not exist or is not active yet"

    def _hint(self) -> str:
        if self.stream is not None or not self.tables:
            return ""
        if self.index is not None:
            return "Table.describe() lists the table's indexes"
        # The usual causes on a laptop: another region or endpoint than the one the table
        # was created with (a local server keeps tables per region), or a restarted server.
        hint = (
            "check the name, and that region and endpoint_url are those it was created with; "
            "a local server forgets its tables when restarted"
        )
        if self.operation == "DeleteTable":
            return hint
        return hint + "; Client.create_table creates one"


class ExpiredIterator(ServiceError):
    """A DynamoDB Streams shard iterator was used more than 15 minutes after it was issued
    (``ExpiredIteratorException``). The stream consumer replaces it by itself."""


class TrimmedDataAccess(ServiceError):
    """A DynamoDB Streams position lies before the oldest record still kept (records live
    24 hours) (``TrimmedDataAccessException``)."""


class StreamNotEnabled(AsyncDynError):
    """The table has no DynamoDB stream to read (``LatestStreamArn`` is missing). Enable one
    with ``create_table(..., stream=...)`` or ``Table.enable_stream(...)``."""

    def __init__(self, table: str) -> None:
        self.table = table
        super().__init__(
            f"table {table!r} has no stream enabled (turn one on with "
            f"db.table({table!r}).enable_stream(), or create_table(..., stream=...))"
        )


class NativeTransferError(AsyncDynError):
    """A DynamoDB export to S3 or import from S3 could not start, or did not complete
    (``asyncdyn.native``). ``table`` names the table, ``arn`` the export or import when one
    was started, ``code`` the reason in one word (``PointInTimeRecoveryOff``, ``TableExists``,
    ``NoData``, ``Failed``, ``ItemCountMismatch``...)."""

    def __init__(
        self, message: str, *, code: str, table: str | None = None, arn: str | None = None
    ) -> None:
        self.code = code
        self.table = table
        self.arn = arn
        super().__init__(message)


class ResourceInUse(_NamedResource):
    """The table is being created, updated or deleted, or already exists. The message names
    the table (:meth:`locate`): dynalite answers with no message at all."""

    _state = "is being created, updated or deleted, or already exists"

    def _hint(self) -> str:
        table = self.table
        if table is None:
            return ""
        if self.operation == "CreateTable":
            return (
                f"use the existing one with db.table({table!r}), or remove it first with "
                f"db.delete_table({table!r}); a local server forgets its tables when restarted"
            )
        return f"wait with db.table({table!r}).wait_until_active() and try again"


class AccessDenied(ServiceError):
    """The credentials are wrong, expired, or lack a permission."""


class ThrottlingReason:
    """One of DynamoDB's ``ThrottlingReasons``: ``reason`` is
    ``<Table|Index><Read|Write><ProvisionedThroughputExceeded|AccountLimitExceeded|
    KeyRangeThroughputExceeded|MaxOnDemandThroughputExceeded>`` and ``resource`` the ARN of
    the table or index throttled, read into ``table`` and ``index`` (``None`` when the ARN
    names none)."""

    __slots__ = ("index", "reason", "resource", "table")

    def __init__(self, reason: str, resource: str = "") -> None:
        self.reason = reason
        self.resource = resource
        # arn:aws:dynamodb:<region>:<account>:table/<table>[/index/<index>]
        path = resource.partition(":table/")[2]
        table, _, index = path.partition("/index/")
        self.table: str | None = table or None
        self.index: str | None = index or None

    @property
    def key_range(self) -> bool:
        """The request rate at one partition key value passed the partition's limit."""
        return self.reason.endswith("KeyRangeThroughputExceeded")

    def __repr__(self) -> str:
        return f"ThrottlingReason(reason={self.reason!r}, resource={self.resource!r})"


class Throttled(ServiceError):
    """DynamoDB asked us to slow down. ``reasons`` are its ``ThrottlingReasons`` (empty when
    it gave none: older endpoints, emulators)."""

    retryable = True
    reasons: Sequence[ThrottlingReason] = ()


def throttling_reasons(body: Mapping[str, Any]) -> tuple[ThrottlingReason, ...]:
    """The ``ThrottlingReasons`` of an error body (``throttlingReasons`` in a
    ``ThrottlingException``, the AWS API model's casing), skipping malformed entries."""
    raw = body.get("ThrottlingReasons", body.get("throttlingReasons"))
    reasons = []
    for entry in raw if isinstance(raw, list) else ():
        reason = entry.get("reason") if isinstance(entry, Mapping) else None
        if isinstance(reason, str) and reason:
            resource = entry.get("resource")
            reasons.append(ThrottlingReason(reason, resource if isinstance(resource, str) else ""))
    return tuple(reasons)


class ServerError(ServiceError):
    """DynamoDB failed internally (HTTP 5xx). A write may or may not have been applied."""

    retryable = True
    maybe_applied = True


class TransactionInProgress(ServiceError):
    """A transaction with the same client token is still being processed."""

    retryable = True


class RetriesExhausted(AsyncDynError):
    """Attempts or the deadline ran out; ``last_error`` is the last retryable error seen."""

    def __init__(self, last_error: BaseException, attempts: int, reason: str = "attempts") -> None:
        self.last_error = last_error
        self.attempts = attempts
        self.reason = reason
        super().__init__(f"gave up after {attempts} attempt(s) ({reason}): {last_error}")


class OutcomeUnknown(AsyncDynError):
    """A write that is not safe to resend got no answer after it may have been applied
    (a reset after sending, a timeout, a damaged answer, a 5xx): whether it was applied is
    unknown, so it is not resent. ``operation`` and ``key`` name the write (never the
    credentials); the lost answer's error is ``last_error``, and the ``__cause__`` is what
    ended the attempts (that error, a resend's condition failure, or ``RetriesExhausted``).

    Read the item to find out, make the write idempotent (``update(..., idempotent=True)``),
    or opt into at-least-once with ``RetryPolicy(retry_unknown_outcome=True)``.

    ``item`` is the stored item when a resent conditional write found its condition false
    and the item did not prove that the first attempt was applied (``None`` otherwise).
    """

    item: dict[str, Any] | None = None

    def __init__(
        self,
        operation: str,
        key: Mapping[str, Any] | None,
        last_error: BaseException,
        table: str = "",
    ) -> None:
        self.operation = operation
        self.key = dict(key) if key is not None else None
        self.table = table
        self.last_error = last_error
        where = f" on table {table!r}" if table else ""
        which = f" for key {self.key!r}" if self.key is not None else ""
        super().__init__(
            f"{operation}{where}{which}: the answer was lost after the request may have been "
            f"applied ({type(last_error).__name__}); it was not resent"
        )


class UnprocessedKeysError(AsyncDynError):
    """Some keys of a batch read were never answered, after every retry.

    ``partial`` is aligned with the input keys: the items that were fetched, ``None``
    elsewhere (a streaming read leaves it empty: its items were already yielded).
    ``unprocessed`` lists the keys never answered, as given. ``Client.batch_get`` gives both
    as dicts by table name. The last retryable error, if there was one, is the ``__cause__``.
    """

    def __init__(
        self,
        partial: list[dict[str, Any] | None] | dict[str, list[dict[str, Any] | None]],
        unprocessed: list[dict[str, Any]] | dict[str, list[dict[str, Any]]],
    ) -> None:
        self.partial = partial
        self.unprocessed = unprocessed
        count = (
            sum(map(len, unprocessed.values()))
            if isinstance(unprocessed, dict)
            else len(unprocessed)
        )
        super().__init__(f"{count} key(s) were not processed")


class UnprocessedItemsError(AsyncDynError):
    """Some write requests of a batch were never applied; everything else was.

    ``puts`` (items) and ``deletes`` (keys) list exactly the requests not known to be
    written, as they were given, at most one per key: sending them again (``batch_write``)
    is safe and restores what was asked. A request that a later accepted request for the
    same key replaced is never listed, even when it failed first: resending it would undo
    the later one (it is counted in ``WriterStats.superseded``).

    ``maybe_puts`` and ``maybe_deletes`` are the requests among those (the same objects)
    that were sent without an answer ever coming back: in flight when the writer was
    cancelled, or whose answer was lost on the network. They may already be applied;
    resending them is still safe, as a put or delete is idempotent. The others were never
    applied: never sent, or left unprocessed or refused by DynamoDB. ``maybe_applied`` is
    true when there is any. The error that stopped them, if any, is the ``__cause__``;
    ``failures`` pairs each request (the same objects) with the error that stopped it, when
    one did: an ``OffloadError`` for a put whose S3 upload failed (it was never sent).
    """

    def __init__(
        self,
        puts: list[dict[str, Any]],
        deletes: list[dict[str, Any]],
        reason: str = "",
        *,
        maybe_puts: list[dict[str, Any]] | None = None,
        maybe_deletes: list[dict[str, Any]] | None = None,
        failures: list[tuple[dict[str, Any], BaseException]] | None = None,
    ) -> None:
        self.puts = puts
        self.failures = failures if failures is not None else []
        self.deletes = deletes
        self.maybe_puts = maybe_puts if maybe_puts is not None else []
        self.maybe_deletes = maybe_deletes if maybe_deletes is not None else []
        self.maybe_applied = bool(self.maybe_puts or self.maybe_deletes)
        detail = f" ({reason})" if reason else ""
        sent = len(self.maybe_puts) + len(self.maybe_deletes)
        unsure = f"; {sent} of them may have been applied" if sent else ""
        super().__init__(
            f"{len(puts)} put(s) and {len(deletes)} delete(s) were not written{unsure}{detail}"
        )


# The one table from AWS error codes to classes. Codes not here become a plain ServiceError
# (or ServerError for a 5xx status) that keeps the code and the raw body.
_ERRORS: dict[str, type[ServiceError]] = {
    "ValidationException": ValidationError,
    "SerializationException": ValidationError,
    "ConditionalCheckFailedException": ConditionalCheckFailed,
    "TransactionCanceledException": TransactionCanceled,
    "TransactionConflictException": TransactionConflict,
    "TransactionInProgressException": TransactionInProgress,
    "ResourceNotFoundException": TableNotFound,
    "ResourceInUseException": ResourceInUse,
    "ExpiredIteratorException": ExpiredIterator,
    "TrimmedDataAccessException": TrimmedDataAccess,
    "ProvisionedThroughputExceededException": Throttled,
    "ThrottlingException": Throttled,
    "RequestLimitExceeded": Throttled,
    "LimitExceededException": Throttled,
    "ReplicatedWriteConflictException": ServerError,
    "InternalServerError": ServerError,
    "InternalFailure": ServerError,
    "ServiceUnavailable": ServerError,
    "ServiceUnavailableException": ServerError,
    "AccessDeniedException": AccessDenied,
    "UnrecognizedClientException": AccessDenied,
    "InvalidSignatureException": AccessDenied,
    "MissingAuthenticationTokenException": AccessDenied,
    "ExpiredTokenException": AccessDenied,
    "IncompleteSignatureException": AccessDenied,
}


def error_from_response(status: int, body: Mapping[str, Any], operation: str = "") -> ServiceError:
    """Build the exception for an error answer (``status`` >= 400, ``body`` decoded JSON)."""
    raw_type = body.get("__type")
    code = raw_type.rpartition("#")[2] if isinstance(raw_type, str) and raw_type else ""
    message = body.get("message", body.get("Message", ""))
    if not isinstance(message, str):
        message = str(message)
    cls = _ERRORS.get(code)
    if cls is None:
        cls = ServerError if status >= 500 else ServiceError
    if not code:
        code = f"HTTP{status}"
    return cls(code, message, status=status, body=body, operation=operation)


class OffloadError(AsyncDynError):
    """S3 failed an offloaded attribute's object (``asyncdyn.offload``): an upload before a
    write (DynamoDB was then not written), or a download on a read.

    ``bucket`` and ``object_key`` name the object, ``item_key`` the item (its key attributes),
    ``attribute`` the attribute; the S3 error is the ``__cause__``. On a read, ``partial`` is
    the answer as far as it goes: every item, the attributes read in place, each one whose
    object failed still an ``Offloaded`` handle (for a ``batch_get``, aligned with the keys).
    """

    partial: list[dict[str, Any] | None] | None = None

    def __init__(
        self,
        message: str,
        *,
        bucket: str,
        object_key: str,
        item_key: Mapping[str, Any] | None = None,
        attribute: str = "",
    ) -> None:
        self.bucket = bucket
        self.object_key = object_key
        self.item_key = dict(item_key) if item_key is not None else None
        self.attribute = attribute
        item = f" of item {self.item_key!r}" if self.item_key is not None else ""
        named = f" (attribute {attribute!r}{item})" if attribute else item
        super().__init__(f"{message}: s3://{bucket}/{object_key}{named}")


class DanglingReference(OffloadError):
    """An item refers to an offloaded S3 object that does not exist (deleted by hand, by a
    lifecycle rule, or the item was copied from elsewhere)."""


class CorruptAttribute(AsyncDynError, ValueError):
    """A compressed or offloaded attribute whose stored bytes cannot be read back: an unknown
    codec header, a codec that is not installed (zstd without ``zstandard``), or an S3
    object whose SHA-256 is not the one its reference names. ``attribute`` names it;
    ``partial``, on a read of offloaded attributes, is the answer as far as it goes (as for
    ``OffloadError``)."""

    partial: list[dict[str, Any] | None] | None = None

    def __init__(self, message: str, attribute: str = "") -> None:
        self.attribute = attribute
        super().__init__(f"{attribute}: {message}" if attribute else message)
