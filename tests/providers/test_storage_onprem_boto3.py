"""The conformance suite against the lab's S3-compatible server with the s3 adapter's lean data path
switched off, so GET/PUT/UploadPart also run through boto3 (options.fast_path: false)."""

from typing import ClassVar

from tests.conformance.storage import ObjectStoreConformance


class TestS3OnPremServerBoto3DataPath(ObjectStoreConformance):
    provider = "onprem"
    option_overrides: ClassVar[dict[str, object]] = {"fast_path": False}
