//! OCSF 1.5.0 documents (forwarder/mapping/ocsf.py), written key by key in the order
//! the reference's dicts end up with: a key assigned again keeps its first position
//! (severity after `_outcome`), keys added later go last.

use super::common::{is_ip, url_host, FVal, Fields, LogType, F, PRODUCT_NAME};
use super::dict::{write_field, Dict, Item};
use super::email::EmailFacts;
use super::{Ctx, Defer};
use crate::json::{Value, Writer};

/// Stands in for an identity OCSF requires when the record has none.
const UNKNOWN: &str = "<unknown>";
const UNKNOWN_ADDRESS: &str = "unknown@unknown.invalid";

type Pair = (i64, &'static str);

/// An OCSF class with its category, and their four envelope fields as JSON text.
struct Class {
    uid: i64,
    name: &'static str,
    fields: &'static str,
}

macro_rules! class {
    ($uid:literal, $name:literal, $category_uid:literal, $category:literal) => {
        Class {
            uid: $uid,
            name: $name,
            fields: concat!(
                "\"class_uid\":",
                $uid,
                ",\"class_name\":\"",
                $name,
                "\",\"category_uid\":",
                $category_uid,
                ",\"category_name\":\"",
                $category,
                "\""
            ),
        }
    };
}

const API: Class = class!(6003, "API Activity", 6, "Application Activity");
const AUTHN: Class = class!(3002, "Authentication", 3, "Identity & Access Management");
const WEB: Class = class!(6001, "Web Resources Activity", 6, "Application Activity");
const ENTITY: Class = class!(3004, "Entity Management", 3, "Identity & Access Management");
const EMAIL_CLASS: Class = class!(4009, "Email Activity", 4, "Network Activity");

/// metadata.profiles as JSON text.
const CLOUD: &str = r#"["cloud"]"#;
const GUARDED: &str = r#"["cloud","security_control"]"#;
const GUARDED_ACTOR: &str = r#"["cloud","host","security_control"]"#;

/// `_OUTCOME`: status_id and status as JSON text, and (severity_id, severity).
fn outcome(ok: Option<bool>) -> (&'static str, Pair) {
    match ok {
        Some(true) => (r#""status_id":1,"status":"Success""#, (1, "Informational")),
        Some(false) => (r#""status_id":2,"status":"Failure""#, (3, "Medium")),
        None => (r#""status_id":0,"status":"Unknown""#, (1, "Informational")),
    }
}

/// `_CONTROL`: action_id, action, disposition_id and disposition as JSON text.
fn control(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => {
            r#""action_id":1,"action":"Allowed","disposition_id":1,"disposition":"Allowed""#
        }
        Some(false) => {
            r#""action_id":2,"action":"Denied","disposition_id":2,"disposition":"Blocked""#
        }
        None => r#""action_id":0,"action":"Unknown","disposition_id":0,"disposition":"Unknown""#,
    }
}

const WORKMAIL_SERVICE: &str = r#""service":{"name":"Amazon WorkMail"}"#;
const WORKMAIL_SOURCE: &str = r#""src_endpoint":{"svc_name":"Amazon WorkMail"}"#;

/// (activity_id, activity_name, caption of the id for type_name).
struct Activity<'s> {
    id: i64,
    name: &'s str,
    caption: &'static str,
}

fn crud_caption(id: i64) -> &'static str {
    match id {
        1 => "Create",
        2 => "Read",
        3 => "Update",
        4 => "Delete",
        99 => "Other",
        _ => "Unknown",
    }
}

/// `_crud_activity`: an unlisted action is activity 99, named after itself. The
/// tables' keys are ASCII without `k` or `i`-forms that str.lower() could produce
/// from non-ASCII letters, so ASCII lower-casing finds what str.lower() finds.
fn crud_activity<'s>(action: Option<&'s str>, known: fn(&str) -> Option<i64>) -> Activity<'s> {
    let Some(action) = action else {
        return Activity {
            id: 0,
            name: "Unknown",
            caption: "Unknown",
        };
    };
    let id = known(action)
        .or_else(|| known(&action.to_ascii_lowercase()))
        .unwrap_or(99);
    let caption = crud_caption(id);
    Activity {
        id,
        name: if id == 99 { action } else { caption },
        caption,
    }
}

/// `_MAILBOX_ACTIVITY`.
fn mailbox_activity(action: &str) -> Option<i64> {
    Some(match action {
        "read" | "read_hierarchy" | "read_summary" | "read_attachment" | "read_permissions" => 2,
        "update" | "update_permissions" | "update_read_state" | "move" | "move_to" | "copy"
        | "copy_to" => 3,
        "create" => 1,
        "delete" => 4,
        _ => return None,
    })
}

/// `_PAT_ACTIVITY`.
fn token_activity(action: &str) -> Option<i64> {
    match action {
        "create" => Some(1),
        "delete" => Some(4),
        _ => None,
    }
}

/// `_envelope` up to `metadata.profiles`; the caller adds to metadata and closes it.
fn open_envelope(
    w: &mut Writer<'_>,
    ctx: &Ctx<'_>,
    class: &Class,
    activity: &Activity<'_>,
    severity: Pair,
    profiles: &'static str,
) {
    w.open().fields(class.fields);
    w.key("activity_id").int(activity.id);
    w.key("activity_name").str(activity.name);
    w.key("type_uid").int(class.uid * 100 + activity.id);
    w.key("type_name")
        .lit_parts(&[class.name, ": ", activity.caption]);
    w.key("severity_id")
        .int(severity.0)
        .key("severity")
        .lit(severity.1);
    w.key("time").int(ctx.time_ms);
    // OCSF 1.5.0, the version the mappers follow.
    w.fields_then_key(
        r#""metadata":{"version":"1.5.0","product":{"name":"Amazon WorkMail","vendor_name":"AWS"},"log_name":"#,
    );
    w.lit(ctx.log_type.name()).key("uid").str(ctx.id);
    w.key("profiles").raw(profiles.as_bytes());
}

/// `str(record[...])` of a time field: the record's text, or the int in decimal.
fn write_original_time(w: &mut Writer<'_>, field: Option<&FVal<'_>>) {
    if let Some(FVal::Time { raw, .. }) = field {
        w.key("original_time");
        match raw {
            Value::Str(s) => w.str(s),
            Value::Int(n) => w.int_str(*n),
            Value::UInt(n) => w.int_str(*n),
            other => w.value(other), // never: TIME values are ints or strings
        };
    }
}

/// An `http_request` url of the availability log: (url_string, hostname).
struct Url<'a> {
    url: &'a str,
    host: Option<std::borrow::Cow<'a, str>>,
}

fn write_url(w: &mut Writer<'_>, url: &Url<'_>) {
    w.key("url").open().key("url_string").str(url.url);
    if let Some(host) = &url.host {
        w.key("hostname").str(host);
    }
    w.close();
}

/// The envelope and `_audit` (the fields every audit log shares), up to and
/// including `http_request`; true when http_request was written.
#[allow(clippy::too_many_arguments)] // the envelope's parts, as _envelope takes them
fn open_audit(
    w: &mut Writer<'_>,
    ctx: &Ctx<'_>,
    f: &Fields<'_>,
    class: &Class,
    activity: &Activity<'_>,
    severity: Pair,
    profiles: &'static str,
    url: Option<&Url<'_>>,
) -> bool {
    open_envelope(w, ctx, class, activity, severity, profiles);
    if let Some(request_id) = f.str(F::RequestId) {
        w.key("correlation_uid").str(request_id);
    }
    if let Some((_, _, org_id)) = f.org {
        w.key("tenant_uid").str(org_id);
    }
    write_original_time(w, f.get(F::EventTimestamp));
    w.close();
    w.key("cloud").open().key("provider").lit("AWS");
    if let Some((region, account, _)) = f.org {
        if !region.is_empty() {
            w.key("region").str(region);
        }
        if !account.is_empty() {
            w.key("account").open().key("uid").str(account).close();
        }
    }
    w.close();
    if let Some(ip) = f.str(F::SourceIp) {
        w.key("src_endpoint").open().key("ip").str(ip).close();
    }
    let user_agent = f.str(F::UserAgent);
    if let Some(user_agent) = user_agent {
        w.key("http_request")
            .open()
            .key("user_agent")
            .str(user_agent);
        if let Some(url) = url {
            write_url(w, url);
        }
        w.close();
    }
    user_agent.is_some()
}

/// `unmapped`: read_fields' extra, then what the mapper moved there, then the
/// raw record (`raw_data`, added by map_record) and the document's end.
fn close_audit(w: &mut Writer<'_>, ctx: &Ctx<'_>, f: &Fields<'_>, moved: &[(&'static str, &str)]) {
    if !f.extra.is_empty() || !moved.is_empty() {
        w.key("unmapped").open();
        for (key, value) in &f.extra {
            w.key_str(key).value(value);
        }
        for (key, value) in moved {
            w.key(key).str(value);
        }
        w.close();
    }
    close(w, ctx);
}

fn close(w: &mut Writer<'_>, ctx: &Ctx<'_>) {
    if let Some(raw) = ctx.raw {
        w.key("raw_data").str(raw);
    }
    w.close();
}

/// `map_audit` for the five audit logs.
pub fn map_audit(w: &mut Writer<'_>, ctx: &Ctx<'_>, f: &Fields<'_>) -> Result<(), Defer> {
    match ctx.log_type {
        LogType::Authentication => authentication(w, ctx, f),
        LogType::AccessControl => access_control(w, ctx, f),
        LogType::MailboxAccess => mailbox_access(w, ctx, f),
        LogType::AvailabilityProvider => return availability(w, ctx, f),
        LogType::PersonalAccessToken => personal_access_token(w, ctx, f),
        LogType::EmailEvents => return Err(Defer), // never: email goes to map_email
    }
    Ok(())
}

fn authentication(w: &mut Writer<'_>, ctx: &Ctx<'_>, f: &Fields<'_>) {
    let logon = Activity {
        id: 1,
        name: "Logon",
        caption: "Logon",
    };
    let (status, severity) = outcome(f.bool(F::AuthSuccessful));
    open_audit(w, ctx, f, &AUTHN, &logon, severity, CLOUD, None);
    let (uid, name) = (f.str(F::UserId), f.str(F::User));
    w.key("user").open();
    if let Some(uid) = uid {
        w.key("uid").str(uid);
    }
    if let Some(name) = name {
        w.key("name").str(name);
    }
    if let Some(credential) = f.str(F::PersonalAccessTokenId) {
        w.key("credential_uid").str(credential);
    }
    if uid.is_none() && name.is_none() {
        w.key("name")
            .lit(UNKNOWN)
            .key("type_id")
            .int(0)
            .key("type")
            .lit("Unknown");
    }
    w.close();
    w.fields(status);
    if let Some(reason) = f.str(F::AuthFailedReason) {
        w.key("status_detail").str(reason);
    }
    if let Some(method) = f.str(F::Method) {
        // "basic" has no letter str.lower() makes from non-ASCII, so ASCII is exact.
        if method.eq_ignore_ascii_case("basic") {
            w.key("auth_protocol_id").int(11);
            w.key("auth_protocol").lit("Basic Authentication");
        } else {
            w.key("auth_protocol_id")
                .int(99)
                .key("auth_protocol")
                .str(method);
        }
    }
    w.fields(WORKMAIL_SERVICE);
    if let Some(protocol) = f.str(F::Protocol) {
        w.key("dst_endpoint")
            .open()
            .key("svc_name")
            .str(protocol)
            .close();
    }
    w.fields(r#""is_remote":true,"logon_type_id":3,"logon_type":"Network""#);
    close_audit(w, ctx, f, &[]);
}

fn access_control(w: &mut Writer<'_>, ctx: &Ctx<'_>, f: &Fields<'_>) {
    let evaluation = Activity {
        id: 99,
        name: "Access Evaluation",
        caption: "Other",
    };
    let granted = f.bool(F::AccessGranted);
    let (status, severity) = outcome(granted);
    open_audit(w, ctx, f, &WEB, &evaluation, severity, GUARDED_ACTOR, None);
    w.fields(status);
    w.fields(control(granted));
    w.key("web_resources").open_list().open();
    w.key("type").lit("WorkMail Organization");
    match f.org {
        Some((_, _, org_id)) => {
            w.key("name").str(org_id);
            w.key("uid")
                .str(f.str(F::OrganizationArn).unwrap_or_default());
        }
        None => {
            w.key("name").lit(PRODUCT_NAME);
        }
    }
    w.close().close_list();
    let (rule_id, scope) = (f.str(F::RuleId), f.str(F::Scope));
    if rule_id.is_some() || scope.is_some() {
        w.key("policy").open();
        match rule_id {
            Some(rule) => {
                w.key("uid")
                    .str(rule)
                    .key("name")
                    .str(rule)
                    .key("is_applied")
                    .bool(true);
            }
            // No rule matched: the scope's default decided.
            None => {
                w.key("name").str(scope.unwrap_or_default());
            }
        }
        if let Some(scope) = scope {
            w.key("group").open().key("name").str(scope).close();
        }
        w.close();
    }
    if let Some(user_id) = f.str(F::UserId) {
        w.key("actor")
            .open()
            .key("user")
            .open()
            .key("uid")
            .str(user_id)
            .close()
            .close();
    }
    if let Some(protocol) = f.str(F::Protocol) {
        w.key("dst_endpoint")
            .open()
            .key("svc_name")
            .str(protocol)
            .close();
    }
    let moved: Vec<(&'static str, &str)> = f
        .str(F::ImpersonatorId)
        .map(|i| ("impersonator_id", i))
        .into_iter()
        .collect();
    close_audit(w, ctx, f, &moved);
}

/// `_resource(kind, uid, name, owner)`: None without a uid or a name.
#[derive(Clone, Copy)]
struct Resource<'a> {
    kind: Option<&'a str>,
    uid: Option<&'a str>,
    name: Option<&'a str>,
    owner: Option<&'a str>,
}

fn resource<'a>(
    kind: Option<&'a str>,
    uid: Option<&'a str>,
    name: Option<&'a str>,
    owner: Option<&'a str>,
) -> Option<Resource<'a>> {
    (uid.is_some() || name.is_some()).then_some(Resource {
        kind,
        uid,
        name,
        owner,
    })
}

fn write_resource(w: &mut Writer<'_>, r: &Resource<'_>) {
    w.open();
    if let Some(kind) = r.kind {
        w.key("type").str(kind);
    }
    if let Some(uid) = r.uid {
        w.key("uid").str(uid);
    }
    if let Some(name) = r.name {
        w.key("name").str(name);
    }
    if let Some(owner) = r.owner {
        w.key("owner").open().key("uid").str(owner).close();
    }
    w.close();
}

fn mailbox_access(w: &mut Writer<'_>, ctx: &Ctx<'_>, f: &Fields<'_>) {
    let action = f.str(F::Action);
    let activity = crud_activity(action, mailbox_activity);
    let allowed = f.bool(F::ActionAllowed);
    let (status, severity) = outcome(allowed);
    open_audit(w, ctx, f, &API, &activity, severity, GUARDED, None);
    w.fields(status);
    w.fields(control(allowed));
    w.key("api")
        .open()
        .key("operation")
        .str(action.unwrap_or("Unknown"));
    if let Some(protocol) = f.str(F::Protocol) {
        w.key("service").open().key("name").str(protocol).close();
    }
    if let Some(request_id) = f.str(F::RequestId) {
        w.key("request").open().key("uid").str(request_id).close();
    }
    w.close();
    // IncomingEmail/OutgoingEmail operations may carry no user: WorkMail acts itself.
    w.key("actor").open();
    match f.str(F::UserId) {
        Some(user_id) => {
            w.key("user").open().key("uid").str(user_id).close();
        }
        None => {
            w.key("app_name").lit(PRODUCT_NAME);
        }
    }
    w.close();
    if !f.has(F::SourceIp) {
        w.fields(WORKMAIL_SOURCE);
    }
    let owner = f.str(F::OwnerId);
    let kind = f.str(F::ObjectType);
    let (item_id, attachment) = (f.str(F::ItemId), f.str(F::AttachmentPath));
    // Compared with "folder" and "attachment" only: ASCII lower-casing is exact.
    let low = kind.map(str::to_ascii_lowercase).unwrap_or_default();
    let folder_kind = if low != "folder" {
        Some("Folder")
    } else {
        kind
    };
    let folder = resource(folder_kind, f.str(F::FolderId), f.str(F::FolderPath), owner);
    let message = resource(Some("Message"), item_id, None, owner);
    // The object acted upon first, then what contains it (or, for a folder, the item).
    let found: Vec<Option<Resource<'_>>> = if low == "folder" {
        vec![
            folder,
            message,
            resource(Some("Attachment"), None, attachment, owner),
        ]
    } else if attachment.is_some() || low == "attachment" {
        let kind = kind.or(Some("Attachment"));
        vec![resource(kind, None, attachment, owner), message, folder]
    } else {
        vec![resource(kind, item_id, None, owner), folder]
    };
    let resources: Vec<&Resource<'_>> = found.iter().flatten().collect();
    let mut moved: Vec<(&'static str, &str)> = Vec::new();
    if !resources.is_empty() {
        w.key("resources").open_list();
        for r in &resources {
            write_resource(w, r);
        }
        w.close_list();
    } else if let Some(owner) = owner {
        moved.push(("owner_id", owner));
    }
    if let (None, Some(kind)) = (found[0], kind) {
        moved.push(("object_type", kind)); // no resource carries the object type
    }
    if let Some(impersonator) = f.str(F::ImpersonatorId) {
        moved.push(("impersonator_id", impersonator));
    }
    close_audit(w, ctx, f, &moved);
}

fn availability(w: &mut Writer<'_>, ctx: &Ctx<'_>, f: &Fields<'_>) -> Result<(), Defer> {
    let read = Activity {
        id: 2,
        name: "Read",
        caption: "Read",
    };
    let endpoint = f.str(F::EwsEndpoint);
    let url = match endpoint {
        Some(url) => Some(Url {
            url,
            host: url_host(url)?,
        }),
        None => None,
    };
    let where_ = match url.as_ref().and_then(|u| u.host.as_deref()) {
        // https://[2001:db8::1]/EWS
        Some(host) => Some(if is_ip(host)? { "ip" } else { "hostname" }),
        None => None,
    };
    let (status, severity) = outcome(f.bool(F::AvailabilityEventSuccessful));
    let wrote_http = open_audit(w, ctx, f, &API, &read, severity, CLOUD, url.as_ref());
    w.fields(status);
    if let Some(message) = f.str(F::ErrorMessage) {
        w.key("status_detail").str(message);
    }
    w.key("api")
        .open()
        .key("operation")
        .lit("AvailabilityLookup");
    if let Some(provider) = f.str(F::Type) {
        w.key("service").open().key("name").str(provider).close();
    }
    if let Some(request_id) = f.str(F::RequestId) {
        w.key("request").open().key("uid").str(request_id).close();
    }
    w.close();
    // WorkMail asks on the user's behalf.
    w.fields(r#""actor":{"app_name":"Amazon WorkMail""#); // the object stays open
    if let Some(user_id) = f.str(F::UserId) {
        w.key("user").open().key("uid").str(user_id).close();
    }
    w.close();
    if !f.has(F::SourceIp) {
        w.fields(WORKMAIL_SOURCE);
    }
    let (domain, function) = (f.str(F::Domain), f.str(F::FunctionArn));
    if domain.is_some() || function.is_some() {
        w.key("resources").open_list();
        if let Some(domain) = domain {
            w.open()
                .key("type")
                .lit("Domain")
                .key("name")
                .str(domain)
                .close();
        }
        if let Some(function) = function {
            w.open()
                .key("type")
                .lit("Lambda Function")
                .key("uid")
                .str(function)
                .close();
        }
        w.close_list();
    }
    if let Some(url) = &url {
        if let (Some(host), Some(where_)) = (&url.host, where_) {
            w.key("dst_endpoint").open().key(where_).str(host);
            w.key("svc_name").lit("EWS").close();
        }
        if !wrote_http {
            w.key("http_request").open();
            write_url(w, url);
            w.close();
        }
    }
    close_audit(w, ctx, f, &[]);
    Ok(())
}

fn personal_access_token(w: &mut Writer<'_>, ctx: &Ctx<'_>, f: &Fields<'_>) {
    let activity = crud_activity(f.str(F::Action), token_activity);
    let (status, severity) = outcome(None); // the log has no outcome field
    open_audit(w, ctx, f, &ENTITY, &activity, severity, CLOUD, None);
    w.fields(status);
    w.key("entity")
        .open()
        .key("type")
        .lit("Personal Access Token");
    w.key("name").str(f.str(F::Name).unwrap_or(UNKNOWN));
    let (scopes, expires) = (f.get(F::Scopes), f.get(F::ExpiresTime));
    if scopes.is_some() || expires.is_some() {
        w.key("data").open();
        if let Some(scopes) = scopes {
            w.key("scopes");
            write_field(w, scopes);
        }
        if let Some(expires) = expires {
            w.key("expires_time"); // epoch ms
            write_field(w, expires);
        }
        w.close();
    }
    w.close();
    let (uid, name) = (f.str(F::UserId), f.str(F::User));
    if uid.is_some() || name.is_some() {
        w.key("actor").open().key("user").open();
        if let Some(uid) = uid {
            w.key("uid").str(uid);
        }
        if let Some(name) = name {
            w.key("name").str(name);
        }
        w.close().close();
    }
    let moved: Vec<(&'static str, &str)> = f
        .str(F::Protocol)
        .map(|p| ("protocol", p))
        .into_iter()
        .collect();
    close_audit(w, ctx, f, &moved);
}

/// `_EMAIL_ACTIVITY`.
fn email_caption(id: i64) -> &'static str {
    match id {
        1 => "Send",
        2 => "Receive",
        3 => "Scan",
        4 => "Trace",
        99 => "Other",
        _ => "Unknown",
    }
}

/// `_DMARC_CONTROL` per dmarc_policy.upper(): action_id, and the four control fields
/// as JSON text; None for any other policy.
fn dmarc_control(policy: &str) -> Result<Option<(i64, &'static str)>, Defer> {
    if !policy.is_ascii() {
        return Err(Defer); // str.upper() makes ASCII from some letters (ı -> I)
    }
    Ok(match policy.to_ascii_uppercase().as_str() {
        "NONE" => Some((
            1,
            r#""action_id":1,"action":"Allowed","disposition_id":16,"disposition":"No Action""#,
        )),
        "QUARANTINE" => Some((
            2,
            r#""action_id":2,"action":"Denied","disposition_id":3,"disposition":"Quarantined""#,
        )),
        "REJECT" => Some((
            2,
            r#""action_id":2,"action":"Denied","disposition_id":25,"disposition":"Rejected""#,
        )),
        _ => None,
    })
}

/// (OCSF key, record field) pairs copied when present (`_pick`).
const EMAIL: [(&str, F); 3] = [
    ("from", F::From),
    ("subject", F::Subject),
    ("message_uid", F::MessageId),
];
const EMAIL_AUTH: [(&str, F); 3] = [
    ("spf", F::SpfVerdict),
    ("dkim", F::DkimVerdict),
    ("dmarc", F::DmarcVerdict),
];
const RULE_DATA: [(&str, F); 3] = [
    ("ruleActions", F::RuleActions),
    ("targetFolder", F::TargetFolder),
    ("targetRecipient", F::TargetRecipient),
];
/// Email fields OCSF 1.5.0 has no attribute for (its email object has no sender).
const EMAIL_LEFTOVER: [(&str, F); 3] = [
    ("sender", F::Sender),
    ("folder", F::Folder),
    ("spamVerdict", F::SpamVerdict),
];

fn write_picked(w: &mut Writer<'_>, f: &Fields<'_>, pairs: &[(&'static str, F)]) {
    for &(key, field) in pairs {
        if let Some(value) = f.get(field) {
            w.key(key);
            write_field(w, value);
        }
    }
}

fn any_of(f: &Fields<'_>, pairs: &[(&'static str, F)]) -> bool {
    pairs.iter().any(|&(_, field)| f.has(field))
}

/// `map_email`.
pub fn map_email(w: &mut Writer<'_>, ctx: &Ctx<'_>, facts: &EmailFacts<'_>) -> Result<(), Defer> {
    let values = facts.values;
    let caption = email_caption(facts.activity_id);
    let activity = Activity {
        id: facts.activity_id,
        name: if facts.activity_id == 99 {
            facts.name
        } else {
            caption
        },
        caption,
    };
    let (status, mut severity) = outcome(Some(!facts.failed));
    let control = match facts.dmarc_policy {
        Some(policy) if facts.name == "DMARC_POLICY_APPLIED" => dmarc_control(policy)?,
        _ => None,
    };
    if let Some((2, _)) = control {
        severity = (3, "Medium");
    }
    let has_rule = values.has(F::RuleName) || values.has(F::RuleType) || values.has(F::RuleActions);
    let guarded = control.is_some() || has_rule;
    let profiles = if guarded { GUARDED } else { CLOUD };
    open_envelope(w, ctx, &EMAIL_CLASS, &activity, severity, profiles);
    w.key("event_code").str(facts.name);
    if let Some(trace_id) = facts.trace_id {
        w.key("correlation_uid").str(trace_id);
    }
    write_original_time(w, values.get(F::MessageTimestamp));
    w.close();
    w.key("cloud").open().key("provider").lit("AWS").close();
    if let Some(trace_id) = facts.trace_id {
        w.key("message_trace_uid").str(trace_id);
    }
    let direction = match facts.direction_id {
        1 => "Inbound",
        2 => "Outbound",
        _ => "Unknown",
    };
    w.key("direction_id")
        .int(facts.direction_id)
        .key("direction")
        .lit(direction);
    w.fields(status);
    if let Some(reason) = facts.reason {
        w.key("status_detail").str(reason);
    }
    if let Some(code) = facts.bounce_status {
        w.key("status_code").str(code);
    }
    w.key("email").open();
    write_picked(w, values, &EMAIL);
    if !facts.recipients.is_empty() {
        w.key("to").open_list();
        for address in &facts.recipients {
            w.str(address);
        }
        w.close_list();
    }
    if let Some(delivered) = facts.delivered_to {
        w.key("delivered_to_list").one_str(delivered);
    }
    if let Some(trace_id) = facts.trace_id {
        w.key("uid").str(trace_id);
    }
    if !values.has(F::From) && facts.recipients.is_empty() {
        w.key("to").open_list().lit(UNKNOWN_ADDRESS).close_list(); // from or to needed
    }
    w.close();
    if let Some((_, fields)) = control {
        w.fields(fields);
    }
    if any_of(values, &EMAIL_AUTH) || facts.dmarc_policy.is_some() {
        w.key("email_auth").open();
        write_picked(w, values, &EMAIL_AUTH);
        if let Some(policy) = facts.dmarc_policy {
            w.key("dmarc_policy").str(policy);
        }
        w.close();
    }
    let mut inner = facts.extra.clone();
    if has_rule {
        // _email_policy
        w.key("policy").open();
        w.key("name")
            .str(values.str(F::RuleName).unwrap_or(UNKNOWN));
        w.key("is_applied").bool(true);
        if let Some(rule_type) = values.str(F::RuleType) {
            w.key("group").open().key("name").str(rule_type).close();
        }
        if any_of(values, &RULE_DATA) {
            w.key("data").open();
            write_picked(w, values, &RULE_DATA);
            w.close();
        }
        w.close();
    } else {
        pick_into(&mut inner, values, &RULE_DATA);
    }
    pick_into(&mut inner, values, &EMAIL_LEFTOVER);
    if !facts.bounce_extra.is_empty() {
        inner.set("bouncedRecipient", Item::Dict(facts.bounce_extra.clone()));
    }
    let mut unmapped = Dict::of_values(facts.top_extra);
    if !inner.is_empty() {
        unmapped.set("event", Item::Dict(inner));
    }
    if !unmapped.is_empty() {
        w.key("unmapped");
        unmapped.write(w);
    }
    close(w, ctx);
    Ok(())
}

/// `inner.update(_pick(values, pairs))`.
fn pick_into<'a>(dict: &mut Dict<'a>, f: &'a Fields<'a>, pairs: &[(&'static str, F)]) {
    for &(key, field) in pairs {
        if let Some(value) = f.get(field) {
            dict.set(key, Item::Field(value));
        }
    }
}
