"""Credentials providers, region and endpoint resolution. No sockets: IMDS is disabled and
the host's AWS configuration is replaced by temporary files."""

from __future__ import annotations

import asyncio
import datetime
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.credentials import (
    AioCredentials,
    AioDeferredRefreshableCredentials,
    AioRefreshableCredentials,
)
from botocore.exceptions import CredentialRetrievalError

from asyncdyn import credentials as credmod
from asyncdyn.credentials import (
    BotocoreCredentials,
    Credentials,
    CredentialsProvider,
    StaticCredentials,
    credentials_provider,
    resolve_endpoint,
    resolve_region,
)
from asyncdyn.errors import ConfigurationError

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLETOKEN"


class AwsFiles:
    """The temporary shared config and credentials files the tests write into."""

    def __init__(self, config: Path, credentials: Path) -> None:
        self.config = config
        self.credentials = credentials


@pytest.fixture(autouse=True)
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AwsFiles:
    """No AWS setting of the host leaks in; nothing reaches for the network."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name == "BOTO_CONFIG":
            monkeypatch.delenv(name)
    config = tmp_path / "config"
    creds = tmp_path / "credentials"
    boto = tmp_path / "boto.cfg"
    for path in (config, creds, boto):
        path.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("BOTO_CONFIG", str(boto))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return AwsFiles(config, creds)


# --- Credentials and static providers -------------------------------------------------------


def test_credentials_repr_hides_secret_and_token() -> None:
    creds = Credentials("AKIDEXAMPLE", SECRET, TOKEN)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert SECRET not in text
        assert TOKEN not in text
        assert "AKIDEXAMPLE" in text
        assert "***" in text
    assert (
        repr(Credentials("AK", SECRET))
        == "Credentials(access_key='AK', secret_key='***', token=None)"
    )


def test_credentials_are_frozen_and_validated() -> None:
    creds = Credentials("AK", SECRET)
    with pytest.raises(AttributeError):
        creds.secret_key = "other"  # type: ignore[misc]
    assert Credentials("AK", SECRET, "").token is None
    with pytest.raises(ConfigurationError, match="secret_key") as info:
        Credentials("AK", "")
    with pytest.raises(ConfigurationError, match="access_key"):
        Credentials("", SECRET)
    with pytest.raises(ConfigurationError, match="token") as info:
        Credentials("AK", SECRET, 12)  # type: ignore[arg-type]
    assert SECRET not in str(info.value)


async def test_static_credentials() -> None:
    provider = StaticCredentials("AK", SECRET, TOKEN)
    first = await provider.get()
    assert first == Credentials("AK", SECRET, TOKEN)
    assert await provider.get() is first
    assert SECRET not in repr(provider) and TOKEN not in repr(provider)
    assert isinstance(provider, CredentialsProvider)


async def test_credentials_provider_forms() -> None:
    creds = Credentials("AK", SECRET)
    from_obj = credentials_provider(creds)
    assert isinstance(from_obj, StaticCredentials)
    assert await from_obj.get() is creds

    assert await credentials_provider(("AK", SECRET)).get() == Credentials("AK", SECRET)
    assert await credentials_provider(("AK", SECRET, None)).get() == Credentials("AK", SECRET)
    assert await credentials_provider(("AK", SECRET, TOKEN)).get() == Credentials(
        "AK", SECRET, TOKEN
    )

    class Mine:
        async def get(self) -> Credentials:
            return creds

    mine = Mine()
    assert credentials_provider(mine) is mine

    chain = credentials_provider(None, profile="p")
    assert isinstance(chain, BotocoreCredentials)
    assert "p" in repr(chain)


def test_credentials_provider_rejects_bad_input_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError, match="2 or|tuple") as info:
        credentials_provider(("AK", SECRET, TOKEN, "extra"))  # type: ignore[arg-type]
    assert SECRET not in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        credentials_provider(("AK", 1234))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="dict") as info:
        credentials_provider({"access_key": "AK", "secret_key": SECRET})  # type: ignore[arg-type]
    assert SECRET not in str(info.value)


# --- BotocoreCredentials over the real chain -----------------------------------------------


async def test_chain_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    provider = BotocoreCredentials()
    first = await provider.get()
    assert first == Credentials("AKENV", SECRET, TOKEN)
    # Static credentials from the chain are resolved once.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKCHANGED")
    assert await provider.get() is first
    assert SECRET not in repr(provider) and TOKEN not in repr(provider)


async def test_chain_reads_profile(aws_env: AwsFiles) -> None:
    aws_env.credentials.write_text(
        f"[default]\naws_access_key_id = AKDEF\naws_secret_access_key = {SECRET}\n\n"
        f"[other]\naws_access_key_id = AKOTHER\naws_secret_access_key = {SECRET}x\n"
    )
    assert await BotocoreCredentials().get() == Credentials("AKDEF", SECRET)
    assert await BotocoreCredentials("other").get() == Credentials("AKOTHER", SECRET + "x")


async def test_chain_unknown_profile() -> None:
    with pytest.raises(ConfigurationError, match="nope"):
        await BotocoreCredentials("nope").get()


async def test_chain_without_credentials_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no AWS credentials found") as info:
        await BotocoreCredentials().get()
    assert "AWS_ACCESS_KEY_ID" in str(info.value)


async def test_chain_is_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str | None] = []
    real = credmod._new_aio_session

    def spy(profile: str | None) -> Any:
        made.append(profile)
        return real(profile)

    monkeypatch.setattr(credmod, "_new_aio_session", spy)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    provider = BotocoreCredentials()
    assert made == []
    await asyncio.gather(*(provider.get() for _ in range(10)))
    assert made == [None]


# --- BotocoreCredentials over refreshable credentials ---------------------------------------

T0 = 1_800_000_000.0


class Clock:
    """One clock for both sides: asyncdyn's cache and botocore's refresh decision."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def dt(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.now, datetime.UTC)


class FakeSession:
    """Stands in for AioSession: hands out one credentials object."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.loads = 0

    async def get_credentials(self) -> Any:
        self.loads += 1
        return self.source


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat()


class Issuer:
    """A credentials endpoint: each refresh issues a new key valid for ``lifetime`` seconds."""

    def __init__(self, clock: Clock, lifetime: float = 3600.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.fail: BaseException | None = None
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def __call__(self) -> dict[str, str]:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return {
            "access_key": f"AK{self.calls}",
            "secret_key": f"{SECRET}{self.calls}",
            "token": f"{TOKEN}{self.calls}",
            "expiry_time": _iso(self.clock.now + self.lifetime),
        }


def _refreshable(
    clock: Clock, issuer: Callable[[], Awaitable[dict[str, str]]], expires_in: float
) -> AioRefreshableCredentials:
    return AioRefreshableCredentials(
        "AK0",
        f"{SECRET}0",
        f"{TOKEN}0",
        datetime.datetime.fromtimestamp(clock.now + expires_in, datetime.UTC),
        issuer,
        "fake",
        time_fetcher=clock.dt,
    )


def _counting(source: Any) -> list[int]:
    """Count the calls into aiobotocore's get_frozen_credentials."""
    count = [0]
    real = source.get_frozen_credentials

    async def wrapper() -> Any:
        count[0] += 1
        return await real()

    source.get_frozen_credentials = wrapper
    return count


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(credmod, "_now", clock)
    return clock


async def test_refreshable_is_cached_until_the_advisory_window(clock: Clock) -> None:
    issuer = Issuer(clock)
    source = _refreshable(clock, issuer, expires_in=3600)
    asked = _counting(source)
    session = FakeSession(source)
    provider = BotocoreCredentials(session=session)

    first = await provider.get()
    assert first == Credentials("AK0", f"{SECRET}0", f"{TOKEN}0")
    for step in range(100):
        clock.now = T0 + step * 26  # up to 44 minutes: still outside the 15-minute window
        assert await provider.get() is first
    assert asked[0] == 1 and issuer.calls == 0 and session.loads == 1

    clock.now = T0 + 3600 - 14 * 60  # advisory window: refresh
    second = await provider.get()
    assert second == Credentials("AK1", f"{SECRET}1", f"{TOKEN}1")
    assert issuer.calls == 1 and asked[0] == 2
    clock.now += 60
    assert await provider.get() is second
    assert asked[0] == 2 and session.loads == 1


async def test_failed_advisory_refresh_keeps_credentials_and_retries_later(clock: Clock) -> None:
    issuer = Issuer(clock)
    issuer.fail = CredentialRetrievalError(provider="fake", error_msg="endpoint down")
    source = _refreshable(clock, issuer, expires_in=3600)
    asked = _counting(source)
    provider = BotocoreCredentials(session=FakeSession(source))

    clock.now = T0 + 3600 - 12 * 60  # advisory, not mandatory
    first = await provider.get()
    assert first.access_key == "AK0" and issuer.calls == 1
    # Not a metadata call per request: the next attempt waits a few seconds.
    for _ in range(50):
        assert await provider.get() is first
    assert asked[0] == 1
    clock.now += credmod._RETRY_INTERVAL + 0.1
    assert await provider.get() is first
    assert asked[0] == 2 and issuer.calls == 2

    issuer.fail = None
    clock.now += credmod._RETRY_INTERVAL + 0.1
    assert (await provider.get()).access_key == "AK3"


async def test_failed_mandatory_refresh_is_a_configuration_error(clock: Clock) -> None:
    issuer = Issuer(clock)
    issuer.fail = CredentialRetrievalError(provider="fake", error_msg="endpoint down")
    source = _refreshable(clock, issuer, expires_in=3600)
    provider = BotocoreCredentials(session=FakeSession(source))
    await provider.get()

    clock.now = T0 + 3600 - 5 * 60  # mandatory window
    with pytest.raises(ConfigurationError, match="could not refresh") as info:
        await provider.get()
    assert f"{SECRET}0" not in str(info.value) and f"{TOKEN}0" not in str(info.value)

    issuer.fail = RuntimeError("not botocore's")
    with pytest.raises(RuntimeError, match="not botocore's"):
        await provider.get()


async def test_others_keep_current_credentials_during_an_advisory_refresh(clock: Clock) -> None:
    issuer = Issuer(clock)
    source = _refreshable(clock, issuer, expires_in=3600)
    provider = BotocoreCredentials(session=FakeSession(source))
    old = await provider.get()

    clock.now = T0 + 3600 - 12 * 60
    issuer.gate = asyncio.Event()
    refreshing = asyncio.create_task(provider.get())
    await asyncio.wait_for(issuer.entered.wait(), 1)
    # The refresh is stuck on the network; everyone else signs with the current key.
    assert await asyncio.wait_for(provider.get(), 1) is old
    issuer.gate.set()
    new = await refreshing
    assert new.access_key == "AK1"
    assert await provider.get() is new
    assert issuer.calls == 1


async def test_everyone_waits_for_a_mandatory_refresh(clock: Clock) -> None:
    issuer = Issuer(clock)
    source = _refreshable(clock, issuer, expires_in=3600)
    provider = BotocoreCredentials(session=FakeSession(source))
    await provider.get()

    clock.now = T0 + 3600 - 5 * 60
    issuer.gate = asyncio.Event()
    tasks = [asyncio.create_task(provider.get()) for _ in range(5)]
    await asyncio.wait_for(issuer.entered.wait(), 1)
    await asyncio.sleep(0)
    assert not any(t.done() for t in tasks)
    issuer.gate.set()
    got = await asyncio.gather(*tasks)
    assert {c.access_key for c in got} == {"AK1"}
    assert issuer.calls == 1


async def test_short_lived_credentials_are_not_fetched_per_request(clock: Clock) -> None:
    issuer = Issuer(clock, lifetime=8 * 60)  # always inside both windows
    source = _refreshable(clock, issuer, expires_in=8 * 60)
    asked = _counting(source)
    provider = BotocoreCredentials(session=FakeSession(source))
    first = await provider.get()
    for _ in range(20):
        assert await provider.get() is first
    assert asked[0] == 1
    clock.now += credmod._RETRY_INTERVAL + 0.1
    assert (await provider.get()).access_key != first.access_key


async def test_deferred_refreshable_credentials(clock: Clock) -> None:
    issuer = Issuer(clock)
    source = AioDeferredRefreshableCredentials(issuer, "fake", time_fetcher=clock.dt)
    provider = BotocoreCredentials(session=FakeSession(source))
    first = await provider.get()
    assert first.access_key == "AK1"
    clock.now += 40 * 60
    assert await provider.get() is first
    clock.now += 10 * 60
    assert (await provider.get()).access_key == "AK2"


async def test_static_credentials_from_a_session_are_resolved_once(clock: Clock) -> None:
    source = AioCredentials("AKS", SECRET, None)
    asked = _counting(source)
    provider = BotocoreCredentials(session=FakeSession(source))
    first = await provider.get()
    clock.now += 10 * 365 * 86400
    assert await provider.get() is first
    assert asked[0] == 1 and first == Credentials("AKS", SECRET)


async def test_session_returning_none_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        await BotocoreCredentials(session=FakeSession(None)).get()


# --- region ---------------------------------------------------------------------------------


@pytest.fixture
def no_session(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(profile: str | None) -> Any:
        raise AssertionError("a botocore session was created")

    monkeypatch.setattr(credmod, "_botocore_session", fail)


@pytest.mark.usefixtures("no_session")
def test_region_argument_and_environment_need_no_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert resolve_region("us-west-2") == "us-west-2"
    assert resolve_region(None) == "eu-west-1"
    monkeypatch.delenv("AWS_REGION")
    assert resolve_region(None) == "eu-central-1"


def test_region_from_profiles(aws_env: AwsFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.config.write_text(
        "[default]\nregion = ap-south-1\n\n[profile other]\nregion = sa-east-1\n"
    )
    assert resolve_region(None) == "ap-south-1"
    assert resolve_region(None, profile="other") == "sa-east-1"
    monkeypatch.setenv("AWS_PROFILE", "other")
    assert resolve_region(None) == "sa-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")  # environment beats the profile
    assert resolve_region(None, profile="other") == "us-east-2"


def test_region_missing_or_invalid() -> None:
    with pytest.raises(ConfigurationError, match=r"no region: pass region= or set AWS_REGION"):
        resolve_region(None)
    with pytest.raises(ConfigurationError, match="invalid region"):
        resolve_region("us east 1")
    with pytest.raises(ConfigurationError, match="invalid region"):
        resolve_region("-us-east-1")
    with pytest.raises(ConfigurationError, match="nope"):
        resolve_region(None, profile="nope")


def test_loopback_endpoint_needs_no_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # A laptop with no AWS setup: a local server takes any region.
    for url in ("http://localhost:8000", "http://127.0.0.1:4567", "http://[::1]:8000"):
        assert resolve_region(None, endpoint_url=url) == "us-east-1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.2:9000")
    assert resolve_region(None) == "us-east-1"  # the configured endpoint counts too
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert resolve_region(None, endpoint_url="http://localhost:8000") == "eu-west-1"


def test_real_endpoint_still_needs_a_region() -> None:
    for url in (None, "https://dynamodb.eu-west-1.amazonaws.com", "http://10.0.0.5:8000"):
        with pytest.raises(ConfigurationError, match=r"no region"):
            resolve_region(None, endpoint_url=url)
    with pytest.raises(ConfigurationError, match="invalid region"):
        resolve_region("us east 1", endpoint_url="http://localhost:8000")


# --- endpoint -------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_session")
def test_endpoint_argument_and_environment_need_no_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://global:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://ddb:2")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "http://streams:3")
    assert resolve_endpoint("http://localhost:8000/", "us-east-1") == "http://localhost:8000"
    assert resolve_endpoint(None, "us-east-1") == "http://ddb:2"
    assert resolve_endpoint(None, "us-east-1", service="streams") == "http://streams:3"
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
    assert resolve_endpoint(None, "us-east-1") == "http://global:1"
    assert resolve_endpoint(None, "us-east-1", service="streams") == "http://global:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "")  # empty counts as unset
    assert resolve_endpoint(None, "us-east-1") == "http://global:1"
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE")
    assert resolve_endpoint(None, "us-east-1") == "https://dynamodb.us-east-1.amazonaws.com"


def test_public_endpoints() -> None:
    assert resolve_endpoint(None, "us-east-1") == "https://dynamodb.us-east-1.amazonaws.com"
    assert resolve_endpoint(None, "cn-north-1") == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    assert (
        resolve_endpoint(None, "eu-west-1", service="streams")
        == "https://streams.dynamodb.eu-west-1.amazonaws.com"
    )
    assert (
        resolve_endpoint(None, "cn-northwest-1", service="streams")
        == "https://streams.dynamodb.cn-northwest-1.amazonaws.com.cn"
    )


def test_endpoint_from_profile(aws_env: AwsFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.config.write_text(
        "[default]\nendpoint_url = http://profile-global:9000\n\n"
        "[profile svc]\nendpoint_url = http://ignored:1\nservices = local\n\n"
        "[profile broken]\nservices = missing\n\n"
        "[profile ignoring]\nendpoint_url = http://ignored:1\n"
        "ignore_configured_endpoint_urls = true\n\n"
        "[services local]\ndynamodb =\n  endpoint_url = http://svc-ddb:8000\n"
        "dynamodb_streams =\n  endpoint_url = http://svc-streams:8001\n"
    )
    assert resolve_endpoint(None, "us-east-1") == "http://profile-global:9000"
    assert resolve_endpoint(None, "us-east-1", profile="svc") == "http://svc-ddb:8000"
    assert (
        resolve_endpoint(None, "us-east-1", service="streams", profile="svc")
        == "http://svc-streams:8001"
    )
    assert (
        resolve_endpoint(None, "us-east-1", profile="ignoring")
        == "https://dynamodb.us-east-1.amazonaws.com"
    )
    with pytest.raises(ConfigurationError, match="missing"):
        resolve_endpoint(None, "us-east-1", profile="broken")
    # The environment beats the profile.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://env:1")
    assert resolve_endpoint(None, "us-east-1", profile="svc") == "http://env:1"


@pytest.mark.parametrize(
    ("config", "env", "service", "profile", "region"),
    [
        ("", {}, "dynamodb", None, "us-east-1"),
        ("", {}, "dynamodb", None, "cn-north-1"),
        ("", {}, "dynamodbstreams", None, "eu-west-1"),
        ("", {"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000"}, "dynamodb", None, "us-east-1"),
        (
            "",
            {"AWS_ENDPOINT_URL_DYNAMODB_STREAMS": "http://127.0.0.1:8001"},
            "dynamodbstreams",
            None,
            "us-east-1",
        ),
        ("", {"AWS_ENDPOINT_URL": "https://proxy.example:8443"}, "dynamodb", None, "us-east-1"),
        (
            "[profile p]\nendpoint_url = http://g:1\nservices = s\n"
            "[services s]\ndynamodb =\n  endpoint_url = http://d:2\n",
            {},
            "dynamodb",
            "p",
            "us-east-1",
        ),
    ],
)
def test_endpoint_agrees_with_botocore(
    aws_env: AwsFiles,
    monkeypatch: pytest.MonkeyPatch,
    config: str,
    env: dict[str, str],
    service: str,
    profile: str | None,
    region: str,
) -> None:
    import botocore.session

    aws_env.config.write_text(config)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = botocore.session.Session(profile=profile).create_client(
        service, region_name=region, aws_access_key_id="AK", aws_secret_access_key="SK"
    )
    ours = resolve_endpoint(
        None,
        region,
        service="streams" if service == "dynamodbstreams" else service,
        profile=profile,
    )
    assert ours == client.meta.endpoint_url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "localhost:8000",
        "ftp://localhost",
        "http://",
        "http://localhost:notaport",
        "http://localhost:8000/prefix",
        "http://localhost:8000/?x=1",
        "http://user:pw@localhost:8000",
    ],
)
def test_bad_endpoints(url: str) -> None:
    with pytest.raises(ConfigurationError, match="endpoint_url"):
        resolve_endpoint(url, "us-east-1")


def test_endpoint_normalisation_and_unknown_service() -> None:
    assert resolve_endpoint("HTTP://LocalHost:8000/", "x") == "http://localhost:8000"
    assert resolve_endpoint("http://[::1]:8000", "x") == "http://[::1]:8000"
    assert resolve_endpoint(" https://h ", "x") == "https://h"
    with pytest.raises(ConfigurationError, match="unknown service"):
        resolve_endpoint(None, "us-east-1", service="s3")


# --------------------------------------------------------------------------- loopback


LOCAL = Credentials("local", "local")


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://localhost:8000",
        "http://LOCALHOST:8000",
        "http://127.0.0.1:8000",
        "http://127.8.9.10:4567",
        "http://[::1]:8000",
        "https://localhost",
    ],
)
async def test_loopback_without_configuration_signs_with_local_credentials(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_chain(profile: str | None) -> Any:
        raise AssertionError("the provider chain must not be walked on loopback")

    monkeypatch.setattr(credmod, "_new_aio_session", no_chain)
    provider = credentials_provider(None, endpoint_url=endpoint)
    assert isinstance(provider, StaticCredentials)
    assert await provider.get() == LOCAL


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://dynamodb.us-east-1.amazonaws.com",
        "http://10.0.0.5:8000",
        "http://192.168.1.2:8000",
        "http://localhost.example.com:8000",
        "http://[::2]:8000",
        None,
    ],
)
def test_other_endpoints_keep_the_full_chain(endpoint: str | None) -> None:
    assert isinstance(credentials_provider(None, endpoint_url=endpoint), BotocoreCredentials)


@pytest.mark.parametrize(
    "variable",
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ],
)
def test_configured_environment_keeps_the_chain_on_loopback(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "x")
    assert not credmod.local_credentials_apply("http://127.0.0.1:8000")
    provider = credentials_provider(None, endpoint_url="http://127.0.0.1:8000")
    assert isinstance(provider, BotocoreCredentials)


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "")
    assert credmod.local_credentials_apply("http://127.0.0.1:8000")


def test_a_profile_keeps_the_chain_on_loopback() -> None:
    assert not credmod.local_credentials_apply("http://localhost:8000", profile="dev")
    provider = credentials_provider(None, profile="dev", endpoint_url="http://localhost:8000")
    assert isinstance(provider, BotocoreCredentials)


@pytest.mark.parametrize(
    ("credentials_text", "config_text", "local"),
    [
        ("", "", True),
        ("", "[default]\nregion = eu-west-1\noutput = json\n", True),
        ("[work]\naws_access_key_id = AKIAX\naws_secret_access_key = s\n", "", True),
        ("", "[profile work]\ncredential_process = /bin/false\n", True),
        ("[default]\naws_access_key_id = AKIAX\naws_secret_access_key = s\n", "", False),
        ("", "[default]\ncredential_process = /bin/false\n", False),
        ("", "[default]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = x\n", False),
        ("", "[default]\nsso_session = corp\n", False),
        ("", "[default]\naws_access_key_id = AKIAX\n", False),
        ("not an ini file [", "", False),  # unreadable: the chain reports it
    ],
)
def test_shared_files_decide_for_the_default_profile(
    aws_env: AwsFiles, credentials_text: str, config_text: str, local: bool
) -> None:
    aws_env.credentials.write_text(credentials_text)
    aws_env.config.write_text(config_text)
    assert credmod.local_credentials_apply("http://127.0.0.1:8000") is local


def test_default_files_are_read_from_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AWS_CONFIG_FILE")
    monkeypatch.delenv("AWS_SHARED_CREDENTIALS_FILE")
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    assert credmod.local_credentials_apply("http://127.0.0.1:8000")
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text("[default]\naws_access_key_id = AKIAX\n")
    assert not credmod.local_credentials_apply("http://127.0.0.1:8000")


def test_explicit_credentials_win_on_loopback() -> None:
    provider = credentials_provider(("AKIAEXAMPLE", SECRET), endpoint_url="http://127.0.0.1:1")
    assert isinstance(provider, StaticCredentials)
    assert asyncio.run(provider.get()) == Credentials("AKIAEXAMPLE", SECRET)


def test_local_choice_is_logged_once_at_debug(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(credmod, "_local_logged", False)
    caplog.set_level("DEBUG", logger="asyncdyn.credentials")
    for _ in range(3):
        credentials_provider(None, endpoint_url="http://127.0.0.1:8000")
    records = [r for r in caplog.records if r.name == "asyncdyn.credentials"]
    assert len(records) == 1
    assert records[0].levelname == "DEBUG"
    assert "loopback" in records[0].getMessage() and "127.0.0.1:8000" in records[0].getMessage()


async def test_client_on_loopback_signs_with_local_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from asyncdyn import Client
    from asyncdyn.testing import ScriptedTransport, answer

    def no_chain(profile: str | None) -> Any:
        raise AssertionError("the provider chain must not be walked on loopback")

    monkeypatch.setattr(credmod, "_new_aio_session", no_chain)
    transport = ScriptedTransport([answer({"Item": {"PK": {"S": "a"}}})])
    async with Client(
        region="us-east-1", endpoint_url="http://localhost:8000", transport=transport
    ) as db:
        assert await db.table("T").get({"PK": "a"}) == {"PK": "a"}
    authorization = transport.requests[0][0]["Authorization"]
    assert "Credential=local/" in authorization
