"""Large attributes without a network: the codec header, "only when smaller", S3 object
keys, refusals before sending, and what a compressing table and entity put on the wire."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
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
    OffloadError,
    S3Offload,
    TransactionCanceled,
    UnprocessedItemsError,
    compression,
)
from asyncdyn.compression import compress_value, decompress_value
from asyncdyn.credentials import StaticCredentials
from asyncdyn.model import Design, Entity, field
from asyncdyn.offload import DEFAULT_THRESHOLD, S3Store, object_key
from asyncdyn.testing import ScriptedTransport, answer, error

MB = 1024 * 1024
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


# ------------------------------------------------------ offload on the batch write paths


class FakeStore(S3Store):
    """An in-memory S3 for unit tests: ``fail`` names object keys (substrings) whose upload
    S3 refuses; ``events`` records uploads and deletes in order."""

    def __init__(self, events: list[str]) -> None:
        super().__init__(
            region="us-east-1",
            endpoint_url="http://127.0.0.1:9",
            credentials=StaticCredentials("a", "b"),
            max_concurrency=4,
        )
        self.objects: dict[tuple[str, str], bytes] = {}
        self.fail: set[str] = set()
        self.events = events
        self.gate: asyncio.Event | None = None

    async def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        item_key: Mapping[str, Any] | None = None,
        attribute: str = "",
    ) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if any(part in key for part in self.fail):
            raise OffloadError(
                "S3 refused the upload (NoSuchBucket); DynamoDB was not written",
                bucket=bucket,
                object_key=key,
                item_key=item_key,
                attribute=attribute,
            )
        self.objects[(bucket, key)] = bytes(body)
        self.events.append(f"upload {key}")

    async def delete(self, objects: Iterable[tuple[str, str]]) -> int:
        gone = 0
        for found in objects:
            if self.objects.pop(found, None) is not None:
                gone += 1
            self.events.append(f"delete {found[1]}")
        return gone


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def store(client: Client, events: list[str]) -> FakeStore:
    fake = FakeStore(events)
    client._s3 = fake
    return fake


def recording(events: list[str], fail: Callable[[dict[str, Any]], list[Any]] | None = None) -> Any:
    """A BatchWriteItem / TransactWriteItems answer that records what each request carried."""

    def step(headers: Mapping[str, str], body: bytes) -> Any:
        payload = orjson.loads(body)
        operation = headers["X-Amz-Target"].rpartition(".")[2]
        if operation == "BatchWriteItem":
            writes = payload["RequestItems"]["Docs"]
            events.extend(f"write {w['PutRequest']['Item']['PK']['S']}" for w in writes)
        return answer({})

    return step


def blob_table(client: Client, bucket: str = "bkt") -> Any:
    return client.table(
        "Docs",
        key=("PK",),
        large=LargeAttributes(offload={"blob": S3Offload(bucket, "off/")}),
    )


async def test_batch_write_compresses_every_put(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("Docs", key=("PK",), large=LargeAttributes(compress={"body"}))
    transport.default = answer({})
    await table.batch_write(puts=[{"PK": "D1", "body": TEXT}])
    async with table.writer() as w:
        await w.put({"PK": "D2", "body": TEXT})
    for payload in transport.payloads:
        (write,) = payload["RequestItems"]["Docs"]
        sent = write["PutRequest"]["Item"]["body"]
        assert set(sent) == {"B"} and decompress_value(base64.b64decode(sent["B"])) == TEXT


async def test_batch_write_uploads_big_items_before_their_batch(
    client: Client, transport: ScriptedTransport, store: FakeStore, events: list[str]
) -> None:
    table = blob_table(client)
    transport.default = recording(events)
    big = {f"B{i}": os.urandom(500_000) for i in range(3)}
    puts = [{"PK": k, "blob": v} for k, v in big.items()] + [
        {"PK": "S1", "blob": b"small"},
        {"PK": "S2", "title": "no blob"},
    ]

    await table.batch_write(puts=puts)

    assert sorted(v for v in store.objects.values()) == sorted(big.values())
    sent = {
        w["PutRequest"]["Item"]["PK"]["S"]: w["PutRequest"]["Item"]
        for payload in transport.payloads
        for w in payload["RequestItems"]["Docs"]
    }
    assert len(sent) == 5
    for pk, value in big.items():
        reference = sent[pk]["blob"]["M"]
        digest = hashlib.sha256(value).hexdigest()
        assert reference["key"] == {"S": f"off/Docs/{pk}/blob/{digest}"}
        assert reference["size"] == {"N": str(len(value))}
    assert sent["S1"]["blob"] == {"B": base64.b64encode(b"small").decode()}
    # Each upload is done before the BatchWriteItem that refers to it (the small items
    # need not wait for them).
    for pk in big:
        uploaded = next(i for i, e in enumerate(events) if e.startswith(f"upload off/Docs/{pk}/"))
        assert uploaded < events.index(f"write {pk}")


async def test_a_failed_upload_leaves_that_put_unwritten_and_writes_the_others(
    client: Client, transport: ScriptedTransport, store: FakeStore, events: list[str]
) -> None:
    table = blob_table(client)
    transport.default = recording(events)
    store.fail = {"/BAD/"}
    items = [{"PK": f"K{i}", "blob": os.urandom(400_000)} for i in range(4)]
    bad = {"PK": "BAD", "blob": os.urandom(400_000), "n": 1}

    with pytest.raises(UnprocessedItemsError) as caught:
        async with table.writer() as w:
            for item in [*items[:2], bad, *items[2:]]:
                await w.put(item)

    error = caught.value
    assert error.puts == [bad] and error.deletes == [] and not error.maybe_applied
    ((failed, cause),) = error.failures
    assert failed == bad and isinstance(cause, OffloadError)
    assert cause.item_key == {"PK": "BAD"} and cause.attribute == "blob"
    assert isinstance(error.__cause__, OffloadError)
    assert w.unwritten is error and w.stats.unprocessed == 1 and w.stats.written == 4
    assert sorted(e for e in events if e.startswith("write")) == [f"write K{i}" for i in range(4)]
    assert len(store.objects) == 4


async def test_a_later_put_of_the_key_wins_over_one_still_uploading(
    client: Client, transport: ScriptedTransport, store: FakeStore, events: list[str]
) -> None:
    table = blob_table(client)
    transport.default = recording(events)
    store.gate = asyncio.Event()
    async with table.writer() as w:
        await w.put({"PK": "A", "blob": os.urandom(400_000), "v": 1})
        await w.put({"PK": "A", "blob": b"small", "v": 2})
        store.gate.set()
    (payload,) = transport.payloads
    (write,) = payload["RequestItems"]["Docs"]
    assert write["PutRequest"]["Item"]["v"] == {"N": "2"}
    assert w.stats.written == 1 and w.stats.superseded == 1


async def test_the_writer_holds_no_more_uploads_than_it_runs(
    client: Client, transport: ScriptedTransport, store: FakeStore, events: list[str]
) -> None:
    table = blob_table(client)
    transport.default = recording(events)
    store.gate = asyncio.Event()
    w = table.writer(max_in_flight=2)
    await w.__aenter__()
    await w.put({"PK": "A", "blob": os.urandom(400_000)})
    await w.put({"PK": "B", "blob": os.urandom(400_000)})
    third = asyncio.create_task(w.put({"PK": "C", "blob": os.urandom(400_000)}))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not third.done()  # back-pressure: two uploads waiting, the third put waits
    store.gate.set()
    await third
    await w.close()
    assert w.stats.written == 3 and len(store.objects) == 3


async def test_tx_put_uploads_before_the_transaction_is_sent(
    client: Client, transport: ScriptedTransport, store: FakeStore, events: list[str]
) -> None:
    table = blob_table(client)
    blob = os.urandom(MB)

    def commit(headers: Mapping[str, str], body: bytes) -> Any:
        events.append("commit")
        return answer({})

    transport.steps = [commit]
    action = table.tx_put({"PK": "D1", "blob": blob, "n": 1})
    assert events == []  # nothing goes to S3 until the transaction runs
    await client.transact_write([action, table.tx_update({"PK": "D2"}, Attr("n").add(1))])

    digest = hashlib.sha256(blob).hexdigest()
    assert events == [f"upload off/Docs/D1/blob/{digest}", "commit"]
    put = transport.payloads[0]["TransactItems"][0]["Put"]
    assert put["Item"]["blob"]["M"]["key"] == {"S": f"off/Docs/D1/blob/{digest}"}
    assert put["Item"]["n"] == {"N": "1"}
    assert store.objects == {("bkt", f"off/Docs/D1/blob/{digest}"): blob}


async def test_a_cancelled_transaction_deletes_only_uploads_nothing_refers_to(
    client: Client, transport: ScriptedTransport, store: FakeStore, events: list[str]
) -> None:
    table = blob_table(client)
    live, fresh = os.urandom(MB), os.urandom(MB)
    live_key = f"off/Docs/D2/blob/{hashlib.sha256(live).hexdigest()}"
    live_reference = {
        "M": {
            "bucket": {"S": "bkt"},
            "key": {"S": live_key},
            "sha256": {"S": hashlib.sha256(live).hexdigest()},
            "size": {"N": str(MB)},
            "codec": {"S": "B"},
        }
    }
    cancelled = error(
        "TransactionCanceledException",
        "Transaction cancelled",
        CancellationReasons=[
            {"Code": "None"},
            {"Code": "ConditionalCheckFailed", "Item": {"PK": {"S": "D2"}, "blob": live_reference}},
        ],
    )
    # D1: no item came back, so it is read (and it has none of ours); D2: the item that
    # failed the condition refers to the live bytes, which this put wrote again.
    transport.steps = [cancelled, answer({"Item": {"PK": {"S": "D1"}}})]
    with pytest.raises(TransactionCanceled):
        await client.transact_write(
            [
                table.tx_put({"PK": "D1", "blob": fresh}),
                table.tx_put(
                    {"PK": "D2", "blob": live},
                    condition=Attr("n").eq(1),
                    returns_on_failure="ALL_OLD",
                ),
            ]
        )
    assert transport.operations == ["TransactWriteItems", "GetItem"]
    assert transport.payloads[1]["ConsistentRead"] is True
    assert list(store.objects) == [("bkt", live_key)]  # the orphan went, the live one stays


async def test_a_refused_upload_sends_no_transaction(
    client: Client, transport: ScriptedTransport, store: FakeStore
) -> None:
    table = blob_table(client)
    store.fail = {"/D1/"}
    with pytest.raises(OffloadError, match="DynamoDB was not written"):
        await client.transact_write([table.tx_put({"PK": "D1", "blob": os.urandom(MB)})])
    assert transport.requests == []
    # Checked when the action is built, not when it runs.
    with pytest.raises(InvalidItem, match="surrogate"):
        table.tx_put({"PK": "D1", "blob": "\ud800" * 500_000})
    with pytest.raises(InvalidExpression, match="blob"):
        table.tx_put({"PK": "D1", "blob": b"x"}, condition=Attr("blob").exists())


async def test_a_writer_cancelled_while_uploading_reports_those_puts_unsent(
    client: Client, transport: ScriptedTransport, store: FakeStore, events: list[str]
) -> None:
    table = blob_table(client)
    transport.default = recording(events)
    store.gate = asyncio.Event()  # never set: the uploads hang
    big = {"PK": "BIG", "blob": os.urandom(400_000)}
    w = table.writer()

    async def body() -> None:
        async with w:
            await w.put({"PK": "SMALL", "blob": b"x"})
            await w.put(big)

    task = asyncio.create_task(body())
    await until_true(lambda: bool(w._uploads))
    # Closing sends what is ready and waits for the upload; cancelled, it stops at once.
    await until_true(lambda: w._closed and w.stats.written == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert w.unwritten is not None
    assert w.unwritten.puts == [big] and not w.unwritten.maybe_applied
    assert events == ["write SMALL"] and store.objects == {}


async def until_true(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def test_a_damaged_attribute_read_names_the_table_and_the_key(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("Docs", key=("PK",), large=LargeAttributes(compress={"body"}))
    damaged = {"PK": {"S": "D1"}, "body": {"B": base64.b64encode(b"\x01not zlib").decode()}}
    transport.steps = [answer({"Item": damaged})]
    with pytest.raises(CorruptAttribute) as caught:
        await table.get({"PK": "D1"})
    message = str(caught.value)
    assert caught.value.attribute == "body"
    assert "'Docs'" in message and "{'PK': 'D1'}" in message and "does not decode" in message
    transport.steps = [answer({"Items": [damaged], "Count": 1})]
    with pytest.raises(CorruptAttribute, match=r"'Docs'.*\{'PK': 'D1'\}"):
        async for _ in table.query(Key("PK").eq("D1")):
            pass


async def test_a_cancelled_transactions_items_are_as_a_get_returns_them(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("Docs", key=("PK",), large=LargeAttributes(compress={"body"}))
    newer = "newer text " * 100
    packed = base64.b64encode(compress_value(newer, codec="zlib")).decode()
    transport.steps = [
        error(
            "TransactionCanceledException",
            "Transaction cancelled",
            CancellationReasons=[
                {
                    "Code": "ConditionalCheckFailed",
                    "Item": {"PK": {"S": "D1"}, "body": {"B": packed}},
                }
            ],
        )
    ]
    with pytest.raises(TransactionCanceled) as caught:
        await client.transact_write(
            [
                table.tx_put(
                    {"PK": "D1", "body": "mine"},
                    condition=Attr("v").eq(1),
                    returns_on_failure="ALL_OLD",
                )
            ]
        )
    assert caught.value.reasons[0].item == {"PK": "D1", "body": newer}
