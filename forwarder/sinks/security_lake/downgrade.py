"""OCSF 1.5.0 documents as OCSF 1.3.0, the newest version Security Lake takes from
custom sources ("For custom sources, Security Lake supports OCSF version 1.3 and
earlier": Security Lake User Guide, "Collecting data from custom sources").

This module changes values only; where an attribute goes is the row shaper's job
(`columns.py`): whatever OCSF 1.3.0 has no attribute for in the class lands in
`unmapped` under `ocsf.<path>`. The table of changes is in docs/mapping.md
("Amazon Security Lake"); the rules, each from the OCSF 1.4.0 changelog:

* `metadata.version` becomes 1.3.0; profiles 1.3.0 does not apply to the class are
  dropped from `metadata.profiles` (Security Control and Host moved to the base event
  only in 1.4.0, #1280/#1281) and `datetime` is declared, for `time_dt`;
* Authentication `auth_protocol_id` 11 (Basic Authentication, #1239) becomes 99 Other,
  `auth_protocol` keeps its caption;
* Email Activity `activity_id` 4 (Trace, #1252) becomes 99 Other, `activity_name`
  keeps "Trace"; `email.delivered_to_list` (#1307) becomes `email.delivered_to`; 1.3.0
  requires both `email.from` and `email.to` (relaxed in #1259), so a missing one is the
  reserved `unknown@unknown.invalid` the 1.5.0 mapping uses when both are missing.
"""

from __future__ import annotations

from typing import Any

from forwarder.mapping.ocsf import UNKNOWN_ADDRESS

VERSION = "1.3.0"
_BASIC_AUTH = 11
_OTHER = 99
_TRACE = 4


def to_ocsf_1_3(doc: dict[str, Any], profiles: tuple[str, ...]) -> dict[str, Any]:
    """Turn `doc` (an OCSF 1.5.0 event, changed in place) into OCSF 1.3.0 values.

    `profiles` are those OCSF 1.3.0 applies to the class (and the lake schema has).
    """
    metadata = doc.get("metadata")
    if type(metadata) is dict:
        metadata["version"] = VERSION
        declared = metadata.get("profiles")
        if type(declared) is list:
            kept = [p for p in declared if p in profiles]
            if "datetime" in profiles and "datetime" not in kept:
                kept.append("datetime")
            metadata["profiles"] = kept
    class_uid = doc.get("class_uid")
    if class_uid == 3002 and doc.get("auth_protocol_id") == _BASIC_AUTH:
        doc["auth_protocol_id"] = _OTHER
    elif class_uid == 4009:
        _email_activity(doc)
    return doc


def _email_activity(doc: dict[str, Any]) -> None:
    if doc.get("activity_id") == _TRACE:
        doc["activity_id"] = _OTHER
        doc["type_uid"] = 4009 * 100 + _OTHER
        doc["type_name"] = "Email Activity: Other"
    email = doc.get("email")
    if type(email) is not dict:
        return
    delivered = email.pop("delivered_to_list", None)
    if type(delivered) is list and delivered:
        email["delivered_to"] = delivered[0]
        if len(delivered) > 1:
            email["delivered_to_list"] = delivered  # no 1.3.0 home: the shaper moves it
    elif delivered is not None:
        email["delivered_to_list"] = delivered
    if "from" not in email:
        email["from"] = UNKNOWN_ADDRESS
    if "to" not in email:
        email["to"] = [UNKNOWN_ADDRESS]
