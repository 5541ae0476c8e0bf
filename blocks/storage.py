"""Prefect Blocks that configure where dimflow writes its results; `.storage()` gives the plain store.

The blocks only hold configuration (saved on the Prefect server and edited in its UI); all behaviour lives
in `dimflow.storage`, so flows and tests can use the stores without Prefect.
"""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from dimflow.storage import LocalStorage, S3Storage, Storage, sse_from_settings


class LocalResultStorage(Block):
    """Results in a local (or mounted) folder."""

    _block_type_name: ClassVar[str] = "dimflow Local Result Storage"
    _description: ClassVar[str] = (
        "Write-once dimflow results (JSON, ballooned PNG, CSV) in a folder; relative roots resolve against "
        "the worker's working directory."
    )

    root: str = Field(default="out/results", description="Folder that holds the results.")

    def storage(self) -> Storage:
        return LocalStorage(self.root)


class S3ResultStorage(Block):
    """Results in an S3 bucket or an S3-compatible server (MinIO, Ceph)."""

    _block_type_name: ClassVar[str] = "dimflow S3 Result Storage"
    _description: ClassVar[str] = (
        "Write-once dimflow results (JSON, ballooned PNG, CSV) in an S3 bucket or an S3-compatible server. "
        "Credentials left empty come from boto3's usual chain (environment, profile, instance role). Objects are "
        "encrypted server-side as the writing process's DIMFLOW_S3_SSE and DIMFLOW_S3_SSE_KMS_KEY_ID say."
    )

    bucket: str = Field(description="Bucket name.")
    prefix: str = Field(default="", description="Key prefix inside the bucket, e.g. 'dimflow/results'.")
    endpoint_url: str | None = Field(default=None, description="Endpoint of an S3-compatible server; empty for AWS.")
    region: str = Field(default="us-east-1", description="Region of the bucket.")
    aws_access_key_id: str | None = Field(default=None, description="Access key id; empty for boto3's chain.")
    aws_secret_access_key: SecretStr | None = Field(default=None, description="Secret key; empty for boto3's chain.")
    conditional_writes: bool = Field(
        default=True,
        description="Use If-None-Match on PutObject; turn off only for servers that silently ignore it.",
    )

    def storage(self) -> Storage:
        """The store; its server-side encryption comes from the settings (dimflow.storage.sse_from_settings)."""
        secret = self.aws_secret_access_key
        return S3Storage(
            bucket=self.bucket,
            prefix=self.prefix,
            endpoint_url=self.endpoint_url,
            region=self.region,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret is not None else None,
            conditional_writes=self.conditional_writes,
            **sse_from_settings(),
        )
