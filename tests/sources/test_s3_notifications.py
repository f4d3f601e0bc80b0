"""Parsing SQS bodies into S3 object references: AWS's documented shapes and moto's."""

from __future__ import annotations

import orjson
import pytest

from forwarder.sources.s3_sqs.notifications import ObjectRef, log_type_from_key, parse_body

# PROTOCOLS.md 4.4: the documented direct notification (awsdocs notification-content-structure).
AWS_DIRECT = {
    "Records": [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-west-2",
            "eventTime": "1970-01-01T00:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {
                "x-amz-request-id": "C3D13FE58DE4C810",
                "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "testConfigRule",
                "bucket": {
                    "name": "mybucket",
                    "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                    "arn": "arn:aws:s3:::mybucket",
                },
                "object": {
                    "key": "HappyFace+%281%29.jpg",
                    "size": 1024,
                    "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                    "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                    "sequencer": "0055AED6DCD90281E5",
                },
            },
        }
    ]
}

# moto 5.2.5, captured: no userIdentity/sequencer, "/" escaped as %2F.
MOTO_DIRECT = (
    '{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", '
    '"eventTime": "2026-11-27T03:55:44.321Z", "eventName": "ObjectCreated:Put", "s3": '
    '{"s3SchemaVersion": "1.0", "configurationId": "luvv", "bucket": {"name": "bkt1", "arn": '
    '"arn:aws:s3:::bkt1"}, "object": {"key": "dir%2Fa+b%2Bc+%C3%A9%25.json", "size": 8, '
    '"eTag": "de6224f73589e9f1a1800d0dbee75a0b"}}}]}'
)
MOTO_TEST_EVENT = (
    '{"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-27T03:55:44.311Z", '
    '"Bucket": "bkt1"}'
)
AWS_TEST_EVENT = {
    "Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2014-10-13T15:57:02.089Z",
    "Bucket": "bucketname", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
}  # fmt: skip

# PROTOCOLS.md 4.5: the AWS example (lowercase etag) and moto's variant (eTag, "null" version).
AWS_EVENTBRIDGE = {
    "version": "0", "id": "2d4eba74-fd51-3966-4bfa-b013c9da8ff1", "detail-type": "Object Created",
    "source": "aws.s3", "account": "123456789012", "time": "2022-02-19T01:36:58Z",
    "region": "us-east-1", "resources": ["arn:aws:s3:::DOC-EXAMPLE-BUCKET1"],
    "detail": {
        "version": "0", "bucket": {"name": "DOC-EXAMPLE-BUCKET1"},
        "object": {"key": "AWSLogs/111122223333/WorkMail/AUTHENTICATION_LOGS/2022/02/19/x.log.gz",
                   "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                   "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "00617F08299329D189"},
        "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
        "source-ip-address": "1.2.3.4", "reason": "PutObject",
    },
}  # fmt: skip
MOTO_EVENTBRIDGE = (
    '{"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created", '
    '"source": "aws.s3", "account": "123456789012", "time": "2026-11-27T03:55:45Z", "region": '
    '"us-east-1", "resources": ["arn:aws:s3:::bkt2"], "detail": {"version": "0", "bucket": {"name": '
    '"bkt2"}, "object": {"key": "x y/\\u00e9.json", "size": 8, "eTag": '
    '"de6224f73589e9f1a1800d0dbee75a0b", "version-id": "null", "sequencer": "617f08299329d189"}, '
    '"request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "source-ip-address": '
    '"1.2.3.4", "reason": "ObjectCreated"}}'
)


def sns(message: str) -> str:
    """PROTOCOLS.md 4.6: the SNS envelope around an S3 notification (as moto delivers it)."""
    return orjson.dumps({
        "Type": "Notification", "MessageId": "b1037", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
        "Message": message, "Timestamp": "2026-11-27T03:55:45.582Z", "SignatureVersion": "2",
        "Signature": "iuEU", "SigningCertURL": "https://sns.us-east-1.amazonaws.com/x.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }).decode()  # fmt: skip


def test_aws_direct_notification() -> None:
    parsed = parse_body(orjson.dumps(AWS_DIRECT))
    assert parsed.kind == "objects" and parsed.wrapper == "s3"
    assert parsed.objects == (
        ObjectRef(bucket="mybucket", key="HappyFace (1).jpg",
                  etag="d41d8cd98f00b204e9800998ecf8427e",
                  version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko", size=1024, event_time=0.0),
    )  # fmt: skip


def test_moto_direct_notification_decodes_escaped_slash_plus_and_unicode() -> None:
    [ref] = parse_body(MOTO_DIRECT).objects
    assert ref.key == "dir/a b+c é%.json"
    assert ref.etag == "de6224f73589e9f1a1800d0dbee75a0b"
    assert ref.version_id is None and ref.size == 8
    assert ref.event_time == pytest.approx(1795751744.321)


def test_real_aws_key_with_unescaped_slashes() -> None:
    body = orjson.loads(orjson.dumps(AWS_DIRECT))
    body["Records"][0]["s3"]["object"]["key"] = (
        "AWSLogs/2817/CloudTrail/us-east-1/2017/08/23/a+b.json.gz"
    )
    [ref] = parse_body(orjson.dumps(body)).objects
    assert ref.key == "AWSLogs/2817/CloudTrail/us-east-1/2017/08/23/a b.json.gz"


def test_several_records_and_removed_events() -> None:
    body = orjson.loads(orjson.dumps(AWS_DIRECT))
    second = orjson.loads(orjson.dumps(body["Records"][0]))
    second["s3"]["object"]["key"] = "other.json"
    removed = orjson.loads(orjson.dumps(body["Records"][0]))
    removed["eventName"] = "ObjectRemoved:Delete"
    body["Records"] += [second, removed]
    parsed = parse_body(orjson.dumps(body))
    assert [ref.key for ref in parsed.objects] == ["HappyFace (1).jpg", "other.json"]
    only_removed = parse_body(orjson.dumps({"Records": [removed]}))
    assert only_removed.kind == "ignored" and "ObjectRemoved" in only_removed.reason


def test_test_events_direct_and_through_sns() -> None:
    assert parse_body(MOTO_TEST_EVENT).kind == "test"
    assert parse_body(orjson.dumps(AWS_TEST_EVENT)).kind == "test"
    wrapped = parse_body(sns(MOTO_TEST_EVENT))
    assert wrapped.kind == "test" and wrapped.wrapper == "sns+s3"


def test_sns_enveloped_and_raw_delivery() -> None:
    enveloped = parse_body(sns(MOTO_DIRECT))
    assert enveloped.wrapper == "sns+s3"
    assert [r.key for r in enveloped.objects] == ["dir/a b+c é%.json"]
    raw = parse_body(MOTO_DIRECT)  # RawMessageDelivery=true: the S3 JSON itself
    assert raw.objects == enveloped.objects


def test_eventbridge_aws_shape_lowercase_etag() -> None:
    parsed = parse_body(orjson.dumps(AWS_EVENTBRIDGE))
    assert parsed.kind == "objects" and parsed.wrapper == "eventbridge"
    [ref] = parsed.objects
    assert ref.bucket == "DOC-EXAMPLE-BUCKET1"
    assert ref.etag == "b1946ac92492d2347c6235b4d2611184"
    assert ref.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert ref.event_time == pytest.approx(1645234618.0)
    assert ref.alternate_key is None
    assert log_type_from_key(ref.key) == "AUTHENTICATION_LOGS"


def test_eventbridge_moto_shape_camel_etag_and_null_version() -> None:
    [ref] = parse_body(MOTO_EVENTBRIDGE).objects
    assert ref.key == "x y/é.json"  # EventBridge keys are used as given
    assert ref.etag == "de6224f73589e9f1a1800d0dbee75a0b"
    assert ref.version_id is None


def test_eventbridge_encoded_looking_key_keeps_the_decoded_spelling_as_alternate() -> None:
    doc = orjson.loads(orjson.dumps(AWS_EVENTBRIDGE))
    doc["detail"]["object"]["key"] = "logs/a+b%20c.json"
    [ref] = parse_body(orjson.dumps(doc)).objects
    assert ref.key == "logs/a+b%20c.json" and ref.alternate_key == "logs/a b c.json"


def test_eventbridge_other_detail_types_are_ignored() -> None:
    doc = {**AWS_EVENTBRIDGE, "detail-type": "Object Deleted"}
    assert parse_body(orjson.dumps(doc)).kind == "ignored"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("not json at all", "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"hello": "world"}', "not an S3 event"),
        ('{"Records": []}', "non-empty list"),
        ('{"Records": [{"eventSource": "aws:sqs", "eventName": "x"}]}', "not an S3 event"),
        (
            '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {}, "object": {}}}]}',
            "bucket name or object key missing",
        ),
        ('{"Records": [{"eventName": "Weird:Thing"}]}', "unknown eventName"),
        (
            '{"Type": "Notification", "TopicArn": "arn", "Message": "{oops"}',
            "SNS Message is not JSON",
        ),
        ('{"Type": "Notification", "TopicArn": "arn", "Message": 5}', "string Message"),
        ('{"source": "aws.s3", "detail-type": "Object Created", "detail": 3}', "detail is missing"),
    ],
)
def test_anything_else_is_invalid_with_a_reason(body: str, why: str) -> None:
    parsed = parse_body(body)
    assert parsed.kind == "invalid"
    assert why in parsed.reason


def test_log_type_from_key() -> None:
    assert (
        log_type_from_key("x/workmail_mailbox_access_logs/2026/a.gz")
        == "WORKMAIL_MAILBOX_ACCESS_LOGS"
    )
    assert log_type_from_key("AWSLogs/1/WorkMail/WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS/a.gz") == (
        "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS"
    )
    assert log_type_from_key("AWSLogs/1/WorkMail/2026/a.gz") is None
