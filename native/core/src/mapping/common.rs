//! Names, field specs and value coercion shared by the OCSF and ECS mappers
//! (forwarder/mapping/common.py): `read_fields` normalises a record in one pass.

mod ip;
mod time;

pub use ip::{is_ip, url_host};
pub use time::{parse_time_ms, write_iso_ms};

use std::borrow::Cow;

use super::Defer;
use crate::json::{Object, Value};

pub const PRODUCT_NAME: &str = "Amazon WorkMail";
/// Below this an epoch value is seconds, not ms.
pub const SECONDS_LIMIT: i64 = 100_000_000_000;
/// 10000-01-01T00:00:00Z, exclusive.
pub const MAX_TIME_MS: i64 = 253_402_300_800_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogType {
    AccessControl,
    Authentication,
    AvailabilityProvider,
    MailboxAccess,
    PersonalAccessToken,
    EmailEvents,
}

impl LogType {
    pub const ALL: [LogType; 6] = [
        LogType::AccessControl,
        LogType::Authentication,
        LogType::AvailabilityProvider,
        LogType::MailboxAccess,
        LogType::PersonalAccessToken,
        LogType::EmailEvents,
    ];

    /// The canonical name (common.LOG_TYPES).
    pub fn name(self) -> &'static str {
        match self {
            LogType::AccessControl => "ACCESS_CONTROL_LOGS",
            LogType::Authentication => "AUTHENTICATION_LOGS",
            LogType::AvailabilityProvider => "WORKMAIL_AVAILABILITY_PROVIDER_LOGS",
            LogType::MailboxAccess => "WORKMAIL_MAILBOX_ACCESS_LOGS",
            LogType::PersonalAccessToken => "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS",
            LogType::EmailEvents => "EMAIL_EVENT_LOGS",
        }
    }

    /// The log type of a canonical name (the keys of KIND_BY_LOG_TYPE), exactly.
    pub fn from_name(name: &str) -> Option<LogType> {
        LogType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// ECS event.dataset: `aws.workmail_<kind>` (KIND_BY_LOG_TYPE).
    pub fn dataset(self) -> &'static str {
        match self {
            LogType::AccessControl => "aws.workmail_access_control",
            LogType::Authentication => "aws.workmail_authentication",
            LogType::AvailabilityProvider => "aws.workmail_availability_provider",
            LogType::MailboxAccess => "aws.workmail_mailbox_access",
            LogType::PersonalAccessToken => "aws.workmail_personal_access_token",
            LogType::EmailEvents => "aws.workmail_email_events",
        }
    }
}

/// How a documented field is read (common.STR, BOOL, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    Ip,
    Time,
    StrList,
    OrgArn,
    Raw,
    Object,
    Email,
    EmailList,
}

macro_rules! fields {
    ($($name:ident = $key:literal,)*) => {
        /// Every documented field of every spec, by its record key.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum F { $($name,)* }

        pub const FIELD_COUNT: usize = [$(F::$name,)*].len();

        impl F {
            fn of(key: &str) -> Option<F> {
                match key {
                    $($key => Some(F::$name),)*
                    _ => None,
                }
            }
        }
    };
}

fields! {
    EventTimestamp = "event_timestamp",
    RequestId = "request_id",
    OrganizationArn = "organization_arn",
    UserId = "user_id",
    Protocol = "protocol",
    SourceIp = "source_ip",
    UserAgent = "user_agent",
    ImpersonatorId = "impersonator_id",
    Action = "action",
    OwnerId = "owner_id",
    ObjectType = "object_type",
    ItemId = "item_id",
    FolderPath = "folder_path",
    FolderId = "folder_id",
    AttachmentPath = "attachment_path",
    ActionAllowed = "action_allowed",
    Scope = "scope",
    RuleId = "rule_id",
    AccessGranted = "access_granted",
    User = "user",
    Method = "method",
    AuthFailedReason = "auth_failed_reason",
    PersonalAccessTokenId = "personal_access_token_id",
    AuthSuccessful = "auth_successful",
    Name = "name",
    ExpiresTime = "expires_time",
    Scopes = "scopes",
    Type = "type",
    Domain = "domain",
    FunctionArn = "function_arn",
    EwsEndpoint = "ews_endpoint",
    ErrorMessage = "error_message",
    AvailabilityEventSuccessful = "availability_event_successful",
    TraceId = "traceId",
    Event = "event",
    EventName = "eventName",
    Subject = "subject",
    MessageId = "messageId",
    SpamVerdict = "spamVerdict",
    DkimVerdict = "dkimVerdict",
    DmarcVerdict = "dmarcVerdict",
    DmarcPolicy = "dmarcPolicy",
    SpfVerdict = "spfVerdict",
    Folder = "folder",
    RuleName = "ruleName",
    RuleType = "ruleType",
    TargetFolder = "targetFolder",
    TargetRecipient = "targetRecipient",
    Policy = "policy",
    Reason = "reason",
    Sender = "sender",
    From = "from",
    Recipient = "recipient",
    JournalingAddress = "journalingAddress",
    Recipients = "recipients",
    Destination = "destination",
    MessageTimestamp = "messageTimestamp",
    RuleActions = "ruleActions",
    BouncedRecipient = "bouncedRecipient",
    EmailAddress = "emailAddress",
    Status = "status",
}

pub type Table = [Option<Kind>; FIELD_COUNT];

const fn table(fields: &[(F, Kind)]) -> Table {
    let mut t = [None; FIELD_COUNT];
    let mut i = 0;
    while i < fields.len() {
        t[fields[i].0 as usize] = Some(fields[i].1);
        i += 1;
    }
    t
}

const fn audit(own: &[(F, Kind)]) -> Table {
    // _AUDIT | _CLIENT, then the log's own fields.
    let mut t = table(&[
        (F::EventTimestamp, Kind::Time),
        (F::RequestId, Kind::Str),
        (F::OrganizationArn, Kind::OrgArn),
        (F::UserId, Kind::Str),
        (F::Protocol, Kind::Str),
        (F::SourceIp, Kind::Ip),
        (F::UserAgent, Kind::Str),
    ]);
    let mut i = 0;
    while i < own.len() {
        t[own[i].0 as usize] = Some(own[i].1);
        i += 1;
    }
    t
}

/// common.FIELD_SPECS, EMAIL_ENVELOPE_FIELDS, EMAIL_EVENT_FIELDS, BOUNCE_FIELDS.
pub mod spec {
    use super::{audit, table, Kind::*, Table, F::*};

    pub static MAILBOX_ACCESS: Table = audit(&[
        (ImpersonatorId, Str),
        (Action, Str),
        (OwnerId, Str),
        (ObjectType, Str),
        (ItemId, Str),
        (FolderPath, Str),
        (FolderId, Str),
        (AttachmentPath, Str),
        (ActionAllowed, Bool),
    ]);
    pub static ACCESS_CONTROL: Table = audit(&[
        (ImpersonatorId, Str),
        (Scope, Str),
        (RuleId, Str),
        (AccessGranted, Bool),
    ]);
    pub static AUTHENTICATION: Table = audit(&[
        (User, Str),
        (Method, Str),
        (AuthFailedReason, Str),
        (PersonalAccessTokenId, Str),
        (AuthSuccessful, Bool),
    ]);
    pub static PERSONAL_ACCESS_TOKEN: Table = audit(&[
        (User, Str),
        (Action, Str),
        (Name, Str),
        (ExpiresTime, Time),
        (Scopes, StrList),
    ]);
    pub static AVAILABILITY_PROVIDER: Table = audit(&[
        (Type, Str),
        (Domain, Str),
        (FunctionArn, Str),
        (EwsEndpoint, Str),
        (ErrorMessage, Str),
        (AvailabilityEventSuccessful, Bool),
    ]);
    pub static EMAIL_ENVELOPE: Table = table(&[(TraceId, Str), (Event, Object)]);
    pub static EMAIL_EVENT: Table = table(&[
        (EventName, Str),
        (Subject, Str),
        (MessageId, Str),
        (SpamVerdict, Str),
        (DkimVerdict, Str),
        (DmarcVerdict, Str),
        (DmarcPolicy, Str),
        (SpfVerdict, Str),
        (Folder, Str),
        (RuleName, Str),
        (RuleType, Str),
        (TargetFolder, Str),
        (TargetRecipient, Str),
        (Policy, Str),
        (Reason, Str),
        (Sender, Email),
        (From, Email),
        (Recipient, Email),
        (JournalingAddress, Email),
        (Recipients, EmailList),
        (Destination, EmailList),
        (MessageTimestamp, Time),
        (RuleActions, Raw),
        (BouncedRecipient, Object),
    ]);
    pub static BOUNCE: Table = table(&[(EmailAddress, Email), (Reason, Str), (Status, Str)]);
}

/// FIELD_SPECS[log_type]; None for email events (read with the email specs).
pub fn audit_spec(log_type: LogType) -> Option<&'static Table> {
    use LogType::*;
    match log_type {
        MailboxAccess => Some(&spec::MAILBOX_ACCESS),
        AccessControl => Some(&spec::ACCESS_CONTROL),
        Authentication => Some(&spec::AUTHENTICATION),
        PersonalAccessToken => Some(&spec::PERSONAL_ACCESS_TOKEN),
        AvailabilityProvider => Some(&spec::AVAILABILITY_PROVIDER),
        EmailEvents => None,
    }
}

/// A list of strings read_fields accepted: the record's own list, or `[value]`.
#[derive(Clone, Copy, Debug)]
pub enum StrList<'v> {
    One(&'v str),
    Many(&'v [Value<'v>]),
}

impl<'v> StrList<'v> {
    pub fn iter(self) -> impl Iterator<Item = &'v str> {
        let (one, many) = match self {
            StrList::One(s) => (Some(s), &[][..]),
            StrList::Many(items) => (None, items),
        };
        one.into_iter()
            .chain(many.iter().filter_map(|v| v.as_str()))
    }
}

/// A documented field's normalised value (what read_fields puts in `values`).
#[derive(Clone, Debug)]
pub enum FVal<'v> {
    /// STR (a number tolerated, as str(number)), EMAIL, IP, ORG_ARN.
    Str(Cow<'v, str>),
    Bool(bool),
    /// TIME as epoch ms; `raw` is the record's value (OCSF original_time is its str()).
    Time {
        ms: i64,
        raw: &'v Value<'v>,
    },
    List(StrList<'v>),
    /// RAW and OBJECT: the record's value.
    Raw(&'v Value<'v>),
}

/// `(region, account, organization id)` of an organization ARN.
pub type Org<'v> = (&'v str, &'v str, &'v str);

/// read_fields' `(values, extra)`: `values` per field, `extra` the unusable and
/// undocumented values verbatim, in record order.
pub struct Fields<'v> {
    /// Per field: 0 when absent, else its index in `values` plus one (a record has a
    /// dozen fields of the sixty: no array of sixty values to fill and drop).
    slots: [u8; FIELD_COUNT],
    values: Vec<FVal<'v>>,
    pub org: Option<Org<'v>>,
    pub extra: Vec<(&'v str, &'v Value<'v>)>,
}

impl<'v> Fields<'v> {
    #[inline]
    pub fn get(&self, field: F) -> Option<&FVal<'v>> {
        match self.slots[field as usize] {
            0 => None,
            at => self.values.get(usize::from(at) - 1),
        }
    }

    #[inline]
    pub fn has(&self, field: F) -> bool {
        self.slots[field as usize] != 0
    }

    /// A STR/EMAIL/IP/ORG_ARN field's text.
    pub fn str(&self, field: F) -> Option<&str> {
        match self.get(field)? {
            FVal::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn bool(&self, field: F) -> Option<bool> {
        match self.get(field)? {
            FVal::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn ms(&self, field: F) -> Option<i64> {
        match self.get(field)? {
            FVal::Time { ms, .. } => Some(*ms),
            _ => None,
        }
    }

    pub fn list(&self, field: F) -> Option<StrList<'v>> {
        match self.get(field)? {
            FVal::List(list) => Some(*list),
            _ => None,
        }
    }
}

/// `read_fields(obj, spec)`; Defer where the reference's coercion is Unicode-aware
/// and the text is not ASCII.
pub fn read_fields<'v>(obj: &'v Object<'v>, spec: &Table) -> Result<Fields<'v>, Defer> {
    let mut fields = Fields {
        slots: [0; FIELD_COUNT],
        values: Vec::with_capacity(obj.len().min(FIELD_COUNT)),
        org: None,
        extra: Vec::new(),
    };
    for (key, value) in obj.iter() {
        let Some(field) = F::of(key) else {
            if !skipped(value) {
                fields.extra.push((key, value));
            }
            continue;
        };
        let kind = spec[field as usize];
        if skipped(value) {
            continue;
        }
        match kind.and_then(|kind| read_value(kind, value, &mut fields.org).transpose()) {
            Some(read) => {
                // Keys are unique, so a field is read at most once.
                fields.values.push(read?);
                fields.slots[field as usize] = fields.values.len() as u8;
            }
            None => fields.extra.push((key, value)),
        }
    }
    Ok(fields)
}

/// Empty values (None, "", [], {}) carry nothing: read_fields skips them.
fn skipped(value: &Value<'_>) -> bool {
    matches!(value, Value::Null) || value.is_empty_container()
}

/// The normalised value of a non-empty `value` of `kind`, or None for `extra`.
fn read_value<'v>(
    kind: Kind,
    value: &'v Value<'v>,
    org: &mut Option<Org<'v>>,
) -> Result<Option<FVal<'v>>, Defer> {
    Ok(match (kind, value) {
        (Kind::Str, Value::Str(s)) => Some(FVal::Str(Cow::Borrowed(s))),
        (Kind::Str, Value::Int(n)) => Some(FVal::Str(Cow::Owned(n.to_string()))),
        (Kind::Str, Value::UInt(n)) => Some(FVal::Str(Cow::Owned(n.to_string()))),
        (Kind::Bool, _) => as_bool(value)?.map(FVal::Bool),
        (Kind::Ip, Value::Str(s)) => is_ip(s)?.then(|| FVal::Str(Cow::Borrowed(s))),
        (Kind::Time, Value::Int(n)) if (SECONDS_LIMIT..MAX_TIME_MS).contains(n) => {
            Some(FVal::Time { ms: *n, raw: value })
        }
        (Kind::Time, _) => parse_time_ms(value)?.map(|ms| FVal::Time { ms, raw: value }),
        (Kind::StrList, Value::Array(items)) => items
            .iter()
            .all(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            .then_some(FVal::List(StrList::Many(items))),
        (Kind::StrList, Value::Str(s)) => Some(FVal::List(StrList::One(s))),
        (Kind::Email, Value::Str(s)) => is_address(s).then(|| FVal::Str(Cow::Borrowed(s))),
        (Kind::EmailList, Value::Str(s)) => is_address(s).then_some(FVal::List(StrList::One(s))),
        (Kind::EmailList, Value::Array(items)) => items
            .iter()
            .all(|v| v.as_str().is_some_and(is_address))
            .then_some(FVal::List(StrList::Many(items))),
        (Kind::OrgArn, Value::Str(s)) => parse_org_arn(s).map(|parts| {
            *org = Some(parts);
            FVal::Str(Cow::Borrowed(s))
        }),
        (Kind::Raw, _) | (Kind::Object, Value::Object(_)) => Some(FVal::Raw(value)),
        _ => None,
    })
}

/// `_as_bool`: JSON booleans, "true"/"false" in any case and padding, 0 and 1.
fn as_bool(value: &Value<'_>) -> Result<Option<bool>, Defer> {
    Ok(match value {
        Value::Bool(b) => Some(*b),
        Value::Str(s) => {
            if !s.is_ascii() {
                return Err(Defer); // str.strip() and str.lower() are Unicode-aware
            }
            let low = time::strip_ascii(s);
            if low.eq_ignore_ascii_case("true") {
                Some(true)
            } else if low.eq_ignore_ascii_case("false") {
                Some(false)
            } else {
                None
            }
        }
        Value::Int(n @ (0 | 1)) => Some(*n == 1),
        _ => None,
    })
}

/// `ADDRESS_PATTERN.fullmatch`:
/// `[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+`.
pub fn is_address(value: &str) -> bool {
    let bytes = value.as_bytes();
    let Some(at) = bytes.iter().position(|&b| b == b'@') else {
        return false;
    };
    let (local, domain) = (&bytes[..at], &bytes[at + 1..]);
    let local_ok = !local.is_empty()
        && local
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
    let label = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
    // The first label has no dots, so the first dot ends it.
    let domain_ok = match domain.iter().position(|&b| b == b'.') {
        Some(dot) => {
            dot >= 1 && dot + 1 < domain.len() && domain.iter().all(|&b| label(b) || b == b'.')
        }
        None => false,
    };
    local_ok && domain_ok
}

/// `parse_org_arn`: `arn:aws:workmail:<region>:<account>:organization/<id>`.
pub fn parse_org_arn(value: &str) -> Option<Org<'_>> {
    // value.split(":", 5): ':' is ASCII, so byte positions are char boundaries.
    let mut parts = [""; 6];
    let mut start = 0;
    for (n, part) in parts.iter_mut().enumerate() {
        let rest = value.get(start..)?;
        if n == 5 {
            *part = rest;
            break;
        }
        let end = rest.bytes().position(|b| b == b':')?;
        *part = &rest[..end];
        start += end + 1;
    }
    let [arn, _partition, service, region, account, resource] = parts;
    if arn != "arn" || service != "workmail" {
        return None;
    }
    let (kind, org_id) = resource.split_once('/').unwrap_or((resource, ""));
    (kind == "organization" && !org_id.is_empty()).then_some((region, account, org_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_the_pattern() {
        for ok in [
            "alice@example.com",
            "a.b+c@x-y.co.uk",
            "x@a.b",
            "x@a..b",
            "x@a.b.",
        ] {
            assert!(is_address(ok), "{ok}");
        }
        for bad in [
            "Alice <alice@example.com>",
            "a@b",
            "@example.com",
            "a@.example.com",
            "a@example.",
            "a@@example.com",
            "jösé@example.com",
            "a,b@example.com",
            "a@ex_ample.com",
            "",
        ] {
            assert!(!is_address(bad), "{bad}");
        }
    }

    #[test]
    fn org_arns() {
        assert_eq!(
            parse_org_arn("arn:aws:workmail:us-east-1:111122223333:organization/m-0a1b"),
            Some(("us-east-1", "111122223333", "m-0a1b"))
        );
        assert_eq!(
            parse_org_arn("arn:aws:workmail:::organization/m-1:x/y"),
            Some(("", "", "m-1:x/y"))
        );
        assert_eq!(
            parse_org_arn("arn:aws:workmail:us-east-1:1:organization/"),
            None
        );
        assert_eq!(parse_org_arn("arn:aws:s3:::bucket"), None);
        assert_eq!(parse_org_arn("arn:aws:workmail:r:a:user/x"), None);
    }

    #[test]
    fn bools_as_python() {
        let b = |v: Value<'_>| as_bool(&v);
        assert_eq!(b(Value::Str(" True\x1c".into())), Ok(Some(true)));
        assert_eq!(b(Value::Str("FALSE".into())), Ok(Some(false)));
        assert_eq!(b(Value::Str("maybe".into())), Ok(None));
        assert_eq!(b(Value::Int(1)), Ok(Some(true)));
        assert_eq!(b(Value::Int(2)), Ok(None));
        assert_eq!(b(Value::Str("\u{a0}true".into())), Err(Defer));
    }
}
