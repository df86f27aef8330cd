"""The ``s3`` backend: any S3-compatible store (AWS S3, MinIO, Ceph, …) through boto3.

boto3 is synchronous: each call runs in a worker thread (``anyio.to_thread``), and
one client (thread-safe) serves every request. A file up to
``CRM2_DOCUMENTS_S3_MULTIPART_THRESHOLD`` goes up in one PUT; a larger one as a
multipart upload in parts of that size, so memory stays bounded by one part.
An object appears only when its PUT or its multipart completion succeeds (S3
writes are atomic); a failed multipart upload is aborted.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any

import anyio

from crm2_documents.storage.base import (
    CHUNK_SIZE,
    KeyMissing,
    StorageBackend,
    StorageError,
    StoredObject,
    check_key,
)

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Error(StorageError):
    """What boto3 raised (unreachable, refused, …), as the contract's ``StorageError``;
    ``response`` keeps S3's error code."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.response = getattr(cause, "response", None)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3Backend(StorageBackend):
    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
        part_size: int = 8 * 1024 * 1024,
        name: str = "s3",
    ) -> None:
        self.name = name
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.region = region
        self.prefix = prefix
        self.part_size = part_size
        self._credentials = (access_key_id, secret_access_key)
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Any) -> S3Backend:
        secret = settings.s3_secret_access_key
        return cls(
            endpoint_url=settings.s3_endpoint_url,
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            prefix=settings.s3_prefix,
            part_size=settings.s3_multipart_threshold,
        )

    @property
    def client(self) -> Any:
        if self._client is None:  # lazily: building the backend does no I/O
            import boto3
            from botocore.config import Config

            key_id, secret = self._credentials
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
                config=Config(
                    s3={"addressing_style": "path"},
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=5,
                    read_timeout=60,
                ),
            )
        return self._client

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        function = getattr(self.client, method)
        try:
            return await anyio.to_thread.run_sync(lambda: function(**kwargs))
        except (BotoCoreError, ClientError) as exc:
            raise S3Error(exc) from exc

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        object_key = self._key(key)
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= self.part_size:
                    if upload_id is None:
                        started = await self._call(
                            "create_multipart_upload", Bucket=self.bucket, Key=object_key
                        )
                        upload_id = str(started["UploadId"])
                    part, buffer = bytes(buffer[: self.part_size]), buffer[self.part_size :]
                    parts.append(await self._part(object_key, upload_id, len(parts) + 1, part))
            if upload_id is None:
                await self._call(
                    "put_object", Bucket=self.bucket, Key=object_key, Body=bytes(buffer)
                )
                return size
            if buffer:
                parts.append(await self._part(object_key, upload_id, len(parts) + 1, bytes(buffer)))
            await self._call(
                "complete_multipart_upload",
                Bucket=self.bucket,
                Key=object_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            if upload_id is not None:
                with anyio.CancelScope(shield=True):
                    await self._call(
                        "abort_multipart_upload",
                        Bucket=self.bucket,
                        Key=object_key,
                        UploadId=upload_id,
                    )
            raise
        return size

    async def _part(
        self, object_key: str, upload_id: str, number: int, data: bytes
    ) -> dict[str, Any]:
        answer = await self._call(
            "upload_part",
            Bucket=self.bucket,
            Key=object_key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
        )
        return {"ETag": answer["ETag"], "PartNumber": number}

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        object_key = self._key(key)
        if end is not None and end <= start:
            return
        ranged: dict[str, Any] = {}
        if start or end is not None:
            ranged["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            answer = await self._call("get_object", Bucket=self.bucket, Key=object_key, **ranged)
        except Exception as exc:
            if _code(exc) in _MISSING:
                raise KeyMissing(key) from exc
            if _code(exc) == "InvalidRange":
                return
            raise
        from botocore.exceptions import BotoCoreError

        body = answer["Body"]
        try:
            while True:
                try:  # the body cut off (reset, short): the store failing, as in ``_call``
                    chunk = await anyio.to_thread.run_sync(body.read, CHUNK_SIZE)
                except BotoCoreError as exc:
                    raise S3Error(exc) from exc
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    async def exists(self, key: str) -> bool:
        try:
            await self._call("head_object", Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        return True

    async def delete(self, key: str) -> bool:
        existed = await self.exists(key)
        if existed:
            await self._call("delete_object", Bucket=self.bucket, Key=self._key(key))
        return existed

    async def objects(self, prefix: str) -> AsyncIterator[StoredObject]:
        """The bucket's objects under this backend's prefix + ``prefix`` (ListObjectsV2)."""
        token: str | None = None
        while True:
            more = {"ContinuationToken": token} if token else {}
            page = await self._call(
                "list_objects_v2", Bucket=self.bucket, Prefix=self.prefix + prefix, **more
            )
            for item in page.get("Contents", []):
                key = str(item["Key"])[len(self.prefix) :]
                yield StoredObject(key, item["LastModified"])
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def status(self) -> Mapping[str, Any]:
        await self._call("head_bucket", Bucket=self.bucket)
        return {"endpoint": self.endpoint_url, "bucket": self.bucket, "prefix": self.prefix}

    async def aclose(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
