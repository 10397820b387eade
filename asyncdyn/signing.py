"""AWS Signature Version 4 for DynamoDB's JSON protocol: ``POST /`` with an empty query.

Every request is signed, so this is on the hot path. What is constant per signer (region,
service, the fixed parts of the canonical request) is computed once; what is constant per
day and credentials (the HMAC-derived signing key, the credential scope) is cached; what is
constant per second (the ``X-Amz-Date`` value) is cached; and the canonical header layout
is cached per set of header names. Per request that leaves one SHA-256 of the body, one of
the canonical request and one HMAC.

The result is byte-for-byte what botocore's ``SigV4Auth`` produces for the same request
(``tests/unit/test_signing.py`` checks that), including its choice of signed headers: every
header present except ``expect``, ``transfer-encoding``, ``user-agent`` and
``x-amzn-trace-id``. A header added to ``headers`` before ``sign`` is therefore signed, and
must reach the server unchanged.

Nothing here logs: the canonical request, the key and the signature stay in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asyncdyn.credentials import Credentials

__all__ = ["SigV4Signer"]

_ALGORITHM = "AWS4-HMAC-SHA256"
_TERMINATOR = "aws4_request"
# botocore's SIGNED_HEADERS_BLACKLIST. "authorization" is left out of the signature too: a
# previous attempt's header is removed before signing, exactly as botocore does.
_UNSIGNED = frozenset({"expect", "transfer-encoding", "user-agent", "x-amzn-trace-id"})
_MAX_PLANS = 64
_MAX_TRIMMED = 256

_sha256 = hashlib.sha256
# HMAC-SHA256 pads its key to the 64-byte block and XORs it with these bytes (RFC 2104).
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_hmac_digest = hmac.digest
_floor = math.floor
_time = time.time

# How one line of the canonical headers gets its value.
_PLAIN = 0  # one header, value trimmed (through the cache)
_DATE = 1  # X-Amz-Date: set by sign itself, needs no trimming
_TOKEN = 2  # X-Amz-Security-Token: trimmed once per token
_HOST = 3  # no Host header: the signer's host (botocore then takes it from the URL)
_MERGED = 4  # case-variants of one name: values joined with "," in insertion order (botocore)
# A line: its "name:" prefix, kind, and the header keys it reads.
_Line = tuple[str, int, tuple[str, ...]]
_Plan = tuple[tuple[_Line, ...], str]


def _derive_signing_key(secret_key: str, date_stamp: str, region: str, service: str) -> bytes:
    """The SigV4 signing key: HMAC chain over date, region, service and terminator."""
    key = _hmac_digest(("AWS4" + secret_key).encode(), date_stamp.encode(), "sha256")
    key = _hmac_digest(key, region.encode(), "sha256")
    key = _hmac_digest(key, service.encode(), "sha256")
    return _hmac_digest(key, _TERMINATOR.encode(), "sha256")


def _plan(names: tuple[str, ...]) -> _Plan:
    grouped: dict[str, list[str]] = {}
    for name in names:
        lname = name.lower()
        if lname in _UNSIGNED or lname == "authorization":
            continue
        grouped.setdefault(lname, []).append(name)
    if "host" not in grouped:
        grouped["host"] = []
    # Sort on the bare names: with the ":" attached, "x-amz-date-x:" would sort before
    # "x-amz-date:", unlike botocore.
    ordered = sorted(grouped)
    lines: list[_Line] = []
    for lname in ordered:
        keys = tuple(grouped[lname])
        if len(keys) > 1:
            kind = _MERGED
        elif not keys:
            kind = _HOST
        elif keys[0] == "X-Amz-Date":
            kind = _DATE
        elif keys[0] == "X-Amz-Security-Token":
            kind = _TOKEN
        else:
            kind = _PLAIN
        lines.append((lname + ":", kind, keys))
    return tuple(lines), ";".join(ordered)


def _trim(value: str) -> str:
    # SigV4 "Trimall", as botocore does it: strip, and squeeze inner whitespace to one space.
    return " ".join(value.split())


class SigV4Signer:
    """Signs DynamoDB (and DynamoDB Streams) JSON requests with AWS SigV4.

    ``host`` is what the request's ``Host`` header says (``dynamodb.eu-west-1.amazonaws.com``,
    ``127.0.0.1:8000``); it is signed only when ``headers`` has no ``Host`` of its own.
    Streams requests are signed with service ``"dynamodb"`` as well.
    """

    __slots__ = (
        "_auth_prefix",
        "_date_stamp",
        "_day",
        "_host",
        "_key_access",
        "_key_day",
        "_key_secret",
        "_mac_inner",
        "_mac_outer",
        "_plans",
        "_region",
        "_scope",
        "_second",
        "_service",
        "_sts_prefix",
        "_amz_date",
        "_token",
        "_token_trimmed",
        "_trimmed",
    )

    def __init__(self, *, region: str, host: str, service: str = "dynamodb") -> None:
        self._region = region
        self._host = host.lower()
        self._service = service
        self._plans: dict[tuple[str, ...], _Plan] = {}
        self._day = -1
        self._date_stamp = ""
        self._scope = ""
        self._sts_prefix = ""
        self._second = -1
        self._amz_date = ""
        self._key_day = -1
        self._key_secret: str | None = None
        self._key_access: str | None = None
        self._mac_inner = _sha256()
        self._mac_outer = _sha256()
        self._auth_prefix = ""
        self._token: str | None = None
        self._token_trimmed = ""
        # Header values repeat (host, content type, a dozen targets): trimming each distinct
        # value once saves ~0.1 us per header per request.
        self._trimmed: dict[str, str] = {}

    @property
    def region(self) -> str:
        """The region in the credential scope."""
        return self._region

    @property
    def service(self) -> str:
        """The service name in the credential scope."""
        return self._service

    def __repr__(self) -> str:
        return (
            f"SigV4Signer(region={self._region!r}, host={self._host!r}, service={self._service!r})"
        )

    def _new_day(self, day: int) -> None:
        self._day = day
        self._date_stamp = time.strftime("%Y%m%d", time.gmtime(day * 86400))
        self._scope = f"{self._date_stamp}/{self._region}/{self._service}/{_TERMINATOR}"

    def _new_second(self, second: int) -> None:
        day, rest = divmod(second, 86400)
        if day != self._day:
            self._new_day(day)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        self._second = second
        self._amz_date = f"{self._date_stamp}T{hours:02d}{minutes:02d}{seconds:02d}Z"
        self._sts_prefix = f"{_ALGORITHM}\n{self._amz_date}\n{self._scope}\n"

    def _rekey(self, credentials: Credentials) -> None:
        day = self._day
        if day != self._key_day or credentials.secret_key != self._key_secret:
            key = _derive_signing_key(
                credentials.secret_key, self._date_stamp, self._region, self._service
            ).ljust(64, b"\0")
            # The HMAC of each request is computed from these two pre-keyed hash states:
            # copying them is ~1 us cheaper than hmac.digest, which re-keys OpenSSL per call.
            self._mac_inner = _sha256(key.translate(_IPAD))
            self._mac_outer = _sha256(key.translate(_OPAD))
        self._key_day = day
        self._key_secret = credentials.secret_key
        self._key_access = credentials.access_key
        self._auth_prefix = f"{_ALGORITHM} Credential={credentials.access_key}/{self._scope}, "

    def sign(
        self,
        headers: dict[str, str],
        body: bytes,
        credentials: Credentials,
        now: float | None = None,
    ) -> None:
        """Sign ``POST /`` with ``headers`` and ``body``; ``headers`` is updated in place.

        Sets ``X-Amz-Date`` and ``Authorization``, and ``X-Amz-Security-Token`` when the
        credentials carry a session token (removing a stale one when they do not). A previous
        ``Authorization`` is dropped first, so a retried request can be signed again.
        ``now`` is a Unix timestamp; the current time when ``None``.
        """
        second = _floor(_time() if now is None else now)
        if second != self._second:
            self._new_second(second)
        if (
            self._day != self._key_day
            or credentials.secret_key != self._key_secret
            or credentials.access_key != self._key_access
        ):
            self._rekey(credentials)

        headers.pop("Authorization", None)
        headers["X-Amz-Date"] = self._amz_date
        token = credentials.token
        if token:
            headers["X-Amz-Security-Token"] = token
            if token is not self._token:
                self._token = token
                self._token_trimmed = _trim(token)
        else:
            headers.pop("X-Amz-Security-Token", None)

        names = tuple(headers)
        plan = self._plans.get(names)
        if plan is None:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            plan = self._plans[names] = _plan(names)
        lines, signed = plan

        trimmed = self._trimmed
        parts = ["POST\n/\n\n"]
        append = parts.append
        for prefix, kind, keys in lines:
            if kind == _PLAIN:
                raw = headers[keys[0]]
                value = trimmed.get(raw)
                if value is None:
                    if len(trimmed) >= _MAX_TRIMMED:
                        trimmed.clear()
                    value = trimmed[raw] = _trim(raw)
            elif kind == _DATE:
                value = self._amz_date
            elif kind == _TOKEN:
                value = self._token_trimmed
            elif kind == _HOST:
                value = self._host
            else:
                value = ",".join([_trim(headers[k]) for k in keys])
            append(f"{prefix}{value}\n")
        append(f"\n{signed}\n{_sha256(body).hexdigest()}")

        canonical_hash = _sha256("".join(parts).encode()).hexdigest()
        inner = self._mac_inner.copy()
        inner.update((self._sts_prefix + canonical_hash).encode())
        outer = self._mac_outer.copy()
        outer.update(inner.digest())
        signature = outer.hexdigest()
        headers["Authorization"] = (
            f"{self._auth_prefix}SignedHeaders={signed}, Signature={signature}"
        )
