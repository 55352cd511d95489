"""The blob store on an S3 bucket (FIELDCRM_BLOB_URL=s3://BUCKET/PREFIX), the same API as a
folder (obstore), against moto's S3 server over real HTTP, on SQLite and PostgreSQL:
uploads stored once under the prefix, reads, and erasure's `forget_blob`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from server.core.erasure import forget_blob
from server.settings import Settings
from tests.conftest import Database
from tests.factories import login_as, make_account, make_attachment, photo, put_blob, sha256_of

BUCKET, PREFIX = "fieldcrm-test", "blobs/north"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 endpoint with an empty bucket; the AWS variables obstore reads point at it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()


@pytest.fixture
def settings(database: Database, s3: Any) -> Settings:
    return Settings(database=database.config, blob_url=f"s3://{BUCKET}/{PREFIX}")


def objects(s3: Any) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read() for item in listed
    }


async def test_uploads_go_to_the_bucket_once_and_come_back(client: Any, s3: Any) -> None:
    rep = await login_as(client)
    account = await make_account(client, rep)
    data = photo(21, size=(640, 480))
    sha = sha256_of(data)
    made = await make_attachment(client, rep, data, account_id=account["id"])
    answers = await asyncio.gather(*(put_blob(client, rep, data) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert objects(s3) == {f"{PREFIX}/sha256/{sha[:2]}/{sha}": data}
    read = await client.get(f"/api/attachments/blobs/{sha}", headers=rep.headers)
    assert read.status_code == 200 and read.content == data
    row = await client.get(f"/api/attachments/{made['id']}", headers=rep.headers)
    assert row.json()["uploaded"] is True
    await client.delete(f"/api/attachments/{made['id']}", headers=rep.headers)
    assert await forget_blob(sha) is True
    assert objects(s3) == {}
    gone = await client.get(f"/api/attachments/blobs/{sha}", headers=rep.headers)
    assert gone.status_code == 404
