//! ECS 9.4.0 documents (forwarder/mapping/ecs.py). The reference adds top-level
//! objects as it meets their fields (`user` and `related` may appear early or late),
//! so the audit mapper first works out each part and the order the reference creates
//! them in, then writes them.

use std::borrow::Cow;

use super::common::{url_host, write_iso_ms, Fields, LogType, F};
use super::dict::{Dict, Item};
use super::email::EmailFacts;
use super::{Ctx, Defer};
use crate::json::Writer;

const VERSION: &str = "9.4.0";

/// `_OUTCOME`.
fn outcome(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "success",
        Some(false) => "failure",
        None => "unknown",
    }
}

/// `_VERDICT`.
fn verdict(ok: Option<bool>) -> Option<&'static str> {
    ok.map(|ok| if ok { "allowed" } else { "denied" })
}

/// `_MAILBOX_TYPE` (keys without letters str.lower() makes from non-ASCII).
fn mailbox_type(action: &str) -> Option<&'static str> {
    Some(match action {
        "read" | "read_hierarchy" | "read_summary" | "read_attachment" | "read_permissions" => {
            "access"
        }
        "update" | "update_permissions" | "update_read_state" | "move" | "move_to" | "copy"
        | "copy_to" => "change",
        "create" => "creation",
        "delete" => "deletion",
        _ => return None,
    })
}

/// The `event` object: envelope keys, then what the mappers add.
struct Event<'a> {
    category: &'static str,
    types: Vec<&'a str>,
    action: Option<Cow<'a, str>>,
    outcome: &'static str,
    reason: Option<&'a str>,
}

/// `_envelope` and the mapper's `event` fields; the cloud object is left open.
fn open_envelope(w: &mut Writer<'_>, ctx: &Ctx<'_>, event: &Event<'_>) {
    w.open().key("@timestamp");
    write_iso_ms(w.out, ctx.time_ms);
    w.mark_value();
    w.key("ecs").open().key("version").lit(VERSION).close();
    w.key("event").open().key("kind").lit("event");
    w.key("category")
        .open_list()
        .lit(event.category)
        .close_list();
    w.key("type").open_list();
    for t in &event.types {
        w.str(t);
    }
    w.close_list();
    w.key("id")
        .str(ctx.id)
        .key("dataset")
        .lit(ctx.log_type.dataset());
    w.key("module")
        .lit("aws")
        .key("provider")
        .lit("workmail.amazonaws.com");
    if let Some(action) = &event.action {
        w.key("action").str(action);
    }
    w.key("outcome").lit(event.outcome);
    if let Some(reason) = event.reason {
        w.key("reason").str(reason);
    }
    if let Some(raw) = ctx.raw {
        w.key("original").str(raw); // map_record adds it last
    }
    w.close();
    w.key("cloud").open().key("provider").lit("aws");
    w.key("service").open().key("name").lit("workmail").close();
}

/// The top-level objects an audit document may get after `cloud`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Top {
    Organization,
    Source,
    Related,
    UserAgent,
    User,
    Network,
    Rule,
    Email,
    Url,
    Destination,
    Error,
}

/// Everything `_audit` and the per-log mappers put in an audit document.
struct Audit<'a> {
    order: Vec<Top>,
    related_ip: Option<&'a str>,
    related_users: Vec<&'a str>,
    user_target: Option<&'a str>,
    network: Option<&'static str>,
    url: Option<(&'a str, Option<Cow<'a, str>>)>,
}

impl<'a> Audit<'a> {
    fn add(&mut self, part: Top) {
        if !self.order.contains(&part) {
            self.order.push(part);
        }
    }

    /// `_related_user`.
    fn related_user(&mut self, user: &'a str) {
        self.add(Top::Related);
        if !self.related_users.contains(&user) {
            self.related_users.push(user);
        }
    }
}

/// `map_audit` for the five audit logs.
pub fn map_audit(w: &mut Writer<'_>, ctx: &Ctx<'_>, f: &Fields<'_>) -> Result<(), Defer> {
    let (category, first_type, kept): (&'static str, &'static str, &[(&'static str, F)]) =
        match ctx.log_type {
            LogType::Authentication => (
                "authentication",
                "start",
                &[
                    ("method", F::Method),
                    ("personal_access_token_id", F::PersonalAccessTokenId),
                ],
            ),
            LogType::AccessControl => ("network", "access", &[("scope", F::Scope)]),
            LogType::MailboxAccess => (
                "api",
                "info",
                &[
                    ("owner_id", F::OwnerId),
                    ("object_type", F::ObjectType),
                    ("item_id", F::ItemId),
                    ("folder_path", F::FolderPath),
                    ("folder_id", F::FolderId),
                    ("attachment_path", F::AttachmentPath),
                ],
            ),
            LogType::AvailabilityProvider => (
                "api",
                "access",
                &[("type", F::Type), ("function_arn", F::FunctionArn)],
            ),
            LogType::PersonalAccessToken => ("iam", "user", &[]),
            LogType::EmailEvents => return Err(Defer), // never: email goes to map_email
        };
    let mut doc = Audit {
        order: Vec::with_capacity(8),
        related_ip: None,
        related_users: Vec::new(),
        user_target: None,
        network: None,
        url: None,
    };
    let mut vendor = Dict::default();
    // _audit
    if let Some(request_id) = f.get(F::RequestId) {
        vendor.set("request_id", Item::Field(request_id));
    }
    if f.org.is_some() {
        doc.add(Top::Organization);
    }
    if let Some(ip) = f.str(F::SourceIp) {
        doc.add(Top::Source);
        doc.add(Top::Related);
        doc.related_ip = Some(ip);
    }
    if f.has(F::UserAgent) {
        doc.add(Top::UserAgent);
    }
    let user_id = f.str(F::UserId);
    if let Some(user_id) = user_id {
        doc.add(Top::User);
        doc.related_user(user_id);
    }
    let user_name = f.str(F::User);
    if let Some(name) = user_name {
        doc.add(Top::User);
        doc.related_user(name);
    }
    if let Some(protocol) = f.get(F::Protocol) {
        vendor.set("protocol", Item::Field(protocol));
        let text = f.str(F::Protocol).unwrap_or_default();
        if !text.is_ascii() {
            return Err(Defer); // str.upper() makes ASCII from some letters (ı -> I)
        }
        doc.network = match text.to_ascii_uppercase().as_str() {
            "IMAP" => Some("imap"),
            "SMTP" => Some("smtp"),
            _ => None,
        };
        if doc.network.is_some() {
            doc.add(Top::Network);
        }
    }
    if let Some(impersonator) = f.get(F::ImpersonatorId) {
        // Which of user_id and impersonator_id is the real caller is unconfirmed,
        // so the impersonator stays a vendor field rather than user.effective.*.
        vendor.set("impersonator_id", Item::Field(impersonator));
        doc.related_user(f.str(F::ImpersonatorId).unwrap_or_default());
    }
    for &(key, field) in kept {
        if let Some(value) = f.get(field) {
            vendor.set(key, Item::Field(value));
        }
    }
    let mut event = Event {
        category,
        types: vec![first_type],
        action: None,
        outcome: "unknown",
        reason: None,
    };
    match ctx.log_type {
        LogType::Authentication => {
            event.action = Some(Cow::Borrowed("user-login"));
            event.outcome = outcome(f.bool(F::AuthSuccessful));
            event.reason = f.str(F::AuthFailedReason);
        }
        LogType::AccessControl => {
            let granted = f.bool(F::AccessGranted);
            event.types.extend(verdict(granted));
            event.action = Some(Cow::Borrowed("access-control-evaluation"));
            event.outcome = outcome(granted);
            if f.has(F::RuleId) || f.has(F::Scope) {
                doc.add(Top::Rule);
            }
        }
        LogType::MailboxAccess => {
            let allowed = f.bool(F::ActionAllowed);
            if let Some(action) = f.str(F::Action) {
                event.types[0] = mailbox_type(action)
                    .or_else(|| mailbox_type(&action.to_ascii_lowercase()))
                    .unwrap_or("info");
                event.action = Some(Cow::Borrowed(action));
            }
            event.types.extend(verdict(allowed));
            event.outcome = outcome(allowed);
            if let Some(owner) = f.str(F::OwnerId) {
                if Some(owner) != user_id {
                    doc.add(Top::User);
                    doc.user_target = Some(owner);
                    doc.related_user(owner);
                }
            }
            if f.has(F::AttachmentPath) {
                doc.add(Top::Email);
            }
        }
        LogType::AvailabilityProvider => {
            event.action = Some(Cow::Borrowed("availability-lookup"));
            event.outcome = outcome(f.bool(F::AvailabilityEventSuccessful));
            if let Some(endpoint) = f.str(F::EwsEndpoint) {
                doc.url = Some((endpoint, url_host(endpoint)?));
                doc.add(Top::Url);
            }
            if f.has(F::Domain) {
                doc.add(Top::Destination);
            }
            if f.has(F::ErrorMessage) {
                doc.add(Top::Error);
            }
        }
        LogType::PersonalAccessToken => {
            if let Some(action) = f.str(F::Action) {
                let shape = match action.to_ascii_lowercase().as_str() {
                    "create" => Some(("creation", "created")),
                    "delete" => Some(("deletion", "deleted")),
                    _ => None,
                };
                event.action = Some(match shape {
                    Some((kind, done)) => {
                        event.types.insert(0, kind);
                        Cow::Owned(format!("personal-access-token-{done}"))
                    }
                    None => Cow::Owned(format!("personal-access-token-{action}")),
                });
            }
            event.outcome = "unknown"; // the log has no outcome field
        }
        LogType::EmailEvents => {}
    }
    let mut pat = Dict::default();
    if ctx.log_type == LogType::PersonalAccessToken {
        for (key, field) in [("name", F::Name), ("scopes", F::Scopes)] {
            if let Some(value) = f.get(field) {
                pat.set(key, Item::Field(value));
            }
        }
        if let Some(ms) = f.ms(F::ExpiresTime) {
            // Normalised to one date format so the field maps to one ES type.
            pat.set("expires_time", Item::IsoMs(ms));
        }
        if !pat.is_empty() {
            vendor.set("pat", Item::Dict(pat));
        }
    }
    for &(key, value) in &f.extra {
        vendor.set_default(key, Item::Value(value));
    }

    open_envelope(w, ctx, &event);
    if let Some((region, account, _)) = f.org {
        if !region.is_empty() {
            w.key("region").str(region);
        }
        if !account.is_empty() {
            w.key("account").open().key("id").str(account).close();
        }
    }
    w.close();
    for part in &doc.order {
        write_part(w, f, &doc, user_id, user_name, *part);
    }
    if !vendor.is_empty() {
        w.key("aws").open().key("workmail");
        vendor.write(w);
        w.close();
    }
    w.close();
    Ok(())
}

fn write_part(
    w: &mut Writer<'_>,
    f: &Fields<'_>,
    doc: &Audit<'_>,
    user_id: Option<&str>,
    user_name: Option<&str>,
    part: Top,
) {
    let one = |w: &mut Writer<'_>, key: &'static str, inner: &'static str, value: &str| {
        w.key(key).open().key(inner).str(value).close();
    };
    match part {
        Top::Organization => {
            if let Some((_, _, org_id)) = f.org {
                one(w, "organization", "id", org_id);
            }
        }
        Top::Source => one(w, "source", "ip", doc.related_ip.unwrap_or_default()),
        Top::Related => {
            w.key("related").open();
            if let Some(ip) = doc.related_ip {
                w.key("ip").one_str(ip);
            }
            if !doc.related_users.is_empty() {
                w.key("user").open_list();
                for user in &doc.related_users {
                    w.str(user);
                }
                w.close_list();
            }
            w.close();
        }
        Top::UserAgent => one(
            w,
            "user_agent",
            "original",
            f.str(F::UserAgent).unwrap_or_default(),
        ),
        Top::User => {
            w.key("user").open();
            if let Some(id) = user_id {
                w.key("id").str(id);
            }
            if let Some(name) = user_name {
                w.key("name").str(name);
            }
            if let Some(target) = doc.user_target {
                one(w, "target", "id", target);
            }
            w.close();
        }
        Top::Network => {
            w.key("network")
                .open()
                .key("protocol")
                .lit(doc.network.unwrap_or("imap"));
            w.close();
        }
        Top::Rule => {
            w.key("rule").open();
            if let Some(rule_id) = f.str(F::RuleId) {
                // WorkMail rules are identified by name (GetAccessControlEffect).
                w.key("id").str(rule_id).key("name").str(rule_id);
            }
            if let Some(scope) = f.str(F::Scope) {
                w.key("ruleset").str(scope);
            }
            w.close();
        }
        Top::Email => {
            w.key("email").open().key("attachments").open_list().open();
            one(
                w,
                "file",
                "name",
                f.str(F::AttachmentPath).unwrap_or_default(),
            );
            w.close().close_list().close();
        }
        Top::Url => {
            if let Some((endpoint, host)) = &doc.url {
                w.key("url").open().key("original").str(endpoint);
                if let Some(host) = host {
                    // ECS: an IPv6 literal keeps its brackets in url.domain (RFC 2732).
                    if host.contains(':') {
                        w.key("domain").str(&format!("[{host}]"));
                    } else {
                        w.key("domain").str(host);
                    }
                }
                w.close();
            }
        }
        Top::Destination => one(
            w,
            "destination",
            "domain",
            f.str(F::Domain).unwrap_or_default(),
        ),
        Top::Error => one(
            w,
            "error",
            "message",
            f.str(F::ErrorMessage).unwrap_or_default(),
        ),
    }
}

/// EMAIL_SNAKE: the ECS name of a documented camelCase email field.
fn snake(key: &str) -> &str {
    match key {
        "messageId" => "message_id",
        "spamVerdict" => "spam_verdict",
        "dkimVerdict" => "dkim_verdict",
        "dmarcVerdict" => "dmarc_verdict",
        "dmarcPolicy" => "dmarc_policy",
        "spfVerdict" => "spf_verdict",
        "messageTimestamp" => "message_timestamp",
        "ruleName" => "rule_name",
        "ruleType" => "rule_type",
        "ruleActions" => "rule_actions",
        "targetFolder" => "target_folder",
        "targetRecipient" => "target_recipient",
        "journalingAddress" => "journaling_address",
        "bouncedRecipient" => "bounced_recipient",
        other => other,
    }
}

/// `_EMAIL_VENDOR`: documented email fields with no ECS home.
const EMAIL_VENDOR: [(&str, F); 8] = [
    ("spamVerdict", F::SpamVerdict),
    ("spfVerdict", F::SpfVerdict),
    ("dkimVerdict", F::DkimVerdict),
    ("dmarcVerdict", F::DmarcVerdict),
    ("folder", F::Folder),
    ("ruleActions", F::RuleActions),
    ("targetFolder", F::TargetFolder),
    ("targetRecipient", F::TargetRecipient),
];

/// `map_email`.
pub fn map_email(w: &mut Writer<'_>, ctx: &Ctx<'_>, facts: &EmailFacts<'_>) -> Result<(), Defer> {
    if !facts.name.is_ascii() {
        return Err(Defer); // event.action is name.lower(), Unicode-aware
    }
    let values = facts.values;
    let event = Event {
        category: "email",
        types: vec!["info"],
        action: Some(Cow::Owned(facts.name.to_ascii_lowercase())),
        outcome: if facts.failed { "failure" } else { "success" },
        reason: facts.reason,
    };
    open_envelope(w, ctx, &event);
    w.close();
    let direction = match facts.direction_id {
        1 => Some("inbound"),
        2 => Some("outbound"),
        _ => None,
    };
    let origination = values.ms(F::MessageTimestamp);
    let has_email = facts.trace_id.is_some()
        || [F::MessageId, F::From, F::Sender, F::Subject]
            .iter()
            .any(|&field| values.has(field))
        || !facts.recipients.is_empty()
        || direction.is_some()
        || origination.is_some();
    if has_email {
        w.key("email").open();
        if let Some(trace_id) = facts.trace_id {
            w.key("local_id").str(trace_id);
        }
        if let Some(id) = values.str(F::MessageId) {
            w.key("message_id").str(id);
        }
        if let Some(from) = values.str(F::From) {
            w.key("from").open().key("address").one_str(from).close();
        }
        if let Some(sender) = values.str(F::Sender) {
            w.key("sender").open().key("address").str(sender).close();
        }
        if !facts.recipients.is_empty() {
            w.key("to").open().key("address").open_list();
            for address in &facts.recipients {
                w.str(address);
            }
            w.close_list().close();
        }
        if let Some(subject) = values.str(F::Subject) {
            w.key("subject").str(subject);
        }
        if let Some(direction) = direction {
            w.key("direction").lit(direction);
        }
        if let Some(ms) = origination {
            w.key("origination_timestamp");
            write_iso_ms(w.out, ms);
            w.mark_value();
        }
        w.close();
    }
    let (rule_name, rule_type) = (values.str(F::RuleName), values.str(F::RuleType));
    if rule_name.is_some() || rule_type.is_some() {
        w.key("rule").open();
        if let Some(name) = rule_name {
            w.key("name").str(name);
        }
        if let Some(kind) = rule_type {
            w.key("category").str(kind);
        }
        w.close();
    }
    let mut vendor = Dict::of_values(facts.top_extra);
    for (key, field) in EMAIL_VENDOR {
        if let Some(value) = values.get(field) {
            vendor.set(snake(key), Item::Field(value));
        }
    }
    if let Some(policy) = facts.dmarc_policy {
        vendor.set("dmarc_policy", Item::Str(policy));
    }
    let mut bounce = facts.bounce_extra.clone();
    if let Some(status) = facts.bounce_status {
        bounce.set("status", Item::Str(status));
    }
    if !bounce.is_empty() {
        vendor.set("bounced_recipient", Item::Dict(bounce));
    }
    for (key, value) in facts.extra.iter() {
        let snake = snake(key);
        let name = if vendor.contains(snake) { *key } else { snake };
        vendor.set(name, value.clone());
    }
    if !vendor.is_empty() {
        w.key("aws").open().key("workmail");
        vendor.write(w);
        w.close();
    }
    w.close();
    Ok(())
}
