"""Raw WorkMail records of an ordinary day in a small organisation, and of one attack per rule.

`benign_day()` is a working day of 24 users: logins over EWS, ActiveSync, Outlook and
IMAP with personal access tokens, the odd mistyped password, a phone with an old
password, access control allows and a few denials, mailbox reads (one client's first
sync), an archiving service reading mailboxes through impersonation, free/busy lookups
at a partner, a token created and used from one place, and mail in and out with a few
bounces and DMARC quarantines. Each attack is inserted into that day at 14:00. The
records use only documented fields and values (LOGS.md).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]

ORG_ARN = "arn:aws:workmail:us-east-1:111122223333:organization/m-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
DAY_START_MS = 1_773_130_000_000 - 1_773_130_000_000 % 86_400_000  # 2026-03-10 00:00 UTC
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
ATTACK_AT_MS = DAY_START_MS + 14 * HOUR_MS

OFFICE_IP = "203.0.113.10"
ATTACKER_IP = "185.220.101.4"
ATTACKER_IPS = ("185.220.101.4", "185.220.101.17", "45.134.26.3")
PARTNER_EWS = "https://mail.partner.example.net/EWS/Exchange.asmx"
ATTACKER_EWS = "https://ews.calendar-sync.example.com/EWS/Exchange.asmx"
ARCHIVER_ID = "5a1e0c2b-7f3d-4e8a-9b61-0c2d4e6f8a10"  # the archiving service's user id
OUTLOOK_UA = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
IPHONE_UA = "Apple-iPhone15C2/2104.231"
THUNDERBIRD_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.11.1"
SCRIPT_UA = "python-requests/2.31.0"

# What the organisation expects (detections/placeholders.yml in a real deployment).
PLACEHOLDERS: dict[str, list[str]] = {
    "workmail_expected_impersonators": [ARCHIVER_ID],
    "workmail_known_availability_endpoints": ["https://mail.partner.example.net/EWS/*"],
}


@dataclass(frozen=True)
class User:
    id: str
    name: str
    home_ip: str
    client: str  # the protocol of the user's desktop client


def _users() -> list[User]:
    rng = random.Random(7)
    clients = ["EWS"] * 14 + ["WindowsOutlook"] * 7 + ["IMAP"] * 3  # IMAP users have tokens
    names = [
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
        "frank",
        "grace",
        "heidi",
        "ivan",
        "judy",
        "mallory",
        "niaj",
        "olivia",
        "peggy",
        "rupert",
        "sybil",
        "trent",
        "ursula",
        "victor",
        "walter",
        "xena",
        "yusuf",
        "zoe",
        "quentin",
    ]
    return [
        User(
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            f"{name}@example.com",
            f"198.51.100.{10 + i}",
            clients[i],
        )
        for i, name in enumerate(names)
    ]


USERS = _users()
USER = {u.name.split("@")[0]: u for u in USERS}


class Clock:
    """Unique request ids and times; random, but the same on every run."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def request_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def working_hours(self) -> int:
        return DAY_START_MS + self.rng.randrange(7 * HOUR_MS, 19 * HOUR_MS)


def _audit(at: int, request_id: str, actor: User | None, **fields: Any) -> Record:
    record: Record = {"event_timestamp": at, "request_id": request_id, "organization_arn": ORG_ARN}
    if actor is not None:
        record["user_id"] = actor.id
    record.update(fields)
    return record


def login(
    clock: Clock,
    at: int,
    user: User,
    protocol: str,
    ip: str,
    *,
    ok: bool = True,
    token: str | None = None,
    user_agent: str = OUTLOOK_UA,
    known: bool = True,
    name: str | None = None,
) -> Record:
    fields: Record = {
        "user": name or user.name,
        "protocol": protocol,
        "source_ip": ip,
        "user_agent": user_agent,
        "method": "basic",
        "auth_successful": ok,
    }
    if not ok:
        fields["auth_failed_reason"] = "Invalid username or password" if known else "User not found"
    if token is not None:
        fields["personal_access_token_id"] = token
    return _audit(at, clock.request_id(), user if known else None, **fields)


def access_check(
    clock: Clock,
    at: int,
    user: User,
    protocol: str,
    ip: str,
    *,
    granted: bool = True,
    rule: str | None = None,
) -> Record:
    fields: Record = {
        "protocol": protocol,
        "source_ip": ip,
        "scope": "AccessControl",
        "access_granted": granted,
    }
    if rule is not None:
        fields["rule_id"] = rule
    return _audit(at, clock.request_id(), user, **fields)


def mailbox(
    clock: Clock,
    at: int,
    user: User,
    action: str,
    ip: str,
    *,
    protocol: str = "EWS",
    owner: User | None = None,
    impersonator: str | None = None,
    user_agent: str = OUTLOOK_UA,
) -> Record:
    rng = clock.rng
    fields: Record = {
        "protocol": protocol,
        "source_ip": ip,
        "user_agent": user_agent,
        "action": action,
        "owner_id": (owner or user).id,
        "object_type": "Message",
        "item_id": f"AAMkAD{rng.getrandbits(96):024x}",
        "folder_path": rng.choice(["Inbox", "Inbox/Projects", "Sent Items"]),
        "folder_id": f"AAMkAD{rng.getrandbits(64):016x}",
        "action_allowed": True,
    }
    if impersonator is not None:
        fields["impersonator_id"] = impersonator
    return _audit(at, clock.request_id(), user, **fields)


def availability(clock: Clock, at: int, user: User, endpoint: str | None) -> Record:
    if endpoint is None:
        return _audit(
            at,
            clock.request_id(),
            user,
            type="LAMBDA",
            domain="corp.example.org",
            function_arn="arn:aws:lambda:us-east-1:111122223333:function:free-busy",
            availability_event_successful=True,
        )
    domain = endpoint.split("/")[2].split(".", 1)[1]
    return _audit(
        at,
        clock.request_id(),
        user,
        type="EWS",
        domain=domain,
        ews_endpoint=endpoint,
        availability_event_successful=True,
    )


def token_created(clock: Clock, at: int, user: User, ip: str, name: str) -> Record:
    return _audit(
        at,
        clock.request_id(),
        user,
        user=user.name,
        protocol="webapp",
        source_ip=ip,
        user_agent=THUNDERBIRD_UA,
        action="create",
        name=name,
        expires_time=at + 90 * 24 * HOUR_MS,
        scopes=["IMAP", "SMTP"],
    )


def email(trace: str, name: str, **fields: Any) -> Record:
    return {"traceId": trace, "event": {"eventName": name, **fields}}


def _interactive_day(clock: Clock, user: User) -> Iterator[Record]:
    """Logins, their access checks and the mailbox activity of one person."""
    token = f"pat-{user.id[:8]}" if user.client == "IMAP" else None
    for _ in range(clock.rng.randrange(6, 11)):
        at = clock.working_hours()
        protocol, ip, agent = clock.rng.choice(
            [(user.client, OFFICE_IP, OUTLOOK_UA), ("ActiveSync", user.home_ip, IPHONE_UA)]
        )
        if protocol == "IMAP":
            ip, agent = OFFICE_IP, THUNDERBIRD_UA
        use_token = token if protocol == "IMAP" else None
        yield login(clock, at, user, protocol, ip, token=use_token, user_agent=agent)
        yield access_check(clock, at + 20, user, protocol, ip)
        for n in range(clock.rng.randrange(3, 8)):
            action = clock.rng.choice(["read", "read", "read_summary", "move", "delete"])
            yield mailbox(
                clock, at + 1000 * (n + 1), user, action, ip, protocol=protocol, user_agent=agent
            )


def _email_traffic(clock: Clock) -> Iterator[Record]:
    rng = clock.rng
    for _ in range(150):
        trace, user = clock.request_id(), rng.choice(USERS)
        yield email(
            trace,
            "ORGANIZATION_EMAIL_RECEIVED",
            recipients=[user.name],
            **{"from": "news@partner.example.net"},
            subject="Weekly update",
            spfVerdict="PASS",
            dkimVerdict="PASS",
            dmarcVerdict="PASS",
            spamVerdict="PASS",
        )
        yield email(trace, "MAILBOX_EMAIL_DELIVERED", recipient=user.name, folder="Inbox")
    for _ in range(60):
        trace, user = clock.request_id(), rng.choice(USERS)
        yield email(
            trace,
            "OUTGOING_EMAIL_SUBMITTED",
            recipients=["customer@example.org"],
            sender=user.name,
            **{"from": user.name},
            subject="Your quote",
        )
        yield email(trace, "OUTGOING_EMAIL_SENT", recipients=["customer@example.org"])
    for n in range(3):  # mistyped addresses
        yield email(
            clock.request_id(),
            "OUTGOING_EMAIL_BOUNCED",
            bouncedRecipient={
                "emailAddress": f"custmer{n}@example.org",
                "reason": "550 5.1.1 No such user",
                "status": "5.1.1",
            },
        )
    for policy in ("QUARANTINE", "REJECT"):  # the odd spoofed newsletter
        yield email(
            clock.request_id(),
            "DMARC_POLICY_APPLIED",
            recipients=[USERS[3].name],
            **{"from": "offers@shop.example.net"},
            policy=policy,
        )


def benign_day() -> list[Record]:
    clock = Clock(2026)
    records: list[Record] = []
    for user in USERS:
        records.extend(_interactive_day(clock, user))
    # A mistyped password now and then, right before the successful retry.
    for user in USERS[::5]:
        at = clock.working_hours()
        records.append(login(clock, at, user, user.client, OFFICE_IP, ok=False))
        records.append(login(clock, at + 9_000, user, user.client, OFFICE_IP))
    # grace's phone still has her old password: a failure every couple of hours.
    for hour in range(8, 18, 2):
        at = DAY_START_MS + hour * HOUR_MS + 17 * MINUTE_MS
        records.append(
            login(
                clock,
                at,
                USER["grace"],
                "ActiveSync",
                USER["grace"].home_ip,
                ok=False,
                user_agent=IPHONE_UA,
            )
        )
    # Internet noise: a few guesses at accounts that do not exist.
    for n, ip in enumerate(("192.0.2.50", "192.0.2.77", "192.0.2.91")):
        at = DAY_START_MS + (3 + 5 * n) * HOUR_MS
        records.append(
            login(
                clock, at, USERS[0], "SMTP", ip, ok=False, known=False, name=f"admin{n}@example.com"
            )
        )
    # heidi travels: her phone is denied by the office-networks rule now and then.
    for hour in (9, 12, 16):
        at = DAY_START_MS + hour * HOUR_MS
        records.append(
            access_check(
                clock,
                at,
                USER["heidi"],
                "ActiveSync",
                "192.0.2.200",
                granted=False,
                rule="deny-outside-offices",
            )
        )
    # ivan sets up a new laptop: the client syncs 150 messages in a few minutes.
    sync_at = DAY_START_MS + 10 * HOUR_MS
    for n in range(150):
        records.append(mailbox(clock, sync_at + n * 1_500, USER["ivan"], "read", OFFICE_IP))
    # The archiving service reads every mailbox through its impersonation role.
    for n in range(120):
        owner = USERS[n % len(USERS)]
        records.append(
            mailbox(
                clock,
                DAY_START_MS + 8 * HOUR_MS + n * 4 * MINUTE_MS,
                owner,
                "read",
                "54.240.197.10",
                impersonator=ARCHIVER_ID,
                user_agent=SCRIPT_UA,
            )
        )
    # Free/busy: the partner's EWS endpoint and the organisation's own Lambda provider.
    for _ in range(40):
        records.append(
            availability(clock, clock.working_hours(), clock.rng.choice(USERS), PARTNER_EWS)
        )
        records.append(availability(clock, clock.working_hours(), clock.rng.choice(USERS), None))
    # zoe creates a token for her new IMAP client and uses it from the same place.
    made_at = DAY_START_MS + 9 * HOUR_MS
    records.append(token_created(clock, made_at, USER["zoe"], OFFICE_IP, "Thunderbird"))
    for n in range(4):
        records.append(
            login(
                clock,
                made_at + (n + 1) * HOUR_MS,
                USER["zoe"],
                "IMAP",
                OFFICE_IP,
                token="pat-zoe-new",
                user_agent=THUNDERBIRD_UA,
            )
        )
    records.extend(_email_traffic(clock))
    return records


# One attack per alerting rule, each starting at ATTACK_AT_MS.


def password_spray(clock: Clock) -> list[Record]:
    """One IP tries one password against 25 accounts (five of them do not exist)."""
    out = []
    for n, user in enumerate(USERS[:20]):
        out.append(
            login(
                clock,
                ATTACK_AT_MS + n * 9_000,
                user,
                "IMAP",
                ATTACKER_IP,
                ok=False,
                user_agent=SCRIPT_UA,
            )
        )
    for n in range(5):
        out.append(
            login(
                clock,
                ATTACK_AT_MS + (20 + n) * 9_000,
                USERS[0],
                "SMTP",
                ATTACKER_IP,
                ok=False,
                known=False,
                name=f"hr{n}@example.com",
            )
        )
    return out


def brute_force(clock: Clock) -> list[Record]:
    """40 guesses at alice's password in four minutes, from three addresses."""
    return [
        login(
            clock,
            ATTACK_AT_MS + n * 6_000,
            USER["alice"],
            "IMAP",
            ATTACKER_IPS[n % 3],
            ok=False,
            user_agent=SCRIPT_UA,
        )
        for n in range(40)
    ]


def success_after_failures(clock: Clock) -> list[Record]:
    """Eight wrong passwords for bob, then the right one."""
    out = [
        login(
            clock,
            ATTACK_AT_MS + n * 20_000,
            USER["bob"],
            "EWS",
            ATTACKER_IP,
            ok=False,
            user_agent=SCRIPT_UA,
        )
        for n in range(8)
    ]
    out.append(
        login(clock, ATTACK_AT_MS + 200_000, USER["bob"], "EWS", ATTACKER_IP, user_agent=SCRIPT_UA)
    )
    return out


def legacy_protocol(clock: Clock) -> list[Record]:
    """carol's stolen password, used over IMAP by a mail-harvesting tool."""
    return [
        login(clock, ATTACK_AT_MS, USER["carol"], "IMAP", ATTACKER_IP, user_agent=SCRIPT_UA),
        access_check(clock, ATTACK_AT_MS + 20, USER["carol"], "IMAP", ATTACKER_IP),
    ]


def access_denial_burst(clock: Clock) -> list[Record]:
    """Stolen credentials tried from outside the allowed networks: 30 denials in 3 minutes."""
    return [
        access_check(
            clock,
            ATTACK_AT_MS + n * 6_000,
            USERS[n % 4],
            "EWS",
            ATTACKER_IP,
            granted=False,
            rule="deny-outside-offices",
        )
        for n in range(30)
    ]


def impersonation(clock: Clock) -> list[Record]:
    """A caller other than the archiver uses an impersonation role on the CEO's mailbox."""
    return [
        mailbox(
            clock,
            ATTACK_AT_MS + n * 5_000,
            USER["alice"],
            "read",
            ATTACKER_IP,
            impersonator=USER["mallory"].id,
            user_agent=SCRIPT_UA,
        )
        for n in range(5)
    ]


def mass_read(clock: Clock) -> list[Record]:
    """dave's mailbox downloaded by a script: 600 reads in six minutes."""
    return [
        mailbox(
            clock,
            ATTACK_AT_MS + n * 600,
            USER["dave"],
            ("read", "read_attachment", "read_summary")[n % 3],
            ATTACKER_IP,
            user_agent=SCRIPT_UA,
        )
        for n in range(600)
    ]


def unknown_availability_endpoint(clock: Clock) -> list[Record]:
    """An availability configuration now points at a host nobody set up."""
    return [
        availability(clock, ATTACK_AT_MS + n * MINUTE_MS, USERS[n], ATTACKER_EWS) for n in range(3)
    ]


def token_used_elsewhere(clock: Clock) -> list[Record]:
    """A token is created in erin's session at the office, then used from a VPS."""
    erin = USER["erin"]
    out = [token_created(clock, ATTACK_AT_MS - HOUR_MS, erin, OFFICE_IP, "sync")]
    for n in range(3):
        out.append(
            login(
                clock,
                ATTACK_AT_MS + n * 10 * MINUTE_MS,
                erin,
                "IMAP",
                ATTACKER_IP,
                token="pat-erin-sync",
                user_agent=SCRIPT_UA,
            )
        )
    return out


def dmarc_spike(clock: Clock) -> list[Record]:
    """A spoofing campaign as the organisation's own domain: 40 DMARC quarantines in 30 min."""
    return [
        email(
            clock.request_id(),
            "DMARC_POLICY_APPLIED",
            recipients=[USERS[n % 24].name],
            **{"from": "it-support@example.com"},
            policy="QUARANTINE" if n % 2 else "REJECT",
        )
        for n in range(40)
    ]


def outbound_bounces(clock: Clock) -> list[Record]:
    """frank's mailbox sends phishing to harvested addresses: 50 bounces."""
    out = []
    for n in range(50):
        trace = clock.request_id()
        out.append(
            email(
                trace,
                "OUTGOING_EMAIL_SUBMITTED",
                recipients=[f"x{n}@example.org"],
                sender=USER["frank"].name,
                **{"from": USER["frank"].name},
                subject="Invoice overdue",
            )
        )
        out.append(
            email(
                trace,
                "OUTGOING_EMAIL_BOUNCED",
                bouncedRecipient={
                    "emailAddress": f"x{n}@example.org",
                    "reason": "550 5.1.1 No such user",
                    "status": "5.1.1",
                },
            )
        )
    return out


@dataclass(frozen=True)
class Scenario:
    rule: str
    attack: Callable[[Clock], list[Record]]
    # A group-by value the alert must carry (None: the rule is not a correlation,
    # or counts organisation-wide).
    group_value: str | None = None
    notes: list[str] = field(default_factory=list)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("workmail_password_spray", password_spray, ATTACKER_IP),
    Scenario("workmail_brute_force_single_user", brute_force, USER["alice"].name),
    Scenario("workmail_success_after_failures", success_after_failures, USER["bob"].name),
    Scenario("workmail_legacy_protocol_basic_auth", legacy_protocol),
    Scenario("workmail_access_control_denial_burst", access_denial_burst, ATTACKER_IP),
    Scenario("workmail_impersonated_mailbox_access", impersonation),
    Scenario("workmail_mass_mailbox_read", mass_read, USER["dave"].id),
    Scenario("workmail_availability_unknown_endpoint", unknown_availability_endpoint),
    Scenario("workmail_pat_used_from_new_ip", token_used_elsewhere, USER["erin"].id),
    Scenario("workmail_dmarc_reject_quarantine_spike", dmarc_spike),
    Scenario("workmail_outbound_bounce_burst", outbound_bounces),
)


def attack_records(scenario: Scenario) -> list[Record]:
    return scenario.attack(Clock(99))
