"""Large attributes on real servers: compression on moto and dynalite; S3 offload on moto,
whose server answers S3 at the same loopback endpoint as DynamoDB (dynalite has no S3).

What each test checks is what S3 and DynamoDB hold afterwards, read by an independent S3
client and by raw GetItem calls, not only what asyncdyn hands back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from asyncdyn import (
    Attr,
    Client,
    ConditionalCheckFailed,
    DanglingReference,
    InvalidExpression,
    ItemCache,
    Key,
    LargeAttributes,
    Offloaded,
    OffloadError,
    S3Offload,
    Table,
    TableNotFound,
    TransactionCanceled,
    UnprocessedItemsError,
    remove_superseded,
)
from asyncdyn.local import LocalServer
from asyncdyn.offload import load_all
from asyncdyn.streams import Record

MakeTable = Callable[..., Awaitable[Table]]
MB = 1024 * 1024


@pytest.fixture
async def s3(server: LocalServer) -> AsyncIterator[Any]:
    """An S3 client of the test's own, on the same loopback endpoint."""
    if server.kind != "moto":
        pytest.skip("S3 offload needs moto's S3 (dynalite has none)")
    context = AioSession().create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=AioConfig(s3={"addressing_style": "path"}),
    )
    async with context as client:
        yield client


@pytest.fixture
async def bucket(s3: Any) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    await s3.create_bucket(Bucket=name)
    return name


async def objects(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = await s3.list_objects_v2(Bucket=bucket)
    out: dict[str, bytes] = {}
    for entry in listed.get("Contents", []):
        answer = await s3.get_object(Bucket=bucket, Key=entry["Key"])
        async with answer["Body"] as body:
            out[entry["Key"]] = await body.read()
    return out


async def raw_item(db: Client, table: Table, key: dict[str, str]) -> dict[str, Any]:
    answer = await db.call(
        "GetItem",
        {"TableName": table.name, "Key": {k: {"S": v} for k, v in key.items()}},
    )
    item: dict[str, Any] = answer["Item"]
    return item


async def offloading(db: Client, make_table: MakeTable, bucket: str, **options: Any) -> Table:
    made = await make_table(**options)
    large = LargeAttributes(offload={"blob": S3Offload(bucket, "offload/")})
    return db.table(made.name, large=large)


async def test_a_1_mb_attribute_goes_to_s3_and_comes_back(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    table = await offloading(db, make_table, bucket)
    blob = os.urandom(MB)
    key = {"PK": "DOC#a/b", "SK": "V#1"}

    await table.put({**key, "title": "one", "blob": blob})

    stored = await objects(s3, bucket)
    digest = hashlib.sha256(blob).hexdigest()
    object_key = f"offload/{table.name}/DOC%23a%2Fb/V%231/blob/{digest}"
    assert stored == {object_key: blob}
    reference = (await raw_item(db, table, key))["blob"]["M"]
    assert reference == {
        "bucket": {"S": bucket},
        "key": {"S": object_key},
        "sha256": {"S": digest},
        "size": {"N": str(MB)},
        "codec": {"S": "B"},
    }
    assert await table.get(key) == {**key, "title": "one", "blob": blob}


async def test_a_small_item_stays_inline(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    table = await offloading(db, make_table, bucket)
    key = {"PK": "DOC#1", "SK": "V#1"}
    await table.put({**key, "blob": b"small"})
    assert await objects(s3, bucket) == {}
    assert (await raw_item(db, table, key))["blob"] == {"B": "c21hbGw="}
    assert await table.get(key) == {**key, "blob": b"small"}


async def test_the_largest_attributes_go_first_until_the_item_fits(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    made = await make_table()
    spec = S3Offload(bucket, threshold=350_000)
    table = db.table(made.name, large=LargeAttributes(offload={"a": spec, "b": spec}))
    key = {"PK": "DOC#1", "SK": "V#1"}
    a, b = os.urandom(300_000), os.urandom(200_000)

    await table.put({**key, "a": a, "b": b})  # 500 KB: only "a" has to go

    stored = await raw_item(db, table, key)
    assert set(stored["a"]) == {"M"} and set(stored["b"]) == {"B"}
    assert list((await objects(s3, bucket)).values()) == [a]
    assert await table.get(key) == {**key, "a": a, "b": b}


async def test_overwrite_deletes_the_superseded_object_after_the_write(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    table = await offloading(db, make_table, bucket)
    key = {"PK": "DOC#1", "SK": "V#1"}
    first, second = "a" * MB, "b" * MB
    await table.put({**key, "blob": first})
    old = await table.put({**key, "blob": second}, returns="ALL_OLD")

    assert old == {**key, "blob": first}  # read before its object went
    stored = await objects(s3, bucket)
    assert list(stored.values()) == [second.encode()]
    assert (await table.get(key)) == {**key, "blob": second}

    await table.delete(key)
    assert await objects(s3, bucket) == {}


async def test_a_failed_conditional_write_keeps_the_live_object(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    table = await offloading(db, make_table, bucket)
    key = {"PK": "DOC#1", "SK": "V#1"}
    live = os.urandom(MB)
    await table.put({**key, "blob": live, "version": 1})

    with pytest.raises(ConditionalCheckFailed):
        await table.put(
            {**key, "blob": os.urandom(MB), "version": 2}, condition=Attr("version").eq(7)
        )

    assert await table.get(key) == {**key, "blob": live, "version": 1}
    # The live object stays; the refused write's own upload, referred to by nothing, goes.
    (kept,) = await objects(s3, bucket)
    assert kept.endswith(hashlib.sha256(live).hexdigest())

    # Refused again with the live bytes themselves: their one object is not touched.
    with pytest.raises(ConditionalCheckFailed) as caught:
        await table.put(
            {**key, "blob": live, "version": 2},
            condition=Attr("version").eq(7),
            returns_on_failure="ALL_OLD",
        )
    assert caught.value.item is not None and caught.value.item["version"] == 1
    assert list(await objects(s3, bucket)) == [kept]
    assert await table.get(key) == {**key, "blob": live, "version": 1}


async def test_an_s3_error_leaves_dynamodb_untouched(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    made = await make_table()
    table = db.table(
        made.name, large=LargeAttributes(offload={"blob": S3Offload("no-such-bucket-x")})
    )
    key = {"PK": "DOC#1", "SK": "V#1"}
    await table.put({**key, "blob": b"old"})

    with pytest.raises(OffloadError) as caught:
        await table.put({**key, "blob": os.urandom(MB)})

    assert caught.value.bucket == "no-such-bucket-x"
    assert caught.value.item_key == key
    assert caught.value.attribute == "blob"
    assert "no-such-bucket-x" in str(caught.value) and "DOC#1" in str(caught.value)
    assert await table.get(key) == {**key, "blob": b"old"}


async def test_s3_down_leaves_dynamodb_untouched(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    table = await offloading(db, make_table, bucket)
    key = {"PK": "DOC#1", "SK": "V#1"}
    await table.put({**key, "blob": b"old"})
    # Nothing listens on this port: S3 unreachable, DynamoDB fine.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    db._offload_store().endpoint_url = dead

    with pytest.raises(OffloadError, match="DynamoDB was not written") as caught:
        await table.put({**key, "blob": os.urandom(MB)})

    assert caught.value.item_key == key
    assert await table.get(key) == {**key, "blob": b"old"}


async def test_the_standard_credential_chain_is_shared_with_s3(
    server: LocalServer,
    make_table: MakeTable,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from asyncdyn.credentials import BotocoreCredentials

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "chain-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "chain-secret")
    made = await make_table()
    chain = BotocoreCredentials()
    async with Client(
        region="us-east-1", endpoint_url=server.endpoint_url, credentials=chain
    ) as other:
        table = other.table(made.name, large=LargeAttributes(offload={"blob": S3Offload(bucket)}))
        blob = os.urandom(MB)
        await table.put({"PK": "A", "SK": "B", "blob": blob})
        assert await table.get({"PK": "A", "SK": "B"}) == {"PK": "A", "SK": "B", "blob": blob}
        s3_client = await other._offload_store()._s3()
        # The S3 client's own signer credentials (aiobotocore keeps them there).
        frozen = await s3_client._get_credentials().get_frozen_credentials()
        assert frozen.access_key == "chain-key" and chain.session is not None


async def test_a_dangling_reference_names_the_item_and_the_object(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    table = await offloading(db, make_table, bucket)
    key = {"PK": "DOC#1", "SK": "V#1"}
    await table.put({**key, "blob": os.urandom(MB)})
    (gone,) = await objects(s3, bucket)
    await s3.delete_object(Bucket=bucket, Key=gone)

    with pytest.raises(DanglingReference) as caught:
        await table.get(key)

    assert caught.value.object_key == gone and caught.value.bucket == bucket
    assert caught.value.attribute == "blob" and caught.value.item_key == key
    assert gone in str(caught.value)


async def test_a_batch_read_with_one_dangling_reference_answers_the_other_keys(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    table = await offloading(db, make_table, bucket)
    values = {f"DOC#{n}": os.urandom(MB) for n in range(3)}
    for pk, blob in values.items():
        await table.put({"PK": pk, "SK": "V#1", "blob": blob})
    gone = next(o for o in await objects(s3, bucket) if "DOC%231" in o)
    await s3.delete_object(Bucket=bucket, Key=gone)

    keys = [{"PK": pk, "SK": "V#1"} for pk in values]
    with pytest.raises(DanglingReference) as caught:
        await table.batch_get(keys)
    assert caught.value.item_key == keys[1]
    # Every key is answered or reported: the others' values are read; the failed one keeps
    # its handle (it names the object, and can be read again).
    partial = caught.value.partial
    assert partial is not None and len(partial) == 3
    assert partial[0] is not None and partial[0]["blob"] == values["DOC#0"]
    assert partial[2] is not None and partial[2]["blob"] == values["DOC#2"]
    assert partial[1] is not None and isinstance(partial[1]["blob"], Offloaded)
    assert partial[1]["blob"].key == gone


async def test_lazy_reads_give_a_handle_and_a_handle_writes_back_as_is(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    made = await make_table()
    lazy = S3Offload(bucket, "p", fetch="lazy")
    table = db.table(made.name, large=LargeAttributes(offload={"blob": lazy}))
    key = {"PK": "DOC#1", "SK": "V#1"}
    text = "é" * MB
    await table.put({**key, "blob": text, "n": 1})

    got = await table.get(key)
    assert got is not None
    handle = got["blob"]
    assert isinstance(handle, Offloaded) and not handle.loaded
    assert await handle.load() == text

    # A listing gives handles; load_all reads a page's handles concurrently.
    listed = [item async for item in table.query(Key("PK").eq("DOC#1"))]
    assert isinstance(listed[0]["blob"], Offloaded) and not listed[0]["blob"].loaded
    await load_all(listed)
    assert listed[0]["blob"].loaded and await listed[0]["blob"].load() == text

    await table.put({**got, "n": 2})  # the handle goes back as its reference
    assert len(await objects(s3, bucket)) == 1
    again = await table.get(key)
    assert again is not None and again["n"] == 2 and await again["blob"].load() == text


async def test_batch_get_reads_offloaded_attributes_concurrently(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    made = await make_table()
    values = {f"DOC#{i}": os.urandom(MB // 2) for i in range(6)}
    low = S3Offload(bucket, "offload/", threshold=1024)
    table = db.table(made.name, large=LargeAttributes(offload={"blob": low}))
    await asyncio.gather(*(table.put({"PK": k, "SK": "V", "blob": v}) for k, v in values.items()))

    keys = [{"PK": k, "SK": "V"} for k in values]
    got = await table.batch_get(keys)
    assert len(await objects(s3, bucket)) == 6
    assert [g["blob"] if g else None for g in got] == list(values.values())
    # The client-wide batch read and a transactional read give the values as well.
    several = await db.batch_get({table.name: keys})
    assert [g["blob"] if g else None for g in several[table.name]] == list(values.values())
    snapshot = await db.transact_get([table.tx_get(k) for k in keys[:3]])
    assert [g["blob"] if g else None for g in snapshot] == list(values.values())[:3]
    # The streaming batch read too, a key given twice included.
    streamed = {
        key["PK"]: item["blob"] if item else None
        async for key, item in table.batch_get_iter([*keys, keys[0]])
    }
    assert streamed == values


async def test_conditions_on_offloaded_attributes_are_refused_before_sending(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    table = await offloading(db, make_table, bucket)
    key = {"PK": "DOC#1", "SK": "V#1"}
    with pytest.raises(InvalidExpression, match="blob"):
        await table.put({**key, "blob": b"x"}, condition=Attr("blob").not_exists())
    with pytest.raises(InvalidExpression, match="blob"):
        await table.update(key, Attr("blob").set(b"y"))
    with pytest.raises(InvalidExpression, match="blob"):
        await table.delete(key, condition="attribute_exists(blob)")


async def test_batch_write_offloads_1_mb_attributes(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    table = await offloading(db, make_table, bucket)
    big = {f"DOC#{i}": os.urandom(MB) for i in range(3)}
    puts = [{"PK": pk, "SK": "V", "blob": blob} for pk, blob in big.items()]
    puts += [{"PK": "DOC#s1", "SK": "V", "blob": b"small"}, {"PK": "DOC#s2", "SK": "V"}]

    await table.batch_write(puts=puts)

    stored = await objects(s3, bucket)
    for pk, blob in big.items():
        digest = hashlib.sha256(blob).hexdigest()
        path = f"offload/{table.name}/{pk.replace('#', '%23')}/V/blob/{digest}"
        assert stored[path] == blob
        raw = await raw_item(db, table, {"PK": pk, "SK": "V"})
        assert raw["blob"]["M"]["key"] == {"S": path}
    assert len(stored) == 3
    assert (await raw_item(db, table, {"PK": "DOC#s1", "SK": "V"}))["blob"] == {"B": "c21hbGw="}
    got = await table.batch_get([{"PK": p["PK"], "SK": "V"} for p in puts])
    assert got == puts


async def test_the_writer_offloads_20_items_and_reports_a_failed_upload(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    made = await make_table()
    # Two attributes to two buckets: "bad" goes to one that does not exist, so only the
    # items big enough to offload it fail -- the others are written.
    table = db.table(
        made.name,
        large=LargeAttributes(
            offload={
                "blob": S3Offload(bucket, "w/", threshold=100_000),
                "bad": S3Offload(f"missing-{uuid.uuid4().hex[:8]}", threshold=100_000),
            }
        ),
    )
    items = [{"PK": f"DOC#{i:02d}", "SK": "V", "blob": os.urandom(MB)} for i in range(20)]
    doomed = {"PK": "DOC#bad", "SK": "V", "bad": os.urandom(300_000)}

    with pytest.raises(UnprocessedItemsError) as caught:
        async with table.writer() as w:
            for item in [*items[:10], doomed, *items[10:]]:
                await w.put(item)

    assert caught.value.puts == [doomed] and not caught.value.maybe_applied
    ((failed, cause),) = caught.value.failures
    assert failed == doomed and isinstance(cause, OffloadError)
    assert cause.item_key == {"PK": "DOC#bad", "SK": "V"} and cause.attribute == "bad"
    assert w.stats.written == 20 and w.stats.unprocessed == 1
    assert len(await objects(s3, bucket)) == 20
    got = await table.batch_get([{"PK": i["PK"], "SK": "V"} for i in [*items, doomed]])
    assert got == [*items, None]


@pytest.mark.moto_only
async def test_tx_put_offloads_a_1_mb_attribute(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    table = await offloading(db, make_table, bucket)
    key = {"PK": "DOC#1", "SK": "V"}
    blob = os.urandom(MB)
    await table.put({**key, "n": 1})

    await db.transact_write(
        [
            table.tx_put({**key, "blob": blob, "n": 2}, condition=Attr("n").eq(1)),
            table.tx_put({"PK": "DOC#2", "SK": "V", "blob": b"small"}),
        ]
    )

    digest = hashlib.sha256(blob).hexdigest()
    assert await objects(s3, bucket) == {f"offload/{table.name}/DOC%231/V/blob/{digest}": blob}
    assert set((await raw_item(db, table, key))["blob"]) == {"M"}
    assert await table.get(key) == {**key, "blob": blob, "n": 2}

    # Cancelled by its condition: the new upload, referred to by nothing, goes; the live
    # object stays.
    with pytest.raises(TransactionCanceled):
        await db.transact_write(
            [table.tx_put({**key, "blob": os.urandom(MB), "n": 3}, condition=Attr("n").eq(1))]
        )
    assert list(await objects(s3, bucket)) == [f"offload/{table.name}/DOC%231/V/blob/{digest}"]
    assert await table.get(key) == {**key, "blob": blob, "n": 2}


@pytest.mark.moto_only
async def test_stream_cleanup_deletes_objects_of_writes_made_elsewhere(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    made = await make_table(stream="NEW_AND_OLD_IMAGES")
    key = {"PK": "DOC#1", "SK": "V#1"}
    table = db.table(made.name, large=LargeAttributes(offload={"blob": S3Offload(bucket)}))
    await table.put({**key, "blob": "a" * MB})
    (first,) = await objects(s3, bucket)
    # Another program, which does not clean up: a raw overwrite without the attribute.
    await db.call(
        "PutItem",
        {"TableName": made.name, "Item": {"PK": {"S": "DOC#1"}, "SK": {"S": "V#1"}}},
    )
    # ... and a restore of the same bytes after the stream record that superseded them.
    other = {"PK": "DOC#2", "SK": "V#1"}
    await table.put({**other, "blob": "b" * MB})
    await db.call(
        "PutItem",
        {"TableName": made.name, "Item": {"PK": {"S": "DOC#2"}, "SK": {"S": "V#1"}}},
    )
    await table.put({**other, "blob": "b" * MB})

    records: list[Record] = []
    stream = db.stream(made.name, poll_interval=0.02)
    async with asyncio.timeout(20), stream.records() as feed:
        async for record in feed:
            records.append(record)
            if len(records) == 5:
                break

    removed = await remove_superseded(db, made.name, records)

    assert removed == 1
    left = await objects(s3, bucket)
    assert first not in left and list(left.values()) == [b"b" * MB]
    assert await table.get(other) == {**other, "blob": "b" * MB}


async def test_compressed_text_round_trips_on_both_servers(
    db: Client, make_table: MakeTable, server: LocalServer
) -> None:
    made = await make_table()
    table = db.table(made.name, large=LargeAttributes(compress={"body", "raw"}, codec="zlib"))
    key = {"PK": "DOC#1", "SK": "V#1"}
    body = "the same sentence again. " * 4000
    await table.put({**key, "body": body, "raw": b"\x00" * 5000, "short": "x"})

    stored = await raw_item(db, table, key)
    assert set(stored["body"]) == {"B"} and set(stored["raw"]) == {"B"}
    assert len(stored["body"]["B"]) < len(body) // 20
    assert await table.get(key) == {**key, "body": body, "raw": b"\x00" * 5000, "short": "x"}

    # A text that does not shrink stays a string; reads take either.
    await table.put({**key, "body": "tiny"})
    assert (await raw_item(db, table, key))["body"] == {"S": "tiny"}
    assert await table.get(key) == {**key, "body": "tiny"}

    # Every write path compresses: batch_write and the writer too.
    await table.batch_write(puts=[{"PK": "DOC#2", "SK": "V", "body": body}])
    async with table.writer() as w:
        await w.put({"PK": "DOC#3", "SK": "V", "body": body})
    got = await table.batch_get([{"PK": "DOC#2", "SK": "V"}, {"PK": "DOC#3", "SK": "V"}])
    assert [g["body"] if g else None for g in got] == [body, body]
    # Bytes that look like a codec header once decompressed are expanded once, not twice,
    # however often a batch asks for their key.
    tricky = b"\x11" + b"\x00" * 5000
    await table.put({"PK": "DOC#4", "SK": "V", "raw": tricky})
    both = await table.batch_get([{"PK": "DOC#4", "SK": "V"}] * 2)
    assert [g["raw"] if g else None for g in both] == [tricky, tricky]
    streamed_raw = [
        i["raw"] if i else None
        async for _, i in table.batch_get_iter([{"PK": "DOC#4", "SK": "V"}] * 2)
    ]
    assert streamed_raw == [tricky, tricky]
    twice = [{"PK": "DOC#2", "SK": "V"}] * 2 + [{"PK": "DOC#3", "SK": "V"}]
    streamed = [item["body"] if item else None async for _, item in table.batch_get_iter(twice)]
    assert streamed == [body, body, body]
    async for item in table.query(Key("PK").eq("DOC#2")):
        assert item["body"] == body

    with pytest.raises(InvalidExpression, match="body"):
        async for _ in table.query(Key("PK").eq("DOC#2"), filter=Attr("body").contains("same")):
            pass


def _design(bucket: str) -> tuple[Any, Any]:
    from asyncdyn.model import Design, Entity, field

    shelf = Design(f"Shelf-{uuid.uuid4().hex[:8]}", key=("PK", "SK"))

    @shelf.entity("Doc")
    class Doc(Entity):
        doc_id: str
        version_no: int
        body: str = field(compress=True)
        scan: bytes | None = field(
            default=None, compress=True, offload=S3Offload(bucket, "docs/", threshold=64_000)
        )
        key = shelf.key(pk="DOC#{doc_id}", sk="V#{version_no:04d}")

    return shelf, Doc


async def test_entities_compress_and_offload_their_fields(db: Client, s3: Any, bucket: str) -> None:
    shelf, Doc = _design(bucket)
    repo = shelf.bind(db)
    await repo.create_table()
    body = "chapter one. " * 20_000
    scan = os.urandom(200_000) + b"\x00" * 400_000  # shrinks, and is still over 64 KB

    await repo.put(Doc(doc_id="1", version_no=1, body=body, scan=scan))

    raw = await raw_item(db, repo.table, {"PK": "DOC#1", "SK": "V#0001"})
    assert set(raw["body"]) == {"B"} and set(raw["scan"]) == {"M"}
    (stored,) = (await objects(s3, bucket)).values()
    assert stored[0] in (0x11, 0x12) and len(stored) < len(scan)  # compressed, then offloaded
    got = await repo.get(Doc, doc_id="1", version_no=1)
    assert got == Doc(doc_id="1", version_no=1, body=body, scan=scan)
    # An update of another field returns the entity with its offloaded field read.
    changed = await repo.update(Doc.ref(doc_id="1", version_no=1), body="short")
    assert changed == Doc(doc_id="1", version_no=1, body="short", scan=scan)
    body = "short"

    async for found in repo.query(Doc, doc_id="1"):
        assert found.body == body  # listings decompress too

    # An update of an offloaded field reads, changes and puts back; the old object goes.
    noise = os.urandom(300_000)
    await repo.update(Doc.ref(doc_id="1", version_no=1), scan=noise)
    (after,) = (await objects(s3, bucket)).values()
    assert after[1:] == noise  # header 0x10: random bytes do not shrink
    got = await repo.get(Doc, doc_id="1", version_no=1)
    assert got is not None and got.scan == noise
    # Compressed small enough, a value stays in the item, and its object goes.
    await repo.update(Doc.ref(doc_id="1", version_no=1), scan=b"\x01" * 300_000)
    assert await objects(s3, bucket) == {}
    got = await repo.get(Doc, doc_id="1", version_no=1)
    assert got is not None and got.scan == b"\x01" * 300_000
    await repo.delete(Doc.ref(doc_id="1", version_no=1))
    assert await objects(s3, bucket) == {}


async def test_entity_batch_paths_and_transactions_offload(
    db: Client, s3: Any, bucket: str
) -> None:
    shelf, Doc = _design(bucket)
    repo = shelf.bind(db)
    await repo.create_table()
    docs = [
        Doc(doc_id=str(i), version_no=1, body=f"text {i}", scan=os.urandom(MB)) for i in range(5)
    ]
    try:
        async with repo.writer() as w:
            for doc in docs[:3]:
                await w.put(doc)
        await repo.batch_write(puts=[docs[3]])
        await db.transact_write([repo.tx_put(docs[4])])  # s3 runs on moto: it has transactions

        stored = await objects(s3, bucket)
        assert len(stored) == 5 and all(body[0] == 0x10 for body in stored.values())
        for doc in docs:
            raw = await raw_item(db, repo.table, {"PK": f"DOC#{doc.doc_id}", "SK": "V#0001"})
            assert set(raw["scan"]) == {"M"}
        got = await repo.batch_get([Doc.ref(doc_id=d.doc_id, version_no=1) for d in docs])
        assert got == docs
    finally:
        await db.delete_table(repo.table.name, wait=False)


async def test_entity_compression_on_both_servers(db: Client) -> None:
    shelf, Doc = _design("unused-bucket")
    repo = shelf.bind(db)
    await repo.create_table()
    body = "chapter two. " * 5_000
    await repo.put(Doc(doc_id="2", version_no=1, body=body))
    raw = await raw_item(db, repo.table, {"PK": "DOC#2", "SK": "V#0001"})
    assert set(raw["body"]) == {"B"} and len(base64.b64decode(raw["body"]["B"])) < 1000
    assert await repo.get(Doc, doc_id="2", version_no=1) == Doc(doc_id="2", version_no=1, body=body)
    await repo.update(Doc.ref(doc_id="2", version_no=1), body="short now")
    raw = await raw_item(db, repo.table, {"PK": "DOC#2", "SK": "V#0001"})
    assert raw["body"] == {"S": "short now"}
    got = await repo.get(Doc, doc_id="2", version_no=1)
    assert got is not None and got.body == "short now"
    # Every read path decodes: a query of the entity, a batch of refs.
    await repo.put(Doc(doc_id="2", version_no=2, body=body))
    listed = [doc async for doc in repo.query(Doc, doc_id="2")]
    assert [d.body for d in listed] == ["short now", body]
    batch = await repo.batch_get(
        [Doc.ref(doc_id="2", version_no=2), Doc.ref(doc_id="2", version_no=1)]
    )
    assert [d.body if d else None for d in batch] == [body, "short now"]
    with pytest.raises(InvalidExpression, match="body"):
        await repo.put(Doc(doc_id="2", version_no=1, body="x"), condition=Attr("body").eq("y"))
    await db.delete_table(repo.table.name, wait=False)


async def test_the_guide_page_examples_run(db: Client, s3: Any, server: LocalServer) -> None:
    """docs/large-items.md: each Python block runs, in order, against moto (the stream
    consumer, which runs forever, is only compiled)."""
    from pathlib import Path

    page = Path(__file__).parents[2] / "docs" / "large-items.md"
    blocks = page.read_text().split("```python\n")[1:]
    with contextlib.suppress(Exception):
        await s3.create_bucket(Bucket="my-docs-bucket")
    for name in ("Docs", "Archive"):
        await db.create_table(name, partition_key="PK", sort_key="SK")
    names: dict[str, Any] = {
        "db": db,
        "text": "a long report. " * 10_000,
        "pdf_bytes": os.urandom(500_000),
    }
    try:
        for block in blocks:
            code = block.split("```", 1)[0].replace("http://127.0.0.1:5000", server.endpoint_url)
            if "S3Offload(bucket, prefix" in code:
                continue  # the signature, not an example
            body = "".join(f"    {line}\n" for line in code.splitlines())
            source = f"async def _example():\n{body}    return locals()\n"
            compiled = compile(source, str(page), "exec")
            if "db.stream(" in code:
                continue
            exec(compiled, names)
            made = await names["_example"]()
            made.pop("db", None)  # the first block's own client is closed when it ends
            names.update(made)
        assert names["doc"].scan == names["pdf_bytes"]
        assert names["pdf"] == names["pdf_bytes"]
        assert await db.table("Docs").get({"PK": "DOC#1", "SK": "METADATA"}) == {
            "PK": "DOC#1",
            "SK": "METADATA",
            "body": names["text"],
            "scan": names["pdf_bytes"],
        }
    finally:
        for name in ("Docs", "Archive", "Library"):
            with contextlib.suppress(TableNotFound):
                await db.delete_table(name, wait=False)


async def test_a_cached_table_serves_offloaded_items_as_a_miss_does(
    db: Client, make_table: MakeTable, s3: Any, bucket: str
) -> None:
    made = await make_table()
    eager = LargeAttributes(offload={"blob": S3Offload(bucket, "offload/")})
    table = db.table(made.name, cache=ItemCache(), large=eager)
    key = {"PK": "DOC#1", "SK": "V#1"}
    first, second = os.urandom(MB), os.urandom(MB)
    await table.put({**key, "blob": first})
    before = db.stats().total_requests
    assert await table.batch_get([key]) == [{**key, "blob": first}]
    assert await table.get(key) == {**key, "blob": first}  # a hit, its value read back
    assert await table.get(key) == {**key, "blob": first}
    # One DynamoDB read, then hits (the S3 reads go through the S3 client, not counted here).
    assert db.stats().total_requests - before == 1
    # An offloaded put drops the entry: no stale reference to the object it superseded.
    await table.put({**key, "blob": second})
    assert await table.get(key) == {**key, "blob": second}
    await table.delete(key)
    assert await table.get(key) is None

    lazy = LargeAttributes(offload={"blob": S3Offload(bucket, "lazy/", fetch="lazy")})
    other = db.table((await make_table()).name, cache=ItemCache(), large=lazy)
    await other.put({**key, "blob": first})
    one, two = await other.get(key), await other.get(key)
    assert one is not None and two is not None
    assert isinstance(one["blob"], Offloaded) and one["blob"] is not two["blob"]
    assert await one["blob"].load() == first and not two["blob"].loaded


async def test_a_lost_race_names_the_stored_item_as_a_get_returns_it(
    db: Client, make_table: MakeTable
) -> None:
    # put_versioned's ConditionalCheckFailed.item is what modify() merges into and writes
    # back: its compressed attributes are values, as a get returns them, never the bytes.
    made = await make_table()
    table = db.table(made.name, large=LargeAttributes(compress={"body"}, codec="zlib"))
    key = {"PK": "DOC#1", "SK": "V#1"}
    body = "the stored sentence. " * 500
    await table.put_versioned({**key, "body": body})
    await table.put_versioned({**key, "body": body + "2", "version": 1})
    with pytest.raises(ConditionalCheckFailed) as caught:
        await table.put_versioned({**key, "body": "stale", "version": 1})
    assert caught.value.item == await table.get(key) == {**key, "body": body + "2", "version": 2}
    written = await table.modify(key, lambda current: {**(current or {}), "n": 1})
    assert await table.get(key) == written == {**key, "body": body + "2", "version": 3, "n": 1}
