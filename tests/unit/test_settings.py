"""Bucket settings, planned provider-neutrally: what a target takes of a source's settings, what is
rewritten for it and what is named as not carried (failover.settings)."""

from __future__ import annotations

from failover.settings import BucketSettings, Setting, differences, plan_settings, policy_document, split_policy

PUBLIC = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::media/*"}
LIST = {
    "Sid": "List",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": "s3:ListBucket",
    "Resource": "arn:aws:s3:::media",
}
ROLE = {
    "Sid": "Uploader",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:role/uploader"},
    "Action": "s3:PutObject",
    "Resource": "arn:aws:s3:::media/*",
}
ALL = frozenset(Setting)


def test_public_read_is_recognised_only_when_it_is_exactly_that() -> None:
    assert split_policy({"Statement": [PUBLIC]}, "media") == (True, None)
    assert split_policy({"Statement": [PUBLIC]}, "other")[0] is False, "another bucket's objects"
    narrower = {**PUBLIC, "Resource": "arn:aws:s3:::media/public/*"}
    assert split_policy({"Statement": [narrower]}, "media")[0] is False
    conditional = {**PUBLIC, "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    assert split_policy({"Statement": [conditional]}, "media")[0] is False
    more = {**PUBLIC, "Action": ["s3:GetObject", "s3:PutObject"]}
    assert split_policy({"Statement": [more]}, "media")[0] is False
    public, rest = split_policy({"Version": "2012-10-17", "Statement": [PUBLIC, LIST]}, "media")
    assert public and rest == {"Version": "2012-10-17", "Statement": [LIST]}


def test_a_policy_is_rewritten_for_the_target_bucket_and_foreign_principals_are_named() -> None:
    source = BucketSettings(public_read=True, policy={"Version": "2012-10-17", "Statement": [LIST, ROLE]})
    plan = plan_settings(source, "media", "media-new", ALL)
    assert plan.write.public_read
    assert plan.write.policy == {
        "Version": "2012-10-17",
        "Statement": [{**LIST, "Resource": "arn:aws:s3:::media-new"}],
    }
    assert [(o.setting, o.outcome) for o in plan.outcomes] == [("policy", "not_carried")]
    assert "Uploader" in plan.outcomes[0].detail and "123456789012" in plan.outcomes[0].detail
    document = policy_document(plan.write, "media-new")
    assert document is not None and split_policy(document, "media-new") == (True, plan.write.policy)


def test_what_a_target_does_not_hold_is_named_with_its_own_reason() -> None:
    source = BucketSettings(
        public_read=True,
        cors=({"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},),
        versioning=True,
        encryption={"SSEAlgorithm": "AES256"},
        tags={"team": "media"},
    )
    holds = frozenset({Setting.PUBLIC_READ})
    plan = plan_settings(
        source,
        "media",
        "media",
        holds,
        reasons={Setting.CORS: "CORS is per account here"},
        implied={Setting.ENCRYPTION: "always encrypted at rest"},
    )
    assert plan.write == BucketSettings(public_read=True)
    outcomes = {o.setting: (o.outcome, o.detail) for o in plan.outcomes}
    assert outcomes["cors"] == ("not_carried", "CORS is per account here")
    assert outcomes["versioning"][0] == "not_carried" and outcomes["tags"][0] == "not_carried"
    assert outcomes["encryption"] == ("translated", "always encrypted at rest")
    assert "public_read" not in outcomes


def test_a_kms_key_of_the_source_account_is_not_carried() -> None:
    source = BucketSettings(encryption={"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "arn:aws:kms:us-east-1:1:key/x"})
    plan = plan_settings(source, "b", "b", ALL)
    assert plan.write.encryption == {"SSEAlgorithm": "AES256"}
    assert [(o.setting, o.outcome) for o in plan.outcomes] == [("encryption", "not_carried")]
    # A target that always encrypts with its own keys does not make a KMS key carried either.
    implied = plan_settings(source, "b", "b", frozenset(), implied={Setting.ENCRYPTION: "always"})
    assert [o.outcome for o in implied.outcomes] == ["not_carried"]


def test_read_back_comparison_ignores_order_and_empty_defaults() -> None:
    wanted = BucketSettings(
        cors=({"AllowedOrigins": ["a", "b"], "AllowedMethods": ["GET"], "ExposeHeaders": []},),
        tags={"a": "1", "b": "2"},
    )
    found = BucketSettings(cors=({"AllowedMethods": ["GET"], "AllowedOrigins": ["b", "a"]},), tags={"b": "2", "a": "1"})
    assert differences(wanted, found, [Setting.CORS, Setting.TAGS]) == []
    assert differences(wanted, BucketSettings(), [Setting.CORS, Setting.TAGS]) == [Setting.CORS, Setting.TAGS]
    assert BucketSettings(versioning=True, tags={"a": "1"}).present() == {Setting.VERSIONING, Setting.TAGS}


def test_cors_rules_as_one_origin_list_say_how_they_widen() -> None:
    from failover.settings import CORS_METHODS, cors_as_one_rule

    rules = [
        {"ID": "a", "AllowedOrigins": ["https://a.example"], "AllowedMethods": ["GET"], "MaxAgeSeconds": 600},
        {
            "AllowedOrigins": ["https://b.example", "https://*.c.example"],
            "AllowedMethods": ["PUT"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 60,
        },
    ]
    [rule], notes = cors_as_one_rule(rules)
    assert rule == {
        "AllowedOrigins": ["https://a.example", "https://b.example"],
        "AllowedMethods": list(CORS_METHODS),
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 60,
    }
    text = " | ".join(notes)
    for said in ("https://*.c.example not carried", "2 rules merged", "the source allowed GET, PUT", "header", "60 s"):
        assert said in text, (said, notes)
    # Only a pattern: nothing the target can hold, and no widening to every origin.
    assert cors_as_one_rule([{"AllowedOrigins": ["https://*.x.example"], "AllowedMethods": ["GET"]}])[0] == ()
    assert cors_as_one_rule([]) == ((), [])


def test_cors_rules_merged_into_shared_ones_are_added_once() -> None:
    from failover.settings import cors_rules_merged

    theirs = [{"AllowedOrigins": ["https://admin.example"], "AllowedMethods": ["put"], "MaxAgeSeconds": 0}]
    ours = [{"ID": "x", "AllowedOrigins": ["https://social.example"], "AllowedMethods": ["GET"]}]
    merged, new, notes = cors_rules_merged(theirs, ours)
    assert new == 1 and notes == []
    assert merged == (
        {"AllowedOrigins": ["https://admin.example"], "AllowedMethods": ["PUT"]},
        {"AllowedOrigins": ["https://social.example"], "AllowedMethods": ["GET"]},
    )
    again, new_again, _ = cors_rules_merged(merged, ours)
    assert again == merged and new_again == 0, "a re-run adds nothing"
