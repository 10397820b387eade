"""The one table from __type to exception class."""

from __future__ import annotations

import pytest

from asyncdyn import errors
from asyncdyn.errors import error_from_response

PREFIX = "com.amazonaws.dynamodb.v20120810#"


@pytest.mark.parametrize(("code", "cls"), sorted(errors._ERRORS.items()))
def test_every_mapped_code(code: str, cls: type[errors.ServiceError]) -> None:
    exc = error_from_response(400, {"__type": PREFIX + code, "message": "m"}, "GetItem")
    assert type(exc) is cls
    assert exc.code == code
    assert exc.message == "m"
    assert exc.operation == "GetItem"
    assert isinstance(exc, errors.AsyncDynError)


def test_retryable_classes() -> None:
    retryable = {c for c in errors._ERRORS.values() if c.retryable}
    assert retryable == {errors.Throttled, errors.ServerError, errors.TransactionInProgress}
    for never in (
        "ConditionalCheckFailedException",
        "ValidationException",
        "TransactionCanceledException",
        "ResourceNotFoundException",
    ):
        assert not errors._ERRORS[never].retryable
    assert errors.TransportError.retryable
    assert errors.ChecksumMismatch.retryable
    assert errors.RequestTimeout.retryable


def test_unknown_code_keeps_code_and_body() -> None:
    body = {"__type": PREFIX + "BrandNewException", "Message": "capital M", "Extra": 1}
    exc = error_from_response(400, body)
    assert type(exc) is errors.ServiceError
    assert exc.code == "BrandNewException"
    assert exc.message == "capital M"
    assert exc.body == body
    assert not exc.retryable


def test_unknown_5xx_is_a_server_error() -> None:
    exc = error_from_response(503, {})
    assert type(exc) is errors.ServerError
    assert exc.code == "HTTP503"
    assert exc.retryable


def test_invalid_item_names_its_path() -> None:
    exc = errors.InvalidItem("empty set", "a.b[2]")
    assert exc.path == "a.b[2]"
    assert str(exc) == "a.b[2]: empty set"
    assert isinstance(exc, ValueError)
