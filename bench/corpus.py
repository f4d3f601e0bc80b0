"""A deterministic, realistic corpus of WorkMail NDJSON records for the benchmarks.

Each record starts from a record of the same kind in `forwarder/samples` (so the key
sets and their order are the ones WorkMail sends) and gets fresh values: request and
trace ids, item ids, timestamps moving forward through a working day, users of a
small organisation, IPv4 and IPv6 addresses, user agents, folder paths and subjects
in several scripts (with emoji). Kinds are mixed by the proportions a mid-size
organisation shows (`MIX`). Equal `n` and `seed` give byte-identical output.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson

import forwarder
from forwarder.mapping import normalize_log_type
from forwarder.mapping.common import (
    ACCESS_CONTROL,
    AUTHENTICATION,
    AVAILABILITY_PROVIDER,
    EMAIL_EVENTS,
    MAILBOX_ACCESS,
    PERSONAL_ACCESS_TOKEN,
)

SAMPLES = Path(forwarder.__file__).resolve().parent / "samples"


# Share of each log type in the corpus.
MIX: dict[str, float] = {
    MAILBOX_ACCESS: 0.40,
    AUTHENTICATION: 0.20,
    ACCESS_CONTROL: 0.20,
    EMAIL_EVENTS: 0.12,
    AVAILABILITY_PROVIDER: 0.05,
    PERSONAL_ACCESS_TOKEN: 0.03,
}

_START_MS = 1_718_179_200_000  # 2024-06-12T08:00:00Z
_REGIONS = ("us-east-1", "eu-west-1", "us-west-2")
_PROTOCOLS = ("IMAP", "EWS", "ActiveSync", "WebMail", "WindowsOutlook", "SMTP", "AutoDiscover")
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.11.1",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/125.0.0.0 Safari/537.36 Edg/125.0.0.0",
    "Apple-iPhone15C2/2104.231",
    "Android-Mail/2024.05.26.636973497.Release",
    "Outlook-iOS/709.2226530.prod.iphone (4.2420.0)",
    "python-requests/2.31.0",
    "Microsoft-MacOutlook/16.85.24051214",
)
_FOLDERS = (
    "Inbox",
    "Inbox",
    "Inbox",
    "Sent Items",
    "Drafts",
    "Deleted Items",
    "Archive/2024",
    "Inbox/Projects",
    "Calendar",
    "Posteingang",
    "Posteingang/Überweisungen",
    "Gesendete Elemente",
    "Boîte de réception/Factures reçues",
    "受信トレイ",
    "受信トレイ/請求書",
    "收件箱/项目",
    "Входящие/Отчёты",
    "Bandeja de entrada/Año fiscal",
    "Inbox/✈️ Travel",
    "Inbox/🚀 Launch",
)
_SUBJECTS = (
    "Q2 planning",
    "Re: Your quote",
    "Password expires today - action required",
    "Rechnung Nr. 2024-0613 – Überweisung fällig",  # noqa: RUF001 (real-world punctuation)
    "Réunion de suivi : ordre du jour",
    "会議の議事録（6月12日）",  # noqa: RUF001 (real-world punctuation)
    "项目进度更新",
    "Отчёт за май",
    "🎉 Team offsite: save the date!",
    "FW: Invoice #88231 ✅ paid",
    "Weekly status report — week 24",
    "Your order has shipped 📦",
    "[EXTERNAL] Contract renewal for FY2025 – signature needed by Friday, please review the"  # noqa: RUF001 (real-world punctuation)
    " attached redlines and the updated pricing schedule",
)
_ATTACHMENTS = (
    "Q2 report.pdf",
    "Überweisung_Juni.pdf",
    "請求書_2024-06.xlsx",
    "IMG_4821.HEIC",
    "contract (signed).docx",
    "презентация.pptx",
)
_MAILBOX_ACTIONS = (
    ("read", 30),
    ("read_summary", 18),
    ("read_hierarchy", 10),
    ("update_read_state", 10),
    ("move", 8),
    ("delete", 6),
    ("read_attachment", 6),
    ("copy", 3),
    ("create", 3),
    ("submit_email_for_sending", 4),
    ("update_permissions", 1),
    ("read_permissions", 1),
)
_ACTION_NAMES = [name for name, _ in _MAILBOX_ACTIONS]
_ACTION_CUM = list(accumulate(weight for _, weight in _MAILBOX_ACTIONS))
_AUTH_FAILURES = (
    "Invalid username or password",
    "User not found",
    "Account disabled",
    "Access denied by access control rule",
    "Personal access token expired",
)
_AVAILABILITY_ERRORS = (
    "The remote server returned an error: (401) Unauthorized.",
    "The operation has timed out.",
    "Lambda function response did not match the expected schema.",
)
_TOKEN_NAMES = ("Outlook on laptop", "Thunderbird", "sync", "iPhone 📱", "Büro-PC", "自宅のMac")
_DOMAINS = ("example.com", "example.org", "partner.example.net", "beispiel.de", "example.co.jp")
_FIRST = ("alice", "bob", "carol", "dave", "erin", "frank", "juergen", "zoe", "hiro", "mei")
# Internationalised addresses (RFC 6531) are rare; OCSF's email_t rejects them, so they
# exercise the path that keeps a value in `unmapped`.
_IDN_ADDRESSES = ("jürgen@beispiel.de", "zoë@example.com", "ひろ@例え.jp")


@dataclass(frozen=True, slots=True)
class _User:
    uid: str
    email: str


class _Gen:
    """Values for one corpus; every draw comes from the one seeded `rng`."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.now_ms = _START_MS
        self.orgs = [
            f"arn:aws:workmail:{region}:{rng.randrange(10**11, 10**12)}:organization/"
            f"m-{rng.getrandbits(128):032x}"
            for region in _REGIONS
        ]
        self.users = [self._user(i) for i in range(400)]
        # Clients: a stable pool, about one address in six IPv6.
        self.ips = [self._ip() for _ in range(600)]

    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def _user(self, i: int) -> _User:
        rng = self.rng
        first = _FIRST[i % len(_FIRST)]
        email = f"{first}.{i}@{rng.choice(_DOMAINS[:2])}"
        if rng.random() < 0.1:  # directory-synced users carry a SID
            uid = f"S-1-1-12-{rng.randrange(10**9, 4 * 10**9)}-{rng.randrange(10**9, 4 * 10**9)}"
            uid += f"-{rng.randrange(10**9, 4 * 10**9)}-{rng.randrange(1000, 9999)}"
        else:
            uid = self.uuid()
        return _User(uid, email)

    def _ip(self) -> str:
        rng = self.rng
        if rng.random() < 0.16:
            groups = [f"{rng.getrandbits(16):x}" for _ in range(4)]
            prefix = rng.choice(("2001:db8", "2a02:810d", "2600:1f18"))
            return f"{prefix}:{rng.getrandbits(16):x}::" + ":".join(groups)
        first = rng.choice((198, 203, 192, 185, 54, 81, 91, 100, 172))
        return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"

    def item_id(self) -> str:
        body = self.rng.randbytes(48)
        return "AAMk" + base64.urlsafe_b64encode(body).decode().rstrip("=")

    def tick(self) -> int:
        self.now_ms += self.rng.randrange(0, 40)
        return self.now_ms

    def audit(self, rec: dict[str, Any]) -> _User:
        rng = self.rng
        user = rng.choice(self.users)
        rec["event_timestamp"] = self.tick()
        rec["request_id"] = self.uuid()
        rec["organization_arn"] = self.orgs[0] if rng.random() < 0.9 else rng.choice(self.orgs)
        if "user_id" in rec:
            rec["user_id"] = user.uid
        if "user" in rec:
            rec["user"] = user.email
        if "impersonator_id" in rec:
            rec["impersonator_id"] = rng.choice(self.users).uid
        if "source_ip" in rec:
            rec["source_ip"] = rng.choice(self.ips)
        if "user_agent" in rec:
            rec["user_agent"] = rng.choice(_USER_AGENTS)
        return user


def _mailbox(g: _Gen, rec: dict[str, Any]) -> None:
    rng = g.rng
    user = g.audit(rec)
    rec["protocol"] = rng.choice(_PROTOCOLS)
    if "action" in rec:
        rec["action"] = rng.choices(_ACTION_NAMES, cum_weights=_ACTION_CUM)[0]
    if "owner_id" in rec:
        rec["owner_id"] = user.uid if rng.random() < 0.85 else rng.choice(g.users).uid
    if "item_id" in rec:
        rec["item_id"] = g.item_id()
    if "folder_id" in rec:
        rec["folder_id"] = g.item_id()
    if "folder_path" in rec:
        rec["folder_path"] = rng.choice(_FOLDERS)
    if "attachment_path" in rec:
        rec["attachment_path"] = rng.choice(_ATTACHMENTS)
    if "action_allowed" in rec:
        rec["action_allowed"] = rng.random() < 0.97


def _authentication(g: _Gen, rec: dict[str, Any]) -> None:
    rng = g.rng
    g.audit(rec)
    ok = rng.random() < 0.88
    rec["auth_successful"] = ok
    rec.pop("auth_failed_reason", None)
    if not ok:
        rec["auth_failed_reason"] = rng.choice(_AUTH_FAILURES)
    if "personal_access_token_id" in rec:
        rec["personal_access_token_id"] = f"pat-{rng.getrandbits(64):016x}"


def _access_control(g: _Gen, rec: dict[str, Any]) -> None:
    rng = g.rng
    g.audit(rec)
    rec["access_granted"] = rng.random() < 0.9
    if "rule_id" in rec and rng.random() < 0.5:
        rec["rule_id"] = g.uuid()


def _availability(g: _Gen, rec: dict[str, Any]) -> None:
    rng = g.rng
    g.audit(rec)
    ok = rng.random() < 0.9
    rec["availability_event_successful"] = ok
    rec.pop("error_message", None)
    if not ok:
        rec["error_message"] = rng.choice(_AVAILABILITY_ERRORS)


def _personal_access_token(g: _Gen, rec: dict[str, Any]) -> None:
    rng = g.rng
    g.audit(rec)
    rec["name"] = rng.choice(_TOKEN_NAMES)
    rec["expires_time"] = rec["event_timestamp"] + rng.choice((30, 90, 365)) * 86_400_000
    rec["scopes"] = rng.sample(("IMAP", "SMTP", "EWS", "ActiveSync"), rng.randrange(1, 5))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _email(g: _Gen, rec: dict[str, Any]) -> None:
    rng = g.rng
    rec["traceId"] = g.uuid()
    event = rec["event"]
    users = [u.email for u in rng.sample(g.users, rng.choice((1, 1, 1, 2, 3)))]
    for key in ("recipients", "destination"):
        if key in event:
            event[key] = users
    for key in ("recipient", "sender"):
        if key in event:
            event[key] = users[0]
    if "from" in event:
        event["from"] = (
            rng.choice(_IDN_ADDRESSES)
            if rng.random() < 0.02
            else f"{rng.choice(_FIRST)}@{rng.choice(_DOMAINS)}"
        )
    if "subject" in event:
        event["subject"] = rng.choice(_SUBJECTS)
    if "messageId" in event:
        event["messageId"] = f"<{rng.getrandbits(96):024x}@mail.{rng.choice(_DOMAINS)}>"
    if "messageTimestamp" in event:
        event["messageTimestamp"] = _iso(g.tick() - rng.randrange(0, 5000))
    if "folder" in event:
        event["folder"] = rng.choice(_FOLDERS)
    if "targetFolder" in event:
        event["targetFolder"] = rng.choice(_FOLDERS)
    for action in event.get("ruleActions", ()):
        if "recipients" in action:
            action["recipients"] = users
    bounce = event.get("bouncedRecipient")
    if bounce is not None:
        bounce["emailAddress"] = users[0]


_VARY = {
    MAILBOX_ACCESS: _mailbox,
    AUTHENTICATION: _authentication,
    ACCESS_CONTROL: _access_control,
    EMAIL_EVENTS: _email,
    AVAILABILITY_PROVIDER: _availability,
    PERSONAL_ACCESS_TOKEN: _personal_access_token,
}


def templates() -> dict[str, list[dict[str, Any]]]:
    """The sample records by log type (the file name names the log type)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(SAMPLES.glob("*.jsonl")):
        log_type = normalize_log_type(path.stem)
        if log_type is None:
            raise ValueError(f"{path.name}: the file name names no WorkMail log type")
        lines = path.read_bytes().splitlines()
        found[log_type] = [orjson.loads(line) for line in lines if line.strip()]
    missing = set(MIX) - set(found)
    if missing:
        raise ValueError(f"no samples for {sorted(missing)} in {SAMPLES}")
    return found


def generate_with_kinds(n: int, seed: int = 1) -> list[tuple[str, bytes]]:
    """(log type, NDJSON line without its newline) for `n` records."""
    rng = random.Random(seed)
    gen = _Gen(rng)
    # Kept encoded: decoding a template is the cheapest deep copy.
    by_type = {kind: [orjson.dumps(r) for r in recs] for kind, recs in templates().items()}
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=n)
    loads, dumps = orjson.loads, orjson.dumps
    out: list[tuple[str, bytes]] = []
    for kind in kinds:
        record = loads(rng.choice(by_type[kind]))
        _VARY[kind](gen, record)
        out.append((kind, dumps(record)))
    return out


def generate(n: int, seed: int = 1) -> list[bytes]:
    """`n` NDJSON lines (no trailing newline), deterministic for `seed`."""
    return [line for _, line in generate_with_kinds(n, seed)]
