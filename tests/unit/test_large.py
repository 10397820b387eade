"""Large attributes without a network: the codec header, "only when smaller", S3 object
keys, refusals before sending, and what a compressing table and entity put on the wire."""

from __future__ import annotations

import base64
import os
import zlib
from typing import Any

import pytest

from asyncdyn import (
    Attr,
    Client,
    ConditionalCheckFailed,
    ConfigurationError,
    CorruptAttribute,
    InvalidExpression,
    InvalidItem,
    Key,
    LargeAttributes,
    S3Offload,
    compression,
)
from asyncdyn.compression import compress_value, decompress_value
from asyncdyn.model import Design, Entity, field
from asyncdyn.offload import DEFAULT_THRESHOLD, object_key
from asyncdyn.testing import ScriptedTransport, answer, error

TEXT = "a line of text that repeats, as logs and HTML do. " * 200


@pytest.mark.parametrize("codec, header", [("zlib", 0x01), ("zstd", 0x02)])
def test_text_round_trips_through_each_codec(codec: Any, header: int) -> None:
    if codec == "zstd":
        pytest.importorskip("zstandard")
    stored = compress_value(TEXT, codec=codec)
    assert isinstance(stored, bytes) and stored[0] == header
    assert len(stored) < len(TEXT.encode()) // 10
    if codec == "zlib":
        assert zlib.decompress(stored[1:]) == TEXT.encode()
    assert decompress_value(stored) == TEXT


@pytest.mark.parametrize("codec, header", [("zlib", 0x11), ("zstd", 0x12)])
def test_bytes_round_trip_and_stay_bytes(codec: Any, header: int) -> None:
    if codec == "zstd":
        pytest.importorskip("zstandard")
    raw = TEXT.encode() + b"\xff\x00"
    stored = compress_value(raw, codec=codec)
    assert stored[0] == header
    back = decompress_value(stored)
    assert back == raw and isinstance(back, bytes)


def test_auto_is_zstd_when_installed_and_zlib_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("zstandard")
    assert compress_value(TEXT)[0] == 0x02
    monkeypatch.setattr(compression, "_zstd", lambda: None)
    assert compress_value(TEXT)[0] == 0x01


def test_a_value_is_compressed_only_when_that_saves_space() -> None:
    assert compress_value("short") == "short"  # stays a str, so it stays S on the wire
    noise = os.urandom(2000)
    stored = compress_value(noise)
    assert stored == b"\x10" + noise  # bytes always carry a header, here "as they are"
    assert decompress_value(stored) == noise
    # A sentence with no repetition does not shrink either: it stays a str.
    sentence = "The quick brown fox jumps over the lazy dog"
    assert compress_value(sentence) == sentence
    assert compress_value(sentence, codec="zlib") == sentence
    assert decompress_value(sentence) == sentence


def test_unreadable_stored_values_are_named() -> None:
    with pytest.raises(CorruptAttribute, match="Doc.body: .*not 0x7b"):
        decompress_value(b'{"not": "compressed"}', where="Doc.body")
    with pytest.raises(InvalidItem, match="Doc.body: a compressed attribute is a str or bytes"):
        compress_value(12, where="Doc.body")
    with pytest.raises(InvalidItem, match="body: a compressed attribute is a str or bytes"):
        LargeAttributes(compress={"body"}).prepare({"PK": "1", "body": 12})


def test_zstd_values_without_zstandard_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("zstandard")
    stored = compress_value(TEXT, codec="zstd")
    monkeypatch.setattr(compression, "_zstd", lambda: None)
    with pytest.raises(CorruptAttribute, match=r"asyncdyn\[zstd\]"):
        decompress_value(stored, where="body")
    with pytest.raises(ConfigurationError, match="zstandard"):
        LargeAttributes(compress={"body"}, codec="zstd")


def test_object_keys_are_content_addressed_and_escaped() -> None:
    digest = "ab" * 32
    assert (
        object_key("offload/", "Docs", ["DOC#1", "V#2"], "blob", digest)
        == f"offload/Docs/DOC%231/V%232/blob/{digest}"
    )
    # A slash or dot-dot in a key value never makes another path.
    assert object_key("", "T", ["../a/b", 7], "x y", digest) == f"T/%2E%2E%2Fa%2Fb/7/x%20y/{digest}"
    # Binary keys as URL-safe base64; a table without a sort key has one key segment.
    assert object_key("p", "T", [b"\xfb\xff"], "a", digest) == f"p/T/b64%3A-_8/a/{digest}"


def test_s3_offload_checks_its_arguments() -> None:
    assert S3Offload("bucket").threshold == DEFAULT_THRESHOLD < 400 * 1024
    with pytest.raises(ConfigurationError, match="bucket"):
        S3Offload("")
    with pytest.raises(ConfigurationError, match="threshold"):
        S3Offload("b", threshold=500_000)
    with pytest.raises(ConfigurationError, match="fetch"):
        S3Offload("b", fetch="later")  # type: ignore[arg-type]


def test_expressions_on_large_attributes_are_refused() -> None:
    large = LargeAttributes(compress={"body"}, offload={"blob": S3Offload("b")}, opaque={"text"})
    for expression, names in [
        (Attr("body").contains("x"), None),
        (Attr("status").eq("A") & Attr("blob").exists(), None),
        ("attribute_exists(body)", None),
        ("#b = :v", {"#b": "blob"}),
        (Attr("text").begins_with("x"), None),
    ]:
        with pytest.raises(InvalidExpression, match="table 'Docs'"):
            large.check_expression("condition", expression, names, "Docs")
    large.check_expression("condition", Attr("status").eq("body"), None, "Docs")
    large.check_expression("condition", "#body = :body", {"#body": "status"}, "Docs")
    with pytest.raises(InvalidExpression, match="update on table 'Docs' uses body"):
        large.check_expression("update", Attr("body").set("x"), None, "Docs")
    # An entity's compressed field (opaque) is set by updates its encoder compressed.
    large.check_expression("update", Attr("text").set(b"\x01..."), None, "Docs")
    with pytest.raises(ConfigurationError, match="key attribute blob"):
        large.check_key(("blob",), "Docs")


async def test_a_compressing_table_sends_binary_and_reads_text(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("Docs", key=("PK",), large=LargeAttributes(compress={"body"}))
    transport.steps = [answer({})]
    await table.put({"PK": "D1", "body": TEXT, "title": TEXT})

    sent = transport.payloads[0]["Item"]
    assert set(sent["body"]) == {"B"} and sent["title"] == {"S": TEXT}
    stored = base64.b64decode(sent["body"]["B"])
    assert stored[0] in (0x01, 0x02) and decompress_value(stored) == TEXT

    transport.steps = [answer({"Item": sent})]
    assert await table.get({"PK": "D1"}) == {"PK": "D1", "body": TEXT, "title": TEXT}

    with pytest.raises(InvalidExpression, match="body"):
        async for _ in table.query(Key("PK").eq("D1"), filter=Attr("body").contains("line")):
            pass
    with pytest.raises(InvalidExpression, match="body"):
        await table.update({"PK": "D1"}, Attr("body").set("new"))
    assert len(transport.requests) == 2  # nothing sent for the refused ones

    # A key attribute declared compressed: refused when the key becomes known.
    odd = client.table("Odd", large=LargeAttributes(compress={"PK"}))
    client.table("Odd", key=("PK",))
    with pytest.raises(ConfigurationError, match="key attribute PK cannot be compressed"):
        await odd.put({"PK": TEXT})
    with pytest.raises(ConfigurationError, match="key attribute PK"):
        client.table("Docs", large=LargeAttributes(compress={"PK"}))
    assert len(transport.requests) == 2


shelf = Design("Shelf", key=("PK", "SK"))


@shelf.entity("Doc")
class Doc(Entity):
    doc_id: str
    title: str
    body: str = field(compress=True)
    blob: bytes | None = field(default=None, offload=S3Offload("docs", "offload/"))
    key = shelf.key(pk="DOC#{doc_id}", sk="V")


def test_entity_fields_compress_in_the_generated_codec() -> None:
    info = Doc.__asyncdyn_entity__  # type: ignore[attr-defined]
    doc = Doc(doc_id="1", title="t", body=TEXT)
    stored = info.encode(doc)
    assert isinstance(stored["body"], bytes) and decompress_value(stored["body"]) == TEXT
    assert info.decode({**stored, "PK": "DOC#1", "SK": "V"}) == doc
    # Written before compress=True was declared: a plain string still reads.
    assert info.decode({"PK": "DOC#1", "SK": "V", "title": "t", "body": "plain"}).body == "plain"


def test_compressed_or_offloaded_fields_stay_out_of_keys_and_conditions() -> None:
    design = Design("Bad", key=("PK", "SK"))
    with pytest.raises(ConfigurationError, match="Note.text: a compressed or offloaded field"):

        @design.entity("Note")
        class Note(Entity):
            text: str = field(compress=True)
            key = design.key(pk="NOTE#{text}", sk="N")

    with pytest.raises(ConfigurationError, match="Pic.size: a compressed or offloaded field is"):

        @design.entity("Pic")
        class Pic(Entity):
            pic_id: str
            size: int = field(compress=True)
            key = design.key(pk="PIC#{pic_id}", sk="P")


async def test_a_bound_design_offloads_and_refuses_conditions_on_its_large_fields(
    client: Client, transport: ScriptedTransport
) -> None:
    repo = shelf.bind(client)
    large = repo.table._large
    assert large is not None
    assert large.offload == {"blob": S3Offload("docs", "offload/")}
    with pytest.raises(InvalidExpression, match="body"):
        await repo.put(Doc(doc_id="1", title="t", body="x"), condition=Attr("body").eq("x"))
    assert transport.requests == []


async def test_where_on_a_compressed_field_is_refused_before_sending(
    client: Client, transport: ScriptedTransport
) -> None:
    repo = shelf.bind(client)
    with pytest.raises(InvalidExpression, match=r"where= on Doc\.body: it is compressed"):
        async for _ in repo.query(Doc, doc_id="1", where=Doc.body.eq("x")):
            pass
    assert transport.requests == []


def test_a_damaged_compressed_value_is_a_typed_error() -> None:
    import zlib

    from asyncdyn.compression import decompress_value
    from asyncdyn.errors import CorruptAttribute

    not_text = b"\x01" + zlib.compress(b"\xff\xfe")  # zlib fine, but not UTF-8 text
    for damaged in (b"\x01not zlib at all", b"\x11\x00\x01", not_text):
        with pytest.raises(CorruptAttribute, match="does not decode|header"):
            decompress_value(damaged, where="Docs.body")


async def test_a_failed_conditions_item_is_the_item_as_a_get_returns_it(
    client: Client, transport: ScriptedTransport
) -> None:
    # ConditionalCheckFailed.item (ALL_OLD) holds values, not compressed bytes: modify()
    # runs its change again on it after a lost race, and puts the result back.
    table = client.table("Docs", key=("PK",), large=LargeAttributes(compress={"body"}))
    old, newer = "old text " * 100, "newer text " * 100

    def stored(body: str, version: int) -> dict[str, Any]:
        packed = base64.b64encode(compress_value(body, codec="zlib")).decode()
        return {"PK": {"S": "D1"}, "body": {"B": packed}, "version": {"N": str(version)}}

    lost_race = error("ConditionalCheckFailedException", "race", Item=stored(newer, 2))
    transport.steps = [lost_race]
    with pytest.raises(ConditionalCheckFailed) as caught:
        await table.put(
            {"PK": "D1", "body": "mine"},
            condition=Attr("version").eq(1),
            returns_on_failure="ALL_OLD",
        )
    assert caught.value.item == {"PK": "D1", "body": newer, "version": 2}

    transport.steps = [answer({"Item": stored(old, 1)}), lost_race, answer({})]
    written = await table.modify(
        {"PK": "D1"}, lambda current: {**(current or {}), "body": current["body"] + "!"}
    )
    assert written["body"] == newer + "!" and written["version"] == 3
    sent = transport.payloads[-1]["Item"]
    assert decompress_value(base64.b64decode(sent["body"]["B"])) == newer + "!"
