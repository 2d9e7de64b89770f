"""Bucket settings of the ``s3`` adapter, through boto3 (a cold path: a few requests per bucket, so
botocore's own serialisers and parsers for policy, CORS, lifecycle, versioning, website, encryption
and tagging, instead of the adapter's hot-path wire client). Errors convert in one place
(``converted``), with the same S3 error-code table as the wire client."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from failover.errors import converter
from failover.settings import BucketSettings, Setting, policy_document, split_policy

from ..botocore_errors import KINDS, translator
from .errors import classify
from .signing import Credentials

__all__ = ["S3Settings"]

converted = converter(KINDS, translator(classify))
_ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"

# Error codes that mean "this setting is not set" when reading it.
_UNSET = {
    Setting.POLICY: ("NoSuchBucketPolicy",),
    Setting.CORS: ("NoSuchCORSConfiguration",),
    Setting.LIFECYCLE: ("NoSuchLifecycleConfiguration",),
    Setting.WEBSITE: ("NoSuchWebsiteConfiguration",),
    Setting.ENCRYPTION: ("ServerSideEncryptionConfigurationNotFoundError",),
    Setting.TAGS: ("NoSuchTagSet", "NoSuchTagSetError"),
}


class S3Settings:
    """Reads and writes the settings a vendor profile declares, for one S3 store."""

    def __init__(
        self,
        *,
        endpoint: str | None,
        region: str,
        addressing_style: str,
        credentials: Callable[[], Credentials],
        verify: bool | str | None,
        timeouts: tuple[float, float],
    ) -> None:
        self._endpoint = endpoint
        self._region = region
        self._addressing = addressing_style
        self._credentials = credentials
        self._verify = verify
        self._timeouts = timeouts
        self._made: tuple[Credentials, Any] | None = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        """A boto3 client, made again when the credentials change (profile credentials rotate)."""
        creds = self._credentials()
        with self._lock:
            if self._made is not None and self._made[0] == creds:
                return self._made[1]
        client = self._new_client(creds)
        with self._lock:
            self._made = (creds, client)
        return client

    def _new_client(self, creds: Credentials) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self._endpoint,
            region_name=self._region,
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            aws_session_token=creds.token,
            verify=self._verify,
            config=Config(
                s3={"addressing_style": "path" if self._addressing == "path" else "virtual"},
                connect_timeout=self._timeouts[0],
                read_timeout=self._timeouts[1],
                retries={"max_attempts": 1},  # the store's retry policy retries the whole call
                request_checksum_calculation="when_required",
            ),
        )

    @contextmanager
    def _unset_reads_as_empty(self, setting: Setting) -> Iterator[list[bool]]:
        """Inside: a read of ``setting``; an error saying it is not set makes the flag True."""
        unset = [False]
        try:
            yield unset
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _UNSET.get(setting, ()):
                raise
            unset[0] = True

    def object_public(self, bucket: str, key: str) -> bool:
        with converted("object_public", f"{bucket}/{key}"):
            grants = self._client().get_object_acl(Bucket=bucket, Key=key).get("Grants", [])
        return any(
            g.get("Grantee", {}).get("URI") == _ALL_USERS and g.get("Permission") in ("READ", "FULL_CONTROL")
            for g in grants
        )

    def make_object_public(self, bucket: str, key: str) -> None:
        with converted("make_object_public", f"{bucket}/{key}"):
            self._client().put_object_acl(Bucket=bucket, Key=key, ACL="public-read")

    def _remove(self, setting: Setting, delete: Callable[[], Any]) -> None:
        """Remove a setting; one that is not set is removed already (some servers say so as an error)."""
        with self._unset_reads_as_empty(setting):
            delete()

    def read(self, bucket: str, settings: frozenset[Setting]) -> BucketSettings:
        client = self._client()
        found: dict[str, Any] = {}
        with converted("bucket_settings", bucket):
            client.head_bucket(Bucket=bucket)
            if settings & {Setting.PUBLIC_READ, Setting.POLICY}:
                with self._unset_reads_as_empty(Setting.POLICY) as unset:
                    text = client.get_bucket_policy(Bucket=bucket)["Policy"]
                if not unset[0]:
                    public, rest = split_policy(json.loads(text), bucket)
                    found["public_read"] = public
                    found["policy"] = rest
            if Setting.CORS in settings:
                with self._unset_reads_as_empty(Setting.CORS):
                    found["cors"] = tuple(client.get_bucket_cors(Bucket=bucket).get("CORSRules", []))
            if Setting.LIFECYCLE in settings:
                with self._unset_reads_as_empty(Setting.LIFECYCLE):
                    found["lifecycle"] = tuple(
                        client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
                    )
            if Setting.VERSIONING in settings:
                found["versioning"] = client.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"
            if Setting.WEBSITE in settings:
                with self._unset_reads_as_empty(Setting.WEBSITE):
                    site = client.get_bucket_website(Bucket=bucket)
                    found["website"] = {
                        k: site[k]
                        for k in ("IndexDocument", "ErrorDocument", "RedirectAllRequestsTo", "RoutingRules")
                        if k in site
                    } or None
            if Setting.ENCRYPTION in settings:
                with self._unset_reads_as_empty(Setting.ENCRYPTION):
                    rules = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
                    default = rules[0].get("ApplyServerSideEncryptionByDefault") if rules else None
                    found["encryption"] = dict(default) if default else None
            if Setting.TAGS in settings:
                with self._unset_reads_as_empty(Setting.TAGS):
                    found["tags"] = {t["Key"]: t["Value"] for t in client.get_bucket_tagging(Bucket=bucket)["TagSet"]}
        return BucketSettings(**{k: v for k, v in found.items() if v is not None})

    def write(self, bucket: str, settings: BucketSettings, which: frozenset[Setting]) -> None:
        client = self._client()
        with converted("put_bucket_settings", bucket):
            if which & {Setting.PUBLIC_READ, Setting.POLICY}:
                document = policy_document(settings, bucket)
                if document is None:
                    self._remove(Setting.POLICY, lambda: client.delete_bucket_policy(Bucket=bucket))
                else:
                    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
            if Setting.CORS in which:
                if settings.cors:
                    client.put_bucket_cors(
                        Bucket=bucket, CORSConfiguration={"CORSRules": [dict(r) for r in settings.cors]}
                    )
                else:
                    self._remove(Setting.CORS, lambda: client.delete_bucket_cors(Bucket=bucket))
            if Setting.LIFECYCLE in which:
                if settings.lifecycle:
                    client.put_bucket_lifecycle_configuration(
                        Bucket=bucket, LifecycleConfiguration={"Rules": [dict(r) for r in settings.lifecycle]}
                    )
                else:
                    self._remove(Setting.LIFECYCLE, lambda: client.delete_bucket_lifecycle(Bucket=bucket))
            if Setting.VERSIONING in which and settings.versioning:
                # Versioning can be suspended but never switched off again: only ever turned on here.
                client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            if Setting.WEBSITE in which:
                if settings.website:
                    client.put_bucket_website(Bucket=bucket, WebsiteConfiguration=dict(settings.website))
                else:
                    self._remove(Setting.WEBSITE, lambda: client.delete_bucket_website(Bucket=bucket))
            if Setting.ENCRYPTION in which:
                if settings.encryption:
                    rule = {"ApplyServerSideEncryptionByDefault": dict(settings.encryption)}
                    client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
                else:
                    self._remove(Setting.ENCRYPTION, lambda: client.delete_bucket_encryption(Bucket=bucket))
            if Setting.TAGS in which:
                if settings.tags:
                    tag_set = [{"Key": k, "Value": v} for k, v in settings.tags.items()]
                    client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})
                else:
                    self._remove(Setting.TAGS, lambda: client.delete_bucket_tagging(Bucket=bucket))
