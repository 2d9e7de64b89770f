"""The ``sqs`` change feed: S3 event notifications delivered to an SQS queue (AWS and LocalStack).

``setup`` creates the queue (with a policy that lets the buckets' S3 service send to it) and adds one
queue configuration, with this feed's Id, to each bucket's notification configuration, keeping the
configurations the bucket already has (PutBucketNotificationConfiguration replaces the whole
document: it is read, merged and written back). ``teardown`` removes exactly that configuration and
the queue. Messages carry S3 event records (``Records``), directly or wrapped by SNS; object keys in
them are URL-encoded (``+`` for spaces) and are decoded here.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from failover.changes import Action, Change
from failover.config import ServiceSpec
from failover.errors import NotFound
from failover.feed import ChangeEvent, ChangeFeed, EventKind

from .errors import converted
from .options import SqsFeedOptions
from .session import client_for

__all__ = ["SqsFeed", "parse_message"]

_EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


def _records(body: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(body, dict):
        return
    if body.get("Type") == "Notification" and isinstance(body.get("Message"), str):  # through SNS
        try:
            yield from _records(json.loads(body["Message"]))
        except ValueError:
            return
        return
    records = body.get("Records")
    if isinstance(records, list):
        yield from (record for record in records if isinstance(record, dict))


def parse_message(text: str, receipt: str) -> list[ChangeEvent]:
    """The change events of one message body (none for a test event or anything unreadable)."""
    try:
        body = json.loads(text)
    except ValueError:
        return []
    events = []
    for record in _records(body):
        name = str(record.get("eventName", ""))
        kind: EventKind | None = (
            "put" if name.startswith("ObjectCreated") else "delete" if name.startswith("ObjectRemoved") else None
        )
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        key = (s3.get("object") or {}).get("key")
        if kind is None or not isinstance(bucket, str) or not isinstance(key, str):
            continue
        try:
            when = datetime.fromisoformat(str(record.get("eventTime")).replace("Z", "+00:00")).timestamp()
        except ValueError:
            when = 0.0
        size = (s3.get("object") or {}).get("size")
        events.append(
            ChangeEvent(
                bucket, urllib.parse.unquote_plus(key), kind, when, receipt, size if isinstance(size, int) else None
            )
        )
    return events


class SqsFeed(ChangeFeed):
    options_model = SqsFeedOptions

    def __init__(self, spec: ServiceSpec) -> None:
        self.name = spec.provider
        self.options: SqsFeedOptions = spec.options
        self._sqs = client_for(spec, "sqs")
        self._s3 = client_for(spec, "s3")
        self._url: str | None = None
        self._arn: str | None = None

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> SqsFeed:
        return cls(spec)

    # -- the queue ---------------------------------------------------------------------------------

    def _queue(self) -> tuple[str, str] | None:
        """(url, arn) of the queue, or None when it does not exist."""
        try:
            with converted("get_queue_url", self.options.queue):
                url = str(self._sqs.get_queue_url(QueueName=self.options.queue)["QueueUrl"])
            with converted("get_queue_attributes", self.options.queue):
                attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        except NotFound:
            return None
        return url, str(attributes["QueueArn"])

    def _known_queue(self) -> tuple[str, str]:
        if self._url is None or self._arn is None:
            found = self._queue()
            if found is None:
                raise NotFound(
                    f"the change feed's queue {self.options.queue!r} does not exist on {self.name}",
                    provider=self.name,
                    operation="receive",
                    target=self.options.queue,
                    hint="failover standby --setup-feed creates it (and each bucket's notification to it)",
                )
            self._url, self._arn = found
        return self._url, self._arn

    def _policy(self, arn: str) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "s3-notifications",
                        "Effect": "Allow",
                        "Principal": {"Service": "s3.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": arn,
                        "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"}},
                    }
                ],
            }
        )

    # -- bucket notification configurations --------------------------------------------------------

    def _notifications(self, bucket: str) -> dict[str, Any]:
        with converted("get_bucket_notification_configuration", bucket):
            found = self._s3.get_bucket_notification_configuration(Bucket=bucket)
        found.pop("ResponseMetadata", None)
        return dict(found)

    def _ours(self, configuration: dict[str, Any]) -> dict[str, Any] | None:
        for queue in configuration.get("QueueConfigurations", []):
            if queue.get("Id") == self.options.notification_id:
                return dict(queue)
        return None

    def _put_notifications(self, bucket: str, configuration: dict[str, Any]) -> None:
        kept = {k: v for k, v in configuration.items() if v}
        with converted("put_bucket_notification_configuration", bucket):
            self._s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=kept)

    def _plan(self, buckets: Sequence[str], queue: tuple[str, str] | None) -> list[Change]:
        changes = []
        if queue is None:
            changes.append(Change(Action.CREATE, f"queue {self.options.queue} on {self.name}"))
        for bucket in buckets:
            ours = self._ours(self._notifications(bucket))
            if ours is None or queue is None or ours.get("QueueArn") != queue[1]:
                changes.append(
                    Change(
                        Action.UPDATE if ours else Action.CREATE,
                        f"notification {self.options.notification_id} of bucket {bucket}",
                        after={"queue": self.options.queue, "events": _EVENTS},
                    )
                )
        return changes

    # -- the interface -----------------------------------------------------------------------------

    def plan_setup(self, buckets: Sequence[str]) -> list[Change]:
        return self._plan(buckets, self._queue())

    def setup(self, buckets: Sequence[str]) -> list[Change]:
        queue = self._queue()
        changes = self._plan(buckets, queue)
        if queue is None:
            with converted("create_queue", self.options.queue):
                url = str(
                    self._sqs.create_queue(
                        QueueName=self.options.queue,
                        Attributes={"VisibilityTimeout": str(self.options.visibility_timeout)},
                    )["QueueUrl"]
                )
            self._url = None
            queue = self._known_queue()
            with converted("set_queue_attributes", self.options.queue):
                self._sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": self._policy(queue[1])})
        for bucket in buckets:
            configuration = self._notifications(bucket)
            others = [
                q for q in configuration.get("QueueConfigurations", []) if q.get("Id") != self.options.notification_id
            ]
            ours = {"Id": self.options.notification_id, "QueueArn": queue[1], "Events": _EVENTS}
            configuration["QueueConfigurations"] = [*others, ours]
            self._put_notifications(bucket, configuration)
        return changes

    def teardown(self, buckets: Sequence[str]) -> list[Change]:
        changes = []
        for bucket in buckets:
            configuration = self._notifications(bucket)
            if self._ours(configuration) is None:
                continue
            configuration["QueueConfigurations"] = [
                q for q in configuration.get("QueueConfigurations", []) if q.get("Id") != self.options.notification_id
            ]
            self._put_notifications(bucket, configuration)
            changes.append(Change(Action.DELETE, f"notification {self.options.notification_id} of bucket {bucket}"))
        queue = self._queue()
        if queue is not None:
            with converted("delete_queue", self.options.queue):
                self._sqs.delete_queue(QueueUrl=queue[0])
            changes.append(Change(Action.DELETE, f"queue {self.options.queue} on {self.name}"))
        self._url = self._arn = None
        return changes

    def check(self, buckets: Sequence[str]) -> None:
        self._url = None
        _, arn = self._known_queue()
        missing = [b for b in buckets if (self._ours(self._notifications(b)) or {}).get("QueueArn") != arn]
        if missing:
            raise NotFound(
                f"bucket(s) {', '.join(missing)} on {self.name} do not send their changes "
                f"to queue {self.options.queue!r}",
                provider=self.name,
                operation="check_feed",
                target=missing[0],
                hint="failover standby --setup-feed adds the notification (keeping the buckets' others)",
            )

    def _receive(self, url: str, wait: int) -> list[dict[str, Any]]:
        with converted("receive_message", self.options.queue):
            reply = self._sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=self.options.batch, WaitTimeSeconds=wait
            )
        return list(reply.get("Messages", []))

    def receive(self, wait: float) -> list[ChangeEvent]:
        url, _ = self._known_queue()
        messages = self._receive(url, max(0, min(20, int(wait))))
        if len(messages) >= self.options.batch and self.options.parallel > 1:
            # A full batch: more are waiting. SQS gives at most 10 a call; ask several times at once.
            with ThreadPoolExecutor(self.options.parallel) as pool:
                for more in pool.map(lambda _: self._receive(url, 0), range(self.options.parallel)):
                    messages += more
        events: list[ChangeEvent] = []
        empty = []
        for message in messages:
            found = parse_message(str(message.get("Body", "")), str(message["ReceiptHandle"]))
            if found:
                events.extend(found)
            else:
                empty.append(ChangeEvent("", "", "put", 0.0, str(message["ReceiptHandle"])))
        if empty:
            self.ack(empty)  # a test event or an unreadable message: nothing to copy
        return events

    def ack(self, events: Sequence[ChangeEvent]) -> None:
        url, _ = self._known_queue()
        receipts = sorted({event.receipt for event in events})

        def delete(start: int) -> None:
            entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts[start : start + 10])]
            with converted("delete_message_batch", self.options.queue):
                self._sqs.delete_message_batch(QueueUrl=url, Entries=entries)

        batches = range(0, len(receipts), 10)
        if len(batches) <= 1:
            list(map(delete, batches))
            return
        with ThreadPoolExecutor(min(4, len(batches))) as pool:  # SQS takes 10 per call
            list(pool.map(delete, batches))

    def backlog(self) -> int | None:
        url, _ = self._known_queue()
        with converted("get_queue_attributes", self.options.queue):
            attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]
        return int(attributes.get("ApproximateNumberOfMessages", 0))

    def close(self) -> None:
        for client in (self._sqs, self._s3):
            client.close()
