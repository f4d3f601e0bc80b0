"""Email event records read once for both mappers (the `traceId` + `event` envelope)."""

from __future__ import annotations

from typing import Any

from forwarder.mapping.common import (
    ADDRESS_PATTERN,
    BOUNCE_FIELDS,
    EMAIL_ENVELOPE_FIELDS,
    EMAIL_EVENT_FIELDS,
    EMAIL_EVENT_SHAPES,
    RULE_DIRECTION,
    read_fields,
)


class EmailFacts:
    """One email event record read for the OCSF and ECS mappers.

    `values`/`extra` are the inner event's fields as `read_fields` returns them;
    `top_extra` the envelope's unusable or undocumented fields, `bounce_extra` those
    of `bouncedRecipient`. Addresses from every field that names a recipient are
    merged into `recipients`, the bounced one first.
    """

    __slots__ = (
        "activity_id",
        "bounce_extra",
        "bounce_status",
        "delivered_to",
        "direction_id",
        "dmarc_policy",
        "extra",
        "failed",
        "name",
        "reason",
        "recipients",
        "top_extra",
        "trace_id",
        "values",
    )

    def __init__(
        self, name: str, top: tuple[dict[str, Any], dict[str, Any]], event: dict[str, Any]
    ) -> None:
        self.name = name
        values, extra = read_fields(event, EMAIL_EVENT_FIELDS)
        self.values = values
        self.extra = extra
        self.trace_id: str | None = top[0].get("traceId")
        self.top_extra: dict[str, Any] = top[1]
        self.activity_id, self.direction_id, self.failed = EMAIL_EVENT_SHAPES.get(
            name, (99, 0, False)
        )
        get = values.get
        if name == "RULE_APPLIED" and "ruleType" in values:
            self.direction_id = RULE_DIRECTION.get(values["ruleType"], 0)
        self.reason: str | None = get("reason")
        dmarc, policy = get("dmarcPolicy"), get("policy")
        self.dmarc_policy: str | None = dmarc or policy
        if dmarc is not None and policy is not None and policy != dmarc:
            extra["policy"] = policy
        self.bounce_status: str | None = None
        self.bounce_extra: dict[str, Any] = {}
        recipients: list[str] = []
        bounce = get("bouncedRecipient")
        if bounce is not None:
            found, self.bounce_extra = read_fields(bounce, BOUNCE_FIELDS)
            if "emailAddress" in found:
                recipients.append(found["emailAddress"])
            reason = found.get("reason")
            if reason is not None and self.reason not in (None, reason):
                self.bounce_extra["reason"] = reason
            elif reason is not None:
                self.reason = reason
            self.bounce_status = found.get("status")
        for key in ("recipients", "destination"):
            for address in get(key, ()):
                if address not in recipients:
                    recipients.append(address)
        for key in ("recipient", "journalingAddress"):
            address = get(key)
            if address is not None and address not in recipients:
                recipients.append(address)
        actions = get("ruleActions")
        if type(actions) is list:
            for action in actions:
                if type(action) is dict and type(action.get("recipients")) is list:
                    for address in action["recipients"]:
                        valid = type(address) is str and ADDRESS_PATTERN.fullmatch(address)
                        if valid and address not in recipients:
                            recipients.append(address)
        self.recipients = recipients
        self.delivered_to: str | None = (
            get("recipient") if name in ("MAILBOX_EMAIL_DELIVERED", "OUTGOING_EMAIL_SENT") else None
        )


def read_email(record: dict[str, Any]) -> EmailFacts | str:
    """The record's facts, or why it is not a usable email event."""
    top = read_fields(record, EMAIL_ENVELOPE_FIELDS)
    event = top[0].get("event")
    if event is None:
        return "event: expected an object"
    name = event.get("eventName")
    if type(name) is not str or not name:
        return "event.eventName: expected a non-empty string"
    return EmailFacts(name, top, event)
