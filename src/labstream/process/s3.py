"""Built-in `s3` processor: each file to an S3-compatible bucket under its relative path.

The only module importing boto3 (an optional dependency: pip install 'labstream[s3]').
Options: bucket (required), prefix, endpoint_url, region; credentials come the standard
boto3 ways (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles).
"""

from __future__ import annotations

import logging
from typing import Any

from labstream.errors import ConfigError
from labstream.process.api import BaseProcessor, ReceivedFile

__all__ = ["S3Sink"]

logger = logging.getLogger(__name__)
MULTIPART_THRESHOLD = 16 * 1024 * 1024


class S3Sink(BaseProcessor):
    """Uploads files with their digest as object metadata; skips objects already identical."""

    def __init__(
        self, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str | None = None
    ) -> None:
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        except ImportError as exc:
            raise ConfigError("the s3 processor needs boto3: pip install 'labstream[s3]'") from exc
        # Checksum headers of new botocore versions are refused by many S3-compatible servers.
        config = Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard"},
        )
        self._client: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD
        )
        self._bucket = bucket
        self._prefix = prefix.strip("/")

    def process(self, file: ReceivedFile) -> None:
        key = f"{self._prefix}/{file.relpath}" if self._prefix else file.relpath
        if self._already_there(key, file):
            logger.info("object already holds this file, skipped bucket=%s key=%s", self._bucket, key)
            return
        self._client.upload_file(
            str(file.path),
            self._bucket,
            key,
            Config=self._transfer,
            ExtraArgs={"Metadata": {file.hash_name: file.digest}},
        )
        logger.info("uploaded to s3 bucket=%s key=%s size=%d", self._bucket, key, file.size)

    def _already_there(self, key: str, file: ReceivedFile) -> bool:
        from botocore.exceptions import ClientError

        try:
            head = self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return bool(
            head.get("Metadata", {}).get(file.hash_name) == file.digest
            and head.get("ContentLength") == file.size
        )
