"""SigV4 vectors checked byte-for-byte against botocore's SigV4Auth, and the key cache."""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterator

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest

from asyncdyn import signing
from asyncdyn.credentials import Credentials
from asyncdyn.signing import SigV4Signer

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1", "local"]
TARGETS = [
    "DynamoDB_20120810.GetItem",
    "DynamoDB_20120810.PutItem",
    "DynamoDB_20120810.Query",
    "DynamoDB_20120810.BatchWriteItem",
    "DynamoDB_20120810.TransactWriteItems",
    "DynamoDBStreams_20120810.GetRecords",
    "DynamoDBStreams_20120810.GetShardIterator",
]


def _botocore_sign(
    *,
    url: str,
    headers: dict[str, str],
    body: bytes,
    creds: Credentials,
    region: str,
    now: float,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """What botocore's SigV4Auth puts on the same request at the same instant."""
    frozen = datetime.datetime.fromtimestamp(now, datetime.UTC).replace(tzinfo=None)
    # botocore.auth reads the clock through botocore.compat.get_current_datetime, imported by
    # name into botocore.auth.
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: frozen)
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    auth = botocore.auth.SigV4Auth(
        botocore.credentials.Credentials(creds.access_key, creds.secret_key, creds.token),
        "dynamodb",
        region,
    )
    auth.add_auth(request)
    return {k: str(v) for k, v in request.headers.items()}


def _cases(count: int, seed: int) -> Iterator[tuple[str, str, str, dict[str, str], bytes, float]]:
    rng = random.Random(seed)
    for i in range(count):
        region = rng.choice(REGIONS)
        if i % 3 == 0:
            scheme, host = "http", f"127.0.0.1:{rng.choice([8000, 4567, 65535])}"
        elif i % 3 == 1:
            scheme, host = "https", f"dynamodb.{region}.amazonaws.com"
        else:
            scheme, host = "http", "localhost:8000"
        headers = {
            "Host": host,
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": rng.choice(TARGETS),
            "Accept-Encoding": "identity",
        }
        size = rng.choice([0, 1, 17, 300, 5000, 70_000])
        body = rng.randbytes(size) if i % 2 else rng.choice(["{}", '{"TableName":"t"}']).encode()
        # 2001-09-09 .. 2033-05-18, fractional seconds included: spans many days and years.
        now = rng.uniform(1_000_000_000, 2_000_000_000)
        yield scheme, host, region, headers, body, now


def _creds(rng: random.Random, with_token: bool) -> Credentials:
    ak = "AKIA" + "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", k=16))
    sk = "".join(
        rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+", k=40)
    )
    token = "FwoGZXIvYXdzE" + "".join(rng.choices("abcdefXYZ0123456789/+=", k=300))
    return Credentials(ak, sk, token if with_token else None)


@pytest.mark.parametrize("seed", range(6))
def test_matches_botocore(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1000 + seed)
    signers: dict[tuple[str, str], SigV4Signer] = {}
    checked = 0
    for i, (scheme, host, region, headers, body, now) in enumerate(_cases(8, seed)):
        creds = _creds(rng, with_token=bool((i + seed) % 2))
        # Reuse signers so that cached keys, scopes and dates are exercised too.
        signer = signers.setdefault((region, host), SigV4Signer(region=region, host=host))
        ours = dict(headers)
        signer.sign(ours, body, creds, now=now)
        theirs = _botocore_sign(
            url=f"{scheme}://{host}/",
            headers=headers,
            body=body,
            creds=creds,
            region=region,
            now=now,
            monkeypatch=monkeypatch,
        )
        assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]
        assert ours["Authorization"] == theirs["Authorization"]
        assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")
        assert ours == theirs
        checked += 1
    assert checked == 8


def test_same_credentials_many_times_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """One signer, one set of credentials, many requests: the common hot-path shape."""
    rng = random.Random(7)
    creds = _creds(rng, with_token=True)
    host = "dynamodb.eu-west-1.amazonaws.com"
    signer = SigV4Signer(region="eu-west-1", host=host)
    start = 1_700_000_000.0
    for step in range(40):
        now = start + step * 1234.5  # crosses midnight UTC
        headers = {
            "Host": host,
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": rng.choice(TARGETS),
            "Accept-Encoding": "identity",
        }
        body = rng.randbytes(rng.randrange(0, 2000))
        ours = dict(headers)
        signer.sign(ours, body, creds, now=now)
        theirs = _botocore_sign(
            url=f"https://{host}/",
            headers=headers,
            body=body,
            creds=creds,
            region="eu-west-1",
            now=now,
            monkeypatch=monkeypatch,
        )
        assert ours == theirs


def test_blacklisted_extra_and_oddly_spaced_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore skips only user-agent, expect, transfer-encoding and x-amzn-trace-id; every
    other header is signed, with its value trimmed and inner runs of spaces squeezed."""
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok")
    headers = {
        "Host": "127.0.0.1:8000",
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.GetItem",
        "Accept-Encoding": "identity",
        "User-Agent": "asyncdyn/0.1",
        "X-Amzn-Trace-Id": "Root=1-abc",
        "Expect": "100-continue",
        "Content-Length": "2",
        "X-Amz-Date-Extra": "  a   b\t c  ",
    }
    signer = SigV4Signer(region="us-east-1", host="127.0.0.1:8000")
    ours = dict(headers)
    signer.sign(ours, b"{}", creds, now=1_600_000_000)
    theirs = _botocore_sign(
        url="http://127.0.0.1:8000/",
        headers=headers,
        body=b"{}",
        creds=creds,
        region="us-east-1",
        now=1_600_000_000,
        monkeypatch=monkeypatch,
    )
    assert ours == theirs
    assert (
        "SignedHeaders=accept-encoding;content-length;content-type;host;x-amz-date;"
        "x-amz-date-extra;x-amz-security-token;x-amz-target," in ours["Authorization"]
    )


def test_host_from_signer_when_header_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    creds = Credentials("AKIDEXAMPLE", "secret")
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": TARGETS[0]}
    signer = SigV4Signer(region="us-east-1", host="127.0.0.1:8000")
    ours = dict(headers)
    signer.sign(ours, b"{}", creds, now=1_650_000_000.25)
    assert "Host" not in ours
    theirs = _botocore_sign(
        url="http://127.0.0.1:8000/",
        headers=headers,
        body=b"{}",
        creds=creds,
        region="us-east-1",
        now=1_650_000_000.25,
        monkeypatch=monkeypatch,
    )
    assert ours == theirs


def test_resigning_replaces_previous_signature_and_drops_stale_token() -> None:
    signer = SigV4Signer(region="us-east-1", host="h")
    headers = {"Host": "h", "X-Amz-Target": TARGETS[0]}
    with_token = Credentials("AK", "SK", "TOKEN")
    signer.sign(headers, b"{}", with_token, now=1_700_000_000)
    first = headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "TOKEN"

    signer.sign(headers, b"{}", with_token, now=1_700_000_000)
    assert headers["Authorization"] == first  # the old Authorization is not signed over

    signer.sign(headers, b"{}", Credentials("AK", "SK"), now=1_700_000_000)
    assert "X-Amz-Security-Token" not in headers
    assert "x-amz-security-token" not in headers["Authorization"]

    fresh = {"Host": "h", "X-Amz-Target": TARGETS[0]}
    signer.sign(fresh, b"{}", Credentials("AK", "SK"), now=1_700_000_000)
    assert fresh == headers


def test_known_vector() -> None:
    """A fixed vector, so a change in botocore cannot silently move both sides."""
    signer = SigV4Signer(region="us-east-1", host="dynamodb.us-east-1.amazonaws.com")
    headers = {
        "Host": "dynamodb.us-east-1.amazonaws.com",
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.GetItem",
        "Accept-Encoding": "identity",
    }
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    signer.sign(headers, b'{"TableName":"t"}', creds, now=1_440_938_160)  # 2015-08-30T12:36:00Z
    assert headers["X-Amz-Date"] == "20150830T123600Z"
    assert headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=accept-encoding;content-type;host;x-amz-date;x-amz-target, Signature="
    )
    assert len(headers["Authorization"].rpartition("Signature=")[2]) == 64


def test_signing_key_is_cached_per_day_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, str]] = []
    real = signing._derive_signing_key

    def counting(secret: str, date: str, region: str, service: str) -> bytes:
        calls.append((date, region, service))
        return real(secret, date, region, service)

    monkeypatch.setattr(signing, "_derive_signing_key", counting)
    signer = SigV4Signer(region="eu-west-1", host="h")
    creds = Credentials("AK", "SECRET-1")
    day = 1_700_006_400  # 2023-11-15T00:00:00Z
    for offset in (0, 1, 59, 3600, 86_399):
        signer.sign({"Host": "h"}, b"{}", creds, now=day + offset)
    assert calls == [("20231115", "eu-west-1", "dynamodb")]

    # An equal but distinct Credentials object is still a hit.
    signer.sign({"Host": "h"}, b"{}", Credentials("AK", "SECRET-1", "tok"), now=day + 5)
    assert len(calls) == 1

    # A new access key with the same secret changes the scope, not the key.
    other_ak = {"Host": "h"}
    signer.sign(other_ak, b"{}", Credentials("AK2", "SECRET-1"), now=day + 5)
    assert len(calls) == 1
    assert "Credential=AK2/20231115/" in other_ak["Authorization"]

    signer.sign({"Host": "h"}, b"{}", Credentials("AK2", "SECRET-2"), now=day + 6)
    assert len(calls) == 2

    signer.sign({"Host": "h"}, b"{}", Credentials("AK2", "SECRET-2"), now=day + 86_400)
    assert calls[-1] == ("20231116", "eu-west-1", "dynamodb")
    assert len(calls) == 3

    # Going back to yesterday (a clock step) recomputes rather than using a wrong key.
    signer.sign({"Host": "h"}, b"{}", Credentials("AK2", "SECRET-2"), now=day + 10)
    assert calls[-1][0] == "20231115"
    assert len(calls) == 4


def test_now_defaults_to_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signing, "_time", lambda: 1_440_938_160.9)
    headers = {"Host": "h"}
    SigV4Signer(region="us-east-1", host="h").sign(headers, b"", Credentials("AK", "SK"))
    assert headers["X-Amz-Date"] == "20150830T123600Z"


def test_repr_has_no_secrets() -> None:
    signer = SigV4Signer(region="us-east-1", host="h")
    signer.sign({"Host": "h"}, b"", Credentials("AK", "TOPSECRET", "TOKEN"), now=1e9)
    assert "TOPSECRET" not in repr(signer)
    assert "TOKEN" not in repr(signer)
