//! Email event records read once for both mappers (forwarder/mapping/email.py
//! `read_email` and `EmailFacts`).

use super::common::{is_address, read_fields, spec, FVal, Fields, F};
use super::dict::{Dict, Item};
use super::Defer;
use crate::json::{Object, Value};

/// What read_fields makes of the envelope, the inner event and its bounce; the
/// facts borrow from it.
pub struct EmailRead<'v> {
    name: &'v str,
    top: Fields<'v>,
    event: Fields<'v>,
    bounce: Option<Fields<'v>>,
}

/// `read_email(record)`: the read record, or why it is not a usable email event
/// (the reference's invalid_record detail).
pub fn read_email<'v>(
    record: &'v Object<'v>,
) -> Result<Result<EmailRead<'v>, &'static str>, Defer> {
    let top = read_fields(record, &spec::EMAIL_ENVELOPE)?;
    let Some(FVal::Raw(Value::Object(event))) = top.get(F::Event) else {
        return Ok(Err("event: expected an object"));
    };
    let name = match event.get("eventName") {
        Some(Value::Str(name)) if !name.is_empty() => name.as_ref(),
        _ => return Ok(Err("event.eventName: expected a non-empty string")),
    };
    let values = read_fields(event, &spec::EMAIL_EVENT)?;
    let bounce = match values.get(F::BouncedRecipient) {
        Some(FVal::Raw(Value::Object(bounce))) => Some(read_fields(bounce, &spec::BOUNCE)?),
        _ => None,
    };
    Ok(Ok(EmailRead {
        name,
        top,
        event: values,
        bounce,
    }))
}

/// `EmailFacts`: one email event as both mappers see it.
pub struct EmailFacts<'f> {
    pub name: &'f str,
    pub values: &'f Fields<'f>,
    /// The event's unusable and undocumented fields (plus `policy` when it differs
    /// from `dmarcPolicy`).
    pub extra: Dict<'f>,
    pub trace_id: Option<&'f str>,
    pub top_extra: &'f [(&'f str, &'f Value<'f>)],
    pub activity_id: i64,
    pub direction_id: i64,
    pub failed: bool,
    pub reason: Option<&'f str>,
    pub dmarc_policy: Option<&'f str>,
    pub bounce_status: Option<&'f str>,
    pub bounce_extra: Dict<'f>,
    /// Every address naming a recipient, the bounced one first, each once.
    pub recipients: Vec<&'f str>,
    pub delivered_to: Option<&'f str>,
}

/// EMAIL_EVENT_SHAPES: (OCSF activity_id, direction_id, is_failure).
fn shape(name: &str) -> (i64, i64, bool) {
    match name {
        "ORGANIZATION_EMAIL_RECEIVED" | "MAILBOX_EMAIL_DELIVERED" => (2, 1, false),
        "INCOMING_EMAIL_BOUNCED" => (2, 1, true),
        "DMARC_POLICY_APPLIED" => (3, 1, false),
        "OUTGOING_EMAIL_SUBMITTED" | "OUTGOING_EMAIL_SENT" => (1, 2, false),
        "OUTGOING_EMAIL_BOUNCED" => (1, 2, true),
        "RULE_APPLIED" | "JOURNALING_INITIATED" => (4, 0, false),
        _ => (99, 0, false),
    }
}

impl<'v> EmailRead<'v> {
    pub fn facts(&self) -> EmailFacts<'_> {
        let values = &self.event;
        let name = self.name;
        let (activity_id, mut direction_id, failed) = shape(name);
        if name == "RULE_APPLIED" {
            if let Some(rule_type) = values.str(F::RuleType) {
                direction_id = match rule_type {
                    "INBOUND_RULE" | "MAILBOX_RULE" => 1,
                    "OUTBOUND_RULE" => 2,
                    _ => 0,
                };
            }
        }
        let mut extra = Dict::of_values(&values.extra);
        let mut reason = values.str(F::Reason);
        let (dmarc, policy) = (values.str(F::DmarcPolicy), values.str(F::Policy));
        let dmarc_policy = dmarc.or(policy);
        if let (Some(dmarc), Some(policy)) = (dmarc, policy) {
            if policy != dmarc {
                extra.set("policy", Item::Str(policy));
            }
        }
        let mut recipients: Vec<&str> = Vec::new();
        let mut bounce_status = None;
        let mut bounce_extra = Dict::default();
        if let Some(found) = &self.bounce {
            bounce_extra = Dict::of_values(&found.extra);
            if let Some(address) = found.str(F::EmailAddress) {
                recipients.push(address);
            }
            if let Some(bounced) = found.str(F::Reason) {
                match reason {
                    Some(own) if own != bounced => bounce_extra.set("reason", Item::Str(bounced)),
                    _ => reason = Some(bounced),
                }
            }
            bounce_status = found.str(F::Status);
        }
        for field in [F::Recipients, F::Destination] {
            if let Some(list) = values.list(field) {
                for address in list.iter() {
                    push_new(&mut recipients, address);
                }
            }
        }
        for field in [F::Recipient, F::JournalingAddress] {
            if let Some(address) = values.str(field) {
                push_new(&mut recipients, address);
            }
        }
        if let Some(FVal::Raw(Value::Array(actions))) = values.get(F::RuleActions) {
            for action in actions {
                let listed = action.as_object().and_then(|a| a.get("recipients"));
                if let Some(Value::Array(addresses)) = listed {
                    for address in addresses.iter().filter_map(Value::as_str) {
                        if is_address(address) {
                            push_new(&mut recipients, address);
                        }
                    }
                }
            }
        }
        let delivered_to = match name {
            "MAILBOX_EMAIL_DELIVERED" | "OUTGOING_EMAIL_SENT" => values.str(F::Recipient),
            _ => None,
        };
        EmailFacts {
            name,
            values,
            extra,
            trace_id: self.top.str(F::TraceId),
            top_extra: &self.top.extra,
            activity_id,
            direction_id,
            failed,
            reason,
            dmarc_policy,
            bounce_status,
            bounce_extra,
            recipients,
            delivered_to,
        }
    }
}

fn push_new<'a>(recipients: &mut Vec<&'a str>, address: &'a str) {
    if !recipients.contains(&address) {
        recipients.push(address);
    }
}
