//! Which WorkMail log a record belongs to, from its fields alone
//! (forwarder/mapping/detect.py `detect_log_type`).

use super::common::LogType;
use crate::json::{Object, Value};

/// `detect_log_type(record)`: the tests in the reference's order, over the key set
/// gathered in one pass ("in record" holds whatever the value, null included).
pub fn detect_log_type(record: &Object<'_>) -> Option<LogType> {
    let mut has = Keys::default();
    let mut email_event = false;
    let (mut provider, mut action) = (None, None);
    for (key, value) in record.iter() {
        match key {
            "event" => {
                email_event = value
                    .as_object()
                    .is_some_and(|event| event.contains_key("eventName"))
            }
            "auth_successful" | "method" | "auth_failed_reason" => has.authentication = true,
            "access_granted" | "scope" | "rule_id" => has.access_control = true,
            "action_allowed" | "object_type" | "folder_path" => has.mailbox = true,
            "availability_event_successful" | "function_arn" | "ews_endpoint" => {
                has.availability = true
            }
            "domain" => has.domain = true,
            "type" => provider = Some(value),
            "scopes" | "expires_time" => has.token = true,
            "action" => action = Some(value),
            "name" => has.name = true,
            "personal_access_token_id" => has.token_id = true,
            "item_id" | "folder_id" | "owner_id" => has.mailbox_ids = true,
            _ => {}
        }
    }
    let is = |value: Option<&Value<'_>>, a: &str, b: &str| {
        value
            .and_then(Value::as_str)
            .is_some_and(|s| s == a || s == b)
    };
    Some(if email_event {
        LogType::EmailEvents
    } else if has.authentication {
        LogType::Authentication
    } else if has.access_control {
        LogType::AccessControl
    } else if has.mailbox {
        LogType::MailboxAccess
    } else if has.availability || (has.domain && is(provider, "EWS", "LAMBDA")) {
        LogType::AvailabilityProvider
    } else if has.token || (has.name && is(action, "create", "delete")) {
        LogType::PersonalAccessToken
    } else if has.token_id {
        LogType::Authentication
    } else if has.mailbox_ids {
        LogType::MailboxAccess
    } else {
        return None;
    })
}

#[derive(Default)]
struct Keys {
    authentication: bool,
    access_control: bool,
    mailbox: bool,
    availability: bool,
    domain: bool,
    token: bool,
    name: bool,
    token_id: bool,
    mailbox_ids: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse::parse;

    fn detect(text: &str) -> Option<LogType> {
        match parse(text.as_bytes()) {
            Some(Value::Object(o)) => detect_log_type(&o),
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn the_reference_order() {
        assert_eq!(
            detect(r#"{"event":{"eventName":"X"},"method":"basic"}"#),
            Some(LogType::EmailEvents)
        );
        assert_eq!(
            detect(r#"{"event":{"x":1},"method":null}"#),
            Some(LogType::Authentication)
        );
        assert_eq!(
            detect(r#"{"scope":1,"folder_path":1}"#),
            Some(LogType::AccessControl)
        );
        assert_eq!(
            detect(r#"{"type":"EWS","domain":"x"}"#),
            Some(LogType::AvailabilityProvider)
        );
        assert_eq!(detect(r#"{"type":"ews","domain":"x"}"#), None);
        assert_eq!(
            detect(r#"{"action":"delete","name":"x"}"#),
            Some(LogType::PersonalAccessToken)
        );
        assert_eq!(
            detect(r#"{"action":"read","name":"x","owner_id":1}"#),
            Some(LogType::MailboxAccess)
        );
        assert_eq!(
            detect(r#"{"personal_access_token_id":1,"item_id":1}"#),
            Some(LogType::Authentication)
        );
        assert_eq!(detect(r#"{"user":"x"}"#), None);
    }
}
