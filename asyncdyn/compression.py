"""Compressed attributes: a ``str`` or ``bytes`` value stored as binary ``B`` that starts
with a one-byte codec header, only when that is smaller than the value as it is::

    0x01  zlib, the value was a str (utf-8)       0x11  zlib, the value was bytes
    0x02  zstd, the value was a str (utf-8)       0x12  zstd, the value was bytes
    0x10  bytes stored as they are (compressing them did not pay)

A str that does not shrink stays a plain ``S``, so a reader tells the two apart by type; a
bytes value always carries its header (else a bare ``B`` starting with 0x01 would be
ambiguous). Never base64 inside a string: that would add a third. zstd needs the optional
``zstandard`` package (``asyncdyn[zstd]``); zlib is the standard library's.
"""

from __future__ import annotations

import zlib
from types import ModuleType
from typing import Any, Literal

from .errors import ConfigurationError, CorruptAttribute, InvalidItem

__all__ = ["ZLIB", "ZSTD", "Codec", "check_codec", "compress_value", "decompress_value"]

Codec = Literal["auto", "zlib", "zstd"]

ZLIB = 0x01
ZSTD = 0x02
_BINARY = 0x10  # the flag of a value that was bytes (not utf-8 text)
_HEADERS = frozenset({ZLIB, ZSTD, _BINARY, _BINARY | ZLIB, _BINARY | ZSTD})


def _zstd() -> ModuleType | None:
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard


def check_codec(codec: str) -> None:
    if codec not in ("auto", "zlib", "zstd"):
        raise ConfigurationError(f"codec is 'auto', 'zlib' or 'zstd', not {codec!r}")
    if codec == "zstd" and _zstd() is None:
        raise ConfigurationError(
            "codec='zstd' needs the zstandard package: pip install 'asyncdyn[zstd]'"
        )


def compress_value(value: Any, *, codec: Codec = "auto", where: str = "") -> Any:
    """What a compressed attribute stores for ``value``: ``bytes`` with the codec header
    when that is smaller, else the str unchanged (bytes get the 0x10 header). ``codec="auto"``
    is zstd when ``zstandard`` is installed, zlib otherwise. Any other value is refused
    (``InvalidItem`` naming ``where``)."""
    if isinstance(value, str):
        raw = value.encode("utf-8")
        flag = 0
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        flag = _BINARY
    else:
        raise InvalidItem(
            f"a compressed attribute is a str or bytes, not {type(value).__name__}", where
        )
    zstd = _zstd() if codec != "zlib" else None
    if zstd is not None:
        packed = zstd.ZstdCompressor(level=3).compress(raw)
        header = ZSTD
    else:
        # Level 6 (zlib's default): most of level 9's ratio at a fraction of its CPU.
        packed = zlib.compress(raw, 6)
        header = ZLIB
    if len(packed) + 1 < len(raw) + (1 if flag else 0):
        return bytes((header | flag,)) + packed
    return value if not flag else bytes((_BINARY,)) + raw


def decompress_value(stored: Any, *, where: str = "") -> Any:
    """The value a compressed attribute holds: a str as it is, a header-tagged bytes value
    unpacked (to str or bytes, as it was written); anything else unchanged."""
    if not isinstance(stored, bytes | bytearray):
        return stored
    if not stored or stored[0] not in _HEADERS:
        shown = f"0x{stored[0]:02x}" if stored else "none"
        raise CorruptAttribute(
            f"a compressed attribute starts with a codec header (0x01, 0x02, 0x10-0x12), "
            f"not {shown}: it was not written compressed",
            where,
        )
    header = stored[0]
    body = memoryview(stored)[1:]
    codec = header & 0x0F
    zstd = _zstd() if codec == ZSTD else None
    if codec == ZSTD and zstd is None:
        raise CorruptAttribute(
            "compressed with zstd, and the zstandard package is not installed: "
            "pip install 'asyncdyn[zstd]'",
            where,
        )
    try:
        if codec == ZLIB:
            raw = zlib.decompress(body)
        elif zstd is not None:
            raw = zstd.ZstdDecompressor().decompress(bytes(body))
        else:
            raw = bytes(body)
        return raw if header & _BINARY else raw.decode("utf-8")
    except Exception as exc:  # zlib.error, zstd.ZstdError, UnicodeDecodeError
        raise CorruptAttribute(
            f"a compressed attribute (header 0x{header:02x}) does not decode: {exc}", where
        ) from exc
