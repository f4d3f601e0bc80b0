"""Where objects go in the lake: one custom source per OCSF class, partitioned keys.

Security Lake's custom-source contract (User Guide, "Collecting data from custom
sources"): each OCSF event class is its own source with its own prefix, and objects
are partitioned as

    <source location>region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/<object>

where the source location is what CreateCustomLogSource answers
(`s3://<lake bucket>/ext/<source name>/<source version>/`) and eventDay is the UTC day
of the records. Object names are `<first event ms>-<digest>.parquet`, the digest of
the ids of the events the object holds: the same events make the same key, so a
replay of an object overwrites it instead of adding a second copy.

No pyarrow here: the configuration imports this module.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

# class_uid -> (short name for templates, Security Lake's event class name, caption)
CLASSES: dict[int, tuple[str, str, str]] = {
    3002: ("auth", "AUTHENTICATION", "Authentication"),
    3004: ("entity", "ENTITY_MANAGEMENT", "Entity Management"),
    4009: ("email", "EMAIL_ACTIVITY", "Email Activity"),
    6001: ("web", "WEB_RESOURCES_ACTIVITY", "Web Resources Activity"),
    6003: ("api", "API_ACTIVITY", "API Activity"),
}
CLASS_BY_NAME = {short: uid for uid, (short, _, _) in CLASSES.items()}
# The OCSF class of each WorkMail log type (CONTRACT.md, "Mapped output").
CLASS_BY_LOG_TYPE = {
    "AUTHENTICATION_LOGS": 3002,
    "ACCESS_CONTROL_LOGS": 6001,
    "WORKMAIL_MAILBOX_ACCESS_LOGS": 6003,
    "WORKMAIL_AVAILABILITY_PROVIDER_LOGS": 6003,
    "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS": 3004,
    "EMAIL_EVENT_LOGS": 4009,
}
# CreateCustomLogSource: sourceName 1-64 of [\w\-_:.], and at most 20 characters so
# that the role Security Lake makes (AmazonSecurityLake-Provider-<name>-<region>) fits
# IAM's 64; sourceVersion 1-32 of [A-Za-z0-9\-._] (botocore model, securitylake).
SOURCE_NAME = re.compile(r"^[\w\-:.]{1,20}$")
SOURCE_VERSION = re.compile(r"^[A-Za-z0-9\-._]{1,32}$")
ACCOUNT = re.compile(r"^(\d{12}|external(_[\w\-]+)?)$")
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(.*)$")


def class_uid(name: str | int) -> int:
    """A class given as its short name (`auth`), its uid, or the uid as text."""
    if isinstance(name, int) or name.isdigit():
        uid = int(name)
        if uid in CLASSES:
            return uid
    elif name in CLASS_BY_NAME:
        return CLASS_BY_NAME[name]
    known = ", ".join(f"{short} ({uid})" for uid, (short, _, _) in CLASSES.items())
    raise ValueError(f"{name!r} is not one of the classes the forwarder writes: {known}")


def source_name(template: str, uid: int) -> str:
    short = CLASSES[uid][0]
    return template.replace("{class}", short).replace("{class_uid}", str(uid))


def parse_location(uri: str) -> tuple[str, str]:
    """(bucket, key prefix ending in `/`) of `s3://bucket/prefix/`."""
    match = _S3_URI.match(uri)
    if match is None:
        raise ValueError(f"{uri!r}: expected s3://BUCKET/PREFIX/")
    prefix = match.group(2)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return match.group(1), prefix


@dataclass(frozen=True, slots=True)
class Location:
    bucket: str
    prefix: str  # the custom source's location, ending in `/`

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def event_day(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y%m%d")


def partition_prefix(location: Location, region: str, account: str, day: str) -> str:
    return f"{location.prefix}region={region}/accountId={account}/eventDay={day}/"


def object_name(first_ms: int, ids: list[str]) -> str:
    """`<first event ms>-<digest of the ids of the object's events, in order>.parquet`."""
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
    return f"{first_ms:013d}-{digest}.parquet"
