"""The `s3://bucket/prefix` artifact store, through the MinIO client (any S3-compatible server).

A put streams to a temporary object `<prefix>.sluice/tmp/<uuid>` (multipart past one part, so
memory stays at one part) while hashing, then server-side copies it to the final name with the
digest as user metadata (x-amz-meta-sha256), then deletes the temporary object. The copy is the
atomic publish: readers never see a partial artifact, and concurrent writers end with one
complete object carrying its own digest.

Retries happen per HTTP request in urllib3 (connection errors, 5xx including SlowDown, with
exponential backoff), where the request body is already a bytes part and so can be resent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

import urllib3
from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import MAX_PART_SIZE, MIN_PART_SIZE, check_bucket_name

from .base import (
    DEFAULT_CONTENT_TYPE,
    ArtifactInfo,
    ArtifactStore,
    as_stream,
    check_content_type,
)
from .errors import (
    ArtifactCorrupted,
    ArtifactNotFound,
    ArtifactStoreError,
    InvalidArtifactKey,
    StorageUnavailable,
)
from .keys import (
    MAX_KEY_BYTES,
    RESERVED_SEGMENT,
    check_key,
    check_prefix,
    is_internal,
    is_valid_key,
)
from .streams import HashingReader, ReadableBinary, open_verified

_log = logging.getLogger(__name__)

SHA256_METADATA = "sha256"  # sent and stored as the header x-amz-meta-sha256
_SHA256_HEADER = "x-amz-meta-" + SHA256_METADATA
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "ServerBusy"}
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True)
class S3Settings:
    """How to reach the S3-compatible server; read once from the environment with from_env()."""

    endpoint: str  # host[:port], without scheme: "minio:9000", "s3.eu-west-1.amazonaws.com"
    access_key: str | None = None  # None: anonymous requests
    secret_key: str | None = field(default=None, repr=False)  # kept out of logs
    region: str = "us-east-1"  # always sent, which spares a GetBucketLocation round trip
    secure: bool = False  # TLS
    max_retries: int = 4  # per HTTP request, on connection errors and 429/5xx (SlowDown)
    backoff_s: float = 0.2  # retry n waits backoff_s * 2**(n-1) (the first retry is immediate)
    backoff_max_s: float = 10.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    part_size: int = 16 * 1024 * 1024  # multipart part size; the memory one upload holds

    def __post_init__(self) -> None:
        if not self.endpoint or "://" in self.endpoint or "/" in self.endpoint:
            raise ValueError(
                f"S3 endpoint must be host[:port] without scheme or path, got {self.endpoint!r}"
                " (use secure=True / SLUICE_S3_SECURE=true for TLS)"
            )
        if self.access_key and self.secret_key is None:
            raise ValueError("S3 secret_key must be set together with access_key")
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise ValueError(
                f"S3 part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes,"
                f" got {self.part_size}"
            )
        if self.max_retries < 0:
            raise ValueError(f"S3 max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_s < 0 or self.backoff_max_s < 0:
            raise ValueError("S3 backoff_s and backoff_max_s must be >= 0")
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ValueError("S3 connect_timeout_s and read_timeout_s must be > 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Settings:
        """SLUICE_S3_ENDPOINT (required), SLUICE_S3_ACCESS_KEY, SLUICE_S3_SECRET_KEY,
        SLUICE_S3_REGION (default us-east-1), SLUICE_S3_SECURE (default false)."""
        env = os.environ if environ is None else environ
        endpoint = env.get("SLUICE_S3_ENDPOINT", "").strip()
        if not endpoint:
            raise ValueError("SLUICE_S3_ENDPOINT is not set; s3:// artifact stores need it")
        secure_text = env.get("SLUICE_S3_SECURE", "false").strip().lower()
        if secure_text not in _TRUE | _FALSE:
            raise ValueError(
                f"SLUICE_S3_SECURE must be true or false, got {env['SLUICE_S3_SECURE']!r}"
            )
        return cls(
            endpoint=endpoint,
            access_key=env.get("SLUICE_S3_ACCESS_KEY") or None,
            secret_key=env.get("SLUICE_S3_SECRET_KEY") or None,
            region=env.get("SLUICE_S3_REGION") or "us-east-1",
            secure=secure_text in _TRUE,
        )

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"


def make_minio_client(settings: S3Settings) -> Minio:
    """A MinIO client whose HTTP layer retries transient failures and gives up in bounded time."""
    retry = urllib3.Retry(
        total=settings.max_retries,
        backoff_factor=settings.backoff_s,
        backoff_max=settings.backoff_max_s,
        status_forcelist=_RETRY_STATUSES,
        allowed_methods=None,  # every S3 call here is safe to resend (see the module docstring)
        raise_on_status=False,  # hand the last error response to minio, which parses its code
        redirect=False,  # minio handles S3 redirects itself
        respect_retry_after_header=True,
    )
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=settings.connect_timeout_s, read=settings.read_timeout_s),
        retries=retry,
        maxsize=10,
    )
    return Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        secure=settings.secure,
        region=settings.region,
        http_client=http,
    )


class S3ArtifactStore(ArtifactStore):
    def __init__(self, bucket: str, prefix: str, settings: S3Settings) -> None:
        try:
            check_bucket_name(bucket, strict=True)
        except ValueError:
            raise ValueError(f"invalid S3 bucket name {bucket!r}") from None
        body = prefix.strip("/")
        if body:
            try:
                check_key(body)
            except InvalidArtifactKey as error:
                raise ValueError(f"invalid S3 prefix {prefix!r}: {error.reason}") from None
        self._bucket = bucket
        self._prefix = f"{body}/" if body else ""
        self._settings = settings
        self._client = make_minio_client(settings)

    @property
    def root_uri(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}".removesuffix("/")

    def uri_for(self, key: str) -> str:
        return f"s3://{self._bucket}/{self._prefix}{check_key(key)}"

    def put(
        self,
        key: str,
        data: ReadableBinary | bytes,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> ArtifactInfo:
        name = self._name(key)
        check_content_type(content_type)
        reader = HashingReader(as_stream(data))
        temporary = f"{self._prefix}{RESERVED_SEGMENT}/tmp/{uuid.uuid4().hex}"
        try:
            with self._translated(key):
                self._client.put_object(
                    self._bucket,
                    temporary,
                    reader,  # type: ignore[arg-type]  # minio only calls read(size)
                    length=-1,
                    part_size=self._settings.part_size,
                    content_type=content_type,
                    # One part in flight: with a pool, minio 7.2 leaves its upload threads
                    # waiting forever when the source stream fails midway.
                    num_parallel_uploads=1,
                )
                digest = reader.hexdigest()
                self._client.copy_object(
                    self._bucket,
                    name,
                    CopySource(self._bucket, temporary),
                    metadata={SHA256_METADATA: digest, "Content-Type": content_type},
                    metadata_directive=REPLACE,
                )
        finally:
            self._remove_temporary(temporary)
        return ArtifactInfo(key, reader.size, digest, self.uri_for(key), content_type)

    def open(self, key: str) -> BinaryIO:
        name = self._name(key)
        with self._translated(key):
            response = self._client.get_object(self._bucket, name)

        def release() -> None:
            response.close()
            response.release_conn()

        try:
            sha256 = self._recorded_sha256(key, response.headers)
            size = int(response.headers.get("content-length", "-1"))
        except BaseException:
            release()
            raise

        def read(size: int) -> bytes:
            with self._translated(key):
                # Raw bytes: the digest is of what was stored, whatever Content-Encoding says.
                return response.read(size, decode_content=False)

        return open_verified(
            read, release, key=key, where=self.root_uri, expected_sha256=sha256, size=size
        )

    def stat(self, key: str) -> ArtifactInfo:
        name = self._name(key)
        with self._translated(key):
            found = self._client.stat_object(self._bucket, name)
        return ArtifactInfo(
            key=key,
            size=int(found.size or 0),
            sha256=self._recorded_sha256(key, found.metadata or {}),
            uri=self.uri_for(key),
            content_type=found.content_type or DEFAULT_CONTENT_TYPE,
        )

    def exists(self, key: str) -> bool:
        name = self._name(key)
        try:
            with self._translated(key):
                self._client.stat_object(self._bucket, name)
        except ArtifactNotFound:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[ArtifactInfo]:
        check_prefix(prefix)
        return self._infos(prefix)

    def delete(self, key: str) -> None:
        name = self._name(key)
        with self._translated(key):
            self._client.stat_object(self._bucket, name)  # S3 deletes succeed for missing keys
            self._client.remove_object(self._bucket, name)

    def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        if not prefix:
            raise InvalidArtifactKey(prefix, "must not be empty: refusing to delete every artifact")
        names = [self._name(key) for key in self._keys(prefix)]
        with self._translated(None):
            failures = list(
                self._client.remove_objects(self._bucket, (DeleteObject(n) for n in names))
            )
        if failures:
            first = failures[0]
            raise ArtifactStoreError(
                f"could not delete {len(failures)} of {len(names)} artifacts under {prefix!r}"
                f" in {self.root_uri}; first: {first.name}: {first.code} {first.message}"
            )
        return len(names)

    # -- helpers --------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        name = self._prefix + check_key(key)
        if len(name.encode("utf-8")) > MAX_KEY_BYTES:
            raise InvalidArtifactKey(
                key, f"with the store prefix {self._prefix!r} it is over S3's {MAX_KEY_BYTES} bytes"
            )
        return name

    def _keys(self, prefix: str) -> Iterator[str]:
        """Keys under `prefix`, in S3 order (UTF-8 byte order, the same as str order)."""
        with self._translated(None):
            for found in self._client.list_objects(
                self._bucket, prefix=self._prefix + prefix, recursive=True
            ):
                key = str(found.object_name)[len(self._prefix) :]
                if not found.is_dir and not is_internal(key) and is_valid_key(key):
                    yield key

    def _infos(self, prefix: str) -> Iterator[ArtifactInfo]:
        for key in self._keys(prefix):
            with contextlib.suppress(ArtifactNotFound):  # deleted since it was listed
                yield self.stat(key)

    def _recorded_sha256(self, key: str, headers: Mapping[str, str]) -> str:
        sha256 = headers.get(_SHA256_HEADER)
        if not sha256:
            raise ArtifactCorrupted(
                key, self.root_uri, "no sha256 digest is recorded (written outside the store?)"
            )
        return sha256

    def _remove_temporary(self, temporary: str) -> None:
        try:
            with self._translated(None):
                self._client.remove_object(self._bucket, temporary)
        except ArtifactStoreError as error:
            # The put's own outcome matters more; a bucket lifecycle rule on .sluice/tmp/ can
            # expire what is left.
            _log.warning("could not remove temporary object %s: %s", temporary, error)

    @contextlib.contextmanager
    def _translated(self, key: str | None) -> Iterator[None]:
        """Turn minio and urllib3 failures into artifact store errors."""
        endpoint = self._settings.endpoint_url
        tries = f"after {self._settings.max_retries} retries"
        try:
            yield
        except S3Error as error:
            code = error.code or ""
            if code in ("NoSuchKey", "NotFound") and key is not None:
                raise ArtifactNotFound(key, self.root_uri) from error
            if code == "NoSuchBucket":
                raise ArtifactStoreError(
                    f"bucket {self._bucket!r} does not exist at {endpoint}"
                ) from error
            if code in _TRANSIENT_CODES or error.response.status >= 500:
                raise StorageUnavailable(endpoint, f"{code}: {error.message} ({tries})") from error
            raise ArtifactStoreError(
                f"S3 request for {key or self.root_uri!r} at {endpoint} failed: "
                f"{code}: {error.message}"
            ) from error
        except ServerError as error:
            raise StorageUnavailable(endpoint, f"HTTP {error.status_code} ({tries})") from error
        except InvalidResponseError as error:
            raise StorageUnavailable(endpoint, f"not an S3 response: {error}") from error
        except urllib3.exceptions.MaxRetryError as error:
            raise StorageUnavailable(endpoint, f"{error.reason} ({tries})") from error
        except urllib3.exceptions.HTTPError as error:
            raise StorageUnavailable(endpoint, str(error)) from error
