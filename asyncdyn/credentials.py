"""Credentials, region and endpoint: borrowed from botocore, cached for the hot path.

The standard AWS provider chain (environment, shared config and credentials files, SSO,
web identity, container and instance metadata) is hard to get right, so it is aiobotocore's
job; asyncdyn only asks it again when the credentials it handed out are close to expiry.
``CredentialsProvider.get`` runs before every request, so the cached path is a clock read
and a comparison.

botocore and aiobotocore are imported lazily: ``import asyncdyn`` stays cheap, and nothing
touches them when every argument is given explicitly.

On a loopback endpoint (a local server such as moto, dynalite or DynamoDB Local, none of
which checks signatures) with no credentials configured, fixed local credentials are used
instead of the chain: the chain would end in a slow instance-metadata lookup and then fail
with "no AWS credentials found". ``local_credentials_apply`` defines "configured".

Only that choice is logged (once per process, at debug level); no exception message
carries a secret key or session token.
"""

from __future__ import annotations

import asyncio
import configparser
import ipaddress
import logging
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from asyncdyn.errors import ConfigurationError

__all__ = [
    "BotocoreCredentials",
    "Credentials",
    "CredentialsProvider",
    "StaticCredentials",
    "LOCAL_CREDENTIALS",
    "LOCAL_REGION",
    "credentials_provider",
    "is_loopback",
    "local_credentials_apply",
    "resolve_endpoint",
    "resolve_region",
]

# botocore's defaults (credentials.py: _DEFAULT_ADVISORY_REFRESH_TIMEOUT and
# _DEFAULT_MANDATORY_REFRESH_TIMEOUT), used when a credentials object does not say.
_ADVISORY_WINDOW = 15 * 60.0
_MANDATORY_WINDOW = 10 * 60.0
# When a refresh inside the advisory window leaves credentials that are still inside it
# (a failed advisory refresh, or an issuer of short-lived credentials), ask again at most
# this often instead of on every request: thousands of requests a second must not become
# thousands of metadata-service calls.
_RETRY_INTERVAL = 5.0

_now = time.time

_log = logging.getLogger(__name__)

_NO_CREDENTIALS = (
    "no AWS credentials found: pass credentials=(access_key, secret_key[, token]) or "
    "configure the standard chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile "
    "through AWS_PROFILE or profile=, SSO, web identity, or container/instance metadata)"
)


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """An access key, its secret and an optional session token.

    ``repr`` shows the access key id only; the secret and the token appear as ``***``.
    An empty token is the same as none.
    """

    access_key: str
    secret_key: str
    token: str | None = None

    def __post_init__(self) -> None:
        # Name the field only: the value may be the secret.
        if not isinstance(self.access_key, str) or not self.access_key:
            raise ConfigurationError("credentials: access_key must be a non-empty str")
        if not isinstance(self.secret_key, str) or not self.secret_key:
            raise ConfigurationError("credentials: secret_key must be a non-empty str")
        if self.token is not None and not isinstance(self.token, str):
            raise ConfigurationError("credentials: token must be a str or None")
        if self.token == "":
            object.__setattr__(self, "token", None)

    def __repr__(self) -> str:
        token = "'***'" if self.token else "None"
        return f"Credentials(access_key={self.access_key!r}, secret_key='***', token={token})"


@runtime_checkable
class CredentialsProvider(Protocol):
    """Anything that hands out current credentials; ``get`` is awaited before every request,
    so it must be cheap while its credentials are good."""

    async def get(self) -> Credentials:
        """The credentials to sign the next request with."""
        ...


class StaticCredentials:
    """A provider for credentials given explicitly; they never change."""

    __slots__ = ("_credentials",)

    def __init__(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        self._credentials = Credentials(access_key, secret_key, token)

    @classmethod
    def from_credentials(cls, credentials: Credentials) -> StaticCredentials:
        """A provider that always returns ``credentials`` (the same object)."""
        self = cls.__new__(cls)
        self._credentials = credentials
        return self

    async def get(self) -> Credentials:
        """The credentials given at construction."""
        return self._credentials

    def __repr__(self) -> str:
        return f"StaticCredentials({self._credentials!r})"


def _new_aio_session(profile: str | None) -> Any:
    from aiobotocore.session import AioSession

    return AioSession(profile=profile)


def _is_refreshable(source: Any) -> bool:
    from botocore.credentials import RefreshableCredentials

    return isinstance(source, RefreshableCredentials)


def _botocore_failure(what: str, exc: Exception) -> ConfigurationError | None:
    """A ConfigurationError for botocore's own errors (whose messages name variables, files
    and profiles, never secrets); ``None`` for anything else, which then propagates as is."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, BotoCoreError | ClientError):
        return ConfigurationError(f"{what}: {type(exc).__name__}: {exc}")
    return None


class BotocoreCredentials:
    """The standard AWS credential chain, resolved by aiobotocore and cached.

    Nothing happens at construction. The first ``get`` creates an aiobotocore session (in a
    worker thread: importing and building it takes long enough to stall the event loop) and
    resolves the chain. Static credentials are then returned forever. Refreshable ones
    (SSO, assume-role, web identity, container, instance metadata) are returned from cache
    until their advisory refresh window (15 minutes before expiry by default) opens; then
    aiobotocore's ``get_frozen_credentials`` refreshes them. While one task refreshes inside
    the advisory window, other tasks keep using the current credentials, as botocore does;
    inside the mandatory window (10 minutes before expiry) they wait for the refresh.

    ``session`` lets a caller share an existing ``AioSession``; ``profile`` picks a profile
    for the session created here.
    """

    __slots__ = (
        "_cached",
        "_frozen",
        "_lock",
        "_must_refresh_at",
        "_profile",
        "_recheck_at",
        "_session",
        "_source",
    )

    def __init__(self, profile: str | None = None, *, session: Any = None) -> None:
        self._profile = profile
        self._session = session
        self._source: Any = None
        self._frozen: Any = None
        self._cached: Credentials | None = None
        # The cached credentials are returned without asking aiobotocore until _recheck_at;
        # after _must_refresh_at, no caller may use them without a refresh attempt.
        self._recheck_at = -math.inf
        self._must_refresh_at = -math.inf
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"BotocoreCredentials(profile={self._profile!r}, current={self._cached!r})"

    @property
    def session(self) -> Any:
        """The ``AioSession`` that resolves the chain (``None`` before the first ``get``):
        another aiobotocore client made from it shares its refreshing credentials."""
        return self._session

    async def get(self) -> Credentials:
        """Current credentials; cheap unless the chain is unresolved or expiry is near."""
        cached = self._cached
        if cached is not None and _now() < self._recheck_at:
            return cached
        return await self._get_slow()

    async def _get_slow(self) -> Credentials:
        cached = self._cached
        if cached is not None and self._lock.locked() and _now() < self._must_refresh_at:
            return cached
        async with self._lock:
            cached = self._cached
            if cached is not None and _now() < self._recheck_at:
                return cached
            if self._source is None:
                self._source = await self._resolve_chain()
            try:
                frozen = await self._source.get_frozen_credentials()
            except Exception as exc:
                error = _botocore_failure("could not refresh AWS credentials", exc)
                if error is None:
                    raise
                raise error from exc
            return self._remember(frozen)

    async def _resolve_chain(self) -> Any:
        try:
            if self._session is None:
                self._session = await asyncio.to_thread(_new_aio_session, self._profile)
            source = await self._session.get_credentials()
        except Exception as exc:
            error = _botocore_failure("could not load AWS credentials", exc)
            if error is None:
                raise
            raise error from exc
        if source is None:
            raise ConfigurationError(_NO_CREDENTIALS)
        return source

    def _remember(self, frozen: Any) -> Credentials:
        cached = self._cached
        if frozen is not self._frozen or cached is None:
            if frozen is None or not frozen.access_key or not frozen.secret_key:
                raise ConfigurationError(_NO_CREDENTIALS)
            cached = Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)
            self._frozen = frozen
            self._cached = cached
        source = self._source
        # botocore keeps the expiry private; without one the credentials never need a refresh
        # (RefreshableCredentials.refresh_needed says the same).
        expiry = getattr(source, "_expiry_time", None) if _is_refreshable(source) else None
        if expiry is None:
            self._recheck_at = self._must_refresh_at = math.inf
            return cached
        expires = expiry.timestamp()
        advisory = float(getattr(source, "_advisory_refresh_timeout", _ADVISORY_WINDOW))
        mandatory = float(getattr(source, "_mandatory_refresh_timeout", _MANDATORY_WINDOW))
        now = _now()
        recheck = expires - advisory
        if recheck <= now:
            recheck = min(now + _RETRY_INTERVAL, expires)
        self._recheck_at = recheck
        self._must_refresh_at = expires - mandatory
        return cached


#: What a loopback endpoint is signed with when no credentials are configured. Local servers
#: accept any signature; moto files everything under its default account for this key.
LOCAL_CREDENTIALS = Credentials("local", "local")

# Environment variables that configure a credential source of botocore's chain (besides a
# profile, below). Instance metadata has none: it is the lookup that local use must avoid.
_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
# Keys of the config file's default profile that make botocore find credentials there
# (static keys, assume-role, web identity, a credential process, SSO).
_CONFIG_CREDENTIAL_KEYS = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "role_arn",
        "credential_source",
        "web_identity_token_file",
        "credential_process",
        "sso_session",
        "sso_start_url",
        "sso_account_id",
    }
)
_local_logged = False


def is_loopback(endpoint_url: str) -> bool:
    """Whether the endpoint's host is ``localhost`` or a loopback address (127.0.0.0/8,
    ``::1``)."""
    try:
        host = urlsplit(endpoint_url).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _default_profile_section(path: Path, section: str) -> dict[str, str] | None:
    """The ``section`` of an INI file as a dict; ``None`` when the file or section is absent.
    Raises ``configparser.Error`` / ``OSError`` for a file that cannot be read."""
    if not path.is_file():
        return None
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.read(path, encoding="utf-8")
    if not parser.has_section(section):
        return None
    return dict(parser.items(section))


def _files_configure_credentials() -> bool:
    credentials_file = Path(
        _env("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    ).expanduser()
    config_file = Path(_env("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()
    try:
        # Any [default] section in the credentials file is meant for the chain.
        if _default_profile_section(credentials_file, "default") is not None:
            return True
        # The config file's [default] often holds only a region or output format: that
        # configures no credentials.
        section = _default_profile_section(config_file, "default") or {}
    except (configparser.Error, OSError, UnicodeDecodeError):
        return True  # unreadable: let the chain read it and report what is wrong
    return not _CONFIG_CREDENTIAL_KEYS.isdisjoint(section)


def local_credentials_apply(endpoint_url: str | None, *, profile: str | None = None) -> bool:
    """Whether ``Client(credentials=None, ...)`` signs with :data:`LOCAL_CREDENTIALS`.

    Yes when the endpoint is on loopback (:func:`is_loopback`) and no credentials are
    configured, that is, all of: no ``profile``; none of ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_DEFAULT_PROFILE``,
    ``AWS_WEB_IDENTITY_TOKEN_FILE``, ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` /
    ``_FULL_URI`` set (non-empty); no ``[default]`` section in the shared credentials file
    (``AWS_SHARED_CREDENTIALS_FILE``, default ``~/.aws/credentials``); and no credential
    setting (keys, ``role_arn``, ``credential_source``, ``web_identity_token_file``,
    ``credential_process``, SSO) in the ``[default]`` profile of the config file
    (``AWS_CONFIG_FILE``, default ``~/.aws/config``). A file that cannot be parsed counts
    as configured. Anything configured goes through the full chain, loopback or not: a
    proxy on loopback in front of real DynamoDB keeps working.
    """
    if endpoint_url is None or not is_loopback(endpoint_url):
        return False
    if profile is not None:
        return False
    if any(_env(name) for name in _CREDENTIAL_VARIABLES):
        return False
    return not _files_configure_credentials()


def _local_provider(endpoint_url: str) -> StaticCredentials:
    global _local_logged
    if not _local_logged:
        _local_logged = True
        _log.debug(
            "endpoint %s is on loopback and no AWS credentials are configured: signing with "
            "fixed local credentials, without the provider chain",
            endpoint_url,
        )
    return StaticCredentials.from_credentials(LOCAL_CREDENTIALS)


def credentials_provider(
    credentials: CredentialsProvider
    | Credentials
    | tuple[str, str]
    | tuple[str, str, str | None]
    | None,
    *,
    profile: str | None = None,
    endpoint_url: str | None = None,
) -> CredentialsProvider:
    """Turn the ``credentials=`` argument of ``Client`` into a provider.

    ``None`` -> :data:`LOCAL_CREDENTIALS` when ``endpoint_url`` is on loopback and nothing
    is configured (:func:`local_credentials_apply`), else the standard chain
    (``BotocoreCredentials``, honouring ``profile``);
    a ``Credentials`` or an ``(access_key, secret_key[, token])`` tuple -> ``StaticCredentials``;
    a provider -> itself.
    """
    if credentials is None:
        if local_credentials_apply(endpoint_url, profile=profile):
            return _local_provider(str(endpoint_url))
        return BotocoreCredentials(profile)
    if isinstance(credentials, Credentials):
        return StaticCredentials.from_credentials(credentials)
    if isinstance(credentials, tuple):
        if len(credentials) not in (2, 3):
            raise ConfigurationError(
                "credentials tuple must be (access_key, secret_key) or "
                f"(access_key, secret_key, token), got {len(credentials)} items"
            )
        return StaticCredentials(*credentials)
    # A dict has a get() too: without this check it would pass for a provider.
    if isinstance(credentials, CredentialsProvider) and not isinstance(credentials, Mapping):
        return credentials
    raise ConfigurationError(
        "credentials must be None, a Credentials, an (access_key, secret_key[, token]) tuple "
        f"or an object with an async get() method, not {type(credentials).__name__}"
    )


# botocore.utils.validate_region_name: a region is one DNS label.
_REGION = re.compile(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)")


def _env(name: str) -> str | None:
    # An empty variable counts as unset, as botocore's endpoint lookup treats it.
    return os.environ.get(name) or None


def _botocore_session(profile: str | None) -> Any:
    import botocore.session

    return botocore.session.Session(profile=profile)


#: The region a loopback endpoint is signed for when none is configured: local servers accept
#: any region, and this is the one their own examples use.
LOCAL_REGION = "us-east-1"


def resolve_region(
    region: str | None, *, profile: str | None = None, endpoint_url: str | None = None
) -> str:
    """The region to use: ``region``, else ``AWS_REGION``, else botocore's configuration
    (``AWS_DEFAULT_REGION``, then the profile's ``region``), else :data:`LOCAL_REGION` when
    the endpoint (``endpoint_url`` or the configured one) is on loopback.

    A botocore session is created only when the environment does not say.
    """
    if region is None:
        region = _env("AWS_REGION") or _env("AWS_DEFAULT_REGION")
    if region is None:
        try:
            region = _botocore_session(profile).get_config_variable("region") or None
        except Exception as exc:
            error = _botocore_failure("could not read the AWS configuration", exc)
            if error is None:
                raise
            raise error from exc
    if region is None:
        # Local servers check no region: a laptop with no AWS setup at all must just work.
        # The public endpoint is never loopback, so the placeholder region cannot leak into
        # a real request.
        if is_loopback(resolve_endpoint(endpoint_url, LOCAL_REGION, profile=profile)):
            _log.debug(
                "endpoint is on loopback and no region is configured: using %s", LOCAL_REGION
            )
            return LOCAL_REGION
        raise ConfigurationError("no region: pass region= or set AWS_REGION")
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise ConfigurationError(f"invalid region {region!r}: expected a name like 'us-east-1'")
    return region


# service -> (endpoint environment variable suffix, key in the config's services section,
# public host prefix). The suffix and key are botocore's: the service id "DynamoDB Streams"
# upper- or lower-cased with "_" for the space.
_SERVICES = {
    "dynamodb": ("DYNAMODB", "dynamodb", "dynamodb"),
    "streams": ("DYNAMODB_STREAMS", "dynamodb_streams", "streams.dynamodb"),
}


def _configured_endpoint(config_key: str, profile: str | None) -> str | None:
    """The profile's own ``endpoint_url`` for the service or globally (botocore's order:
    the services section first), unless the profile ignores configured endpoints."""
    from botocore.utils import ensure_boolean

    session = _botocore_session(profile)
    if ensure_boolean(session.get_config_variable("ignore_configured_endpoint_urls")):
        return None
    scoped: dict[str, Any] = session.get_scoped_config()
    section_name = scoped.get("services")
    if section_name:
        section = session.full_config.get("services", {}).get(section_name)
        if not section:
            raise ConfigurationError(
                f"the AWS profile refers to services section {section_name!r}, which does not exist"
            )
        url = section.get(config_key, {}).get("endpoint_url")
        if url:
            return str(url)
    url = scoped.get("endpoint_url")
    return str(url) if url else None


def _validate_endpoint(url: str) -> str:
    if not isinstance(url, str):
        raise ConfigurationError(f"endpoint_url must be a str, not {type(url).__name__}")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"invalid endpoint_url {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"invalid endpoint_url {url!r}: expected http:// or https:// and a host, "
            "like 'http://localhost:8000'"
        )
    # Requests are signed as "POST /"; userinfo has no place in a signed AWS request.
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigurationError(
            f"invalid endpoint_url {url!r}: only a scheme, host and port are allowed"
        )
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def resolve_endpoint(
    endpoint_url: str | None,
    region: str,
    *,
    service: str = "dynamodb",
    profile: str | None = None,
) -> str:
    """The endpoint URL (``scheme://host[:port]``) for ``service`` (``"dynamodb"`` or
    ``"streams"``).

    Order: ``endpoint_url``; ``AWS_ENDPOINT_URL_DYNAMODB`` (``AWS_ENDPOINT_URL_DYNAMODB_STREAMS``
    for streams); ``AWS_ENDPOINT_URL``; the profile's ``endpoint_url`` (services section
    first); the public endpoint for ``region``. Setting ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS``
    (or ``ignore_configured_endpoint_urls`` in the profile, for the profile's endpoints)
    skips the configured ones, as in botocore.
    """
    spec = _SERVICES.get(service)
    if spec is None:
        raise ConfigurationError(f"unknown service {service!r}: expected 'dynamodb' or 'streams'")
    env_suffix, config_key, host_prefix = spec
    url = endpoint_url
    if url is None and (_env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") or "").lower() != "true":
        url = _env(f"AWS_ENDPOINT_URL_{env_suffix}") or _env("AWS_ENDPOINT_URL")
        if url is None:
            try:
                url = _configured_endpoint(config_key, profile)
            except ConfigurationError:
                raise
            except Exception as exc:
                error = _botocore_failure("could not read the AWS configuration", exc)
                if error is None:
                    raise
                raise error from exc
    if url is None:
        if not isinstance(region, str) or not _REGION.fullmatch(region):
            raise ConfigurationError(f"invalid region {region!r}: expected a name like 'us-east-1'")
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        return f"https://{host_prefix}.{region}.{suffix}"
    return _validate_endpoint(url)
