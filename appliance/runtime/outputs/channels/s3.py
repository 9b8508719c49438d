"""S3 uploads (boto3, any S3-compatible endpoint): the client made from the profile, an upload
transport for queued objects (screenshots), and what an S3 error means for the channel. boto3's
own retries are off: the sender retries, with its backoff and its view of the channel's health."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
    SSLError,
)

from appliance.config.model import S3Config
from appliance.runtime.outputs.channels.base import (
    ChannelRefused,
    DeliveryFailed,
    Message,
    MessageRefused,
    Transport,
    TryLater,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHANNEL_CODES = frozenset({
    "AccessDenied", "AccountProblem", "AllAccessDisabled", "AuthorizationHeaderMalformed", "InvalidAccessKeyId",
    "InvalidBucketName", "NoSuchBucket", "PermanentRedirect", "SignatureDoesNotMatch",
})  # fmt: skip
MESSAGE_CODES = frozenset({"BadDigest", "EntityTooLarge", "InvalidArgument", "InvalidDigest", "KeyTooLongError"})
DEFAULT_REGION = "us-east-1"


def s3_client(config: S3Config) -> S3Client:
    settings = Config(
        connect_timeout=config.timeout_s, read_timeout=config.timeout_s, retries={"max_attempts": 1},
        s3={"addressing_style": "path" if config.endpoint_url else "auto"},
    )  # fmt: skip
    return boto3.session.Session().client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        verify=config.ca_file or True,
        config=settings,
    )


def s3_failure(error: Exception, bucket: str) -> DeliveryFailed:
    """What an S3 error means, in words without credentials."""
    where = f"bucket {bucket}"
    match error:
        case ClientError():
            code = str(error.response.get("Error", {}).get("Code", "unknown"))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            said = f"{where}: {code} ({status})"
            if code in CHANNEL_CODES or status in (401, 403):
                return ChannelRefused(said)
            if code in MESSAGE_CODES:
                return MessageRefused(said)
            return TryLater(said)
        case NoCredentialsError() | PartialCredentialsError():
            return ChannelRefused(f"{where}: no usable credentials (s3.access_key_id, the environment or ~/.aws)")
        case SSLError():
            return ChannelRefused(f"{where}: the endpoint's certificate is not trusted")
    return TryLater(f"{where}: {type(error).__name__}: {str(error)[:200]}")


UPLOAD_ERRORS = (BotoCoreError, ClientError, OSError)


class S3Transport(Transport):
    """Puts each message's first attachment at the message's key."""

    kind = "s3"
    config_type = S3Config

    def __init__(
        self, config: S3Config, device_id: str, *, channel_id: str = "screenshots", client: S3Client | None = None
    ) -> None:
        super().__init__(channel_id)
        self.config = config
        self.client = client or s3_client(config)

    def send(self, message: Message) -> None:
        attachment = message.attachments[0]
        try:
            self.client.put_object(Bucket=self.config.bucket, Key=message.key, Body=attachment.data,
                                   ContentType=attachment.content_type)  # fmt: skip
        except UPLOAD_ERRORS as error:
            raise s3_failure(error, self.config.bucket) from None
