"""The MITRE ATT&CK entries the rules are tagged with, for the Kibana rules' `threat` blocks.

The Elasticsearch backends look tag ids up in ATT&CK data that pySigma downloads from
GitHub on first use and caches under ~/.cache. Exports must work offline and must not
touch a user's cache, so pySigma is pointed at a small STIX bundle of just these
entries, cached in a directory of our own. tests/detections checks that every ATT&CK
tag of every rule is listed here.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

TACTICS: dict[str, str] = {
    "TA0001": "initial-access",
    "TA0003": "persistence",
    "TA0004": "privilege-escalation",
    "TA0005": "defense-evasion",
    "TA0006": "credential-access",
    "TA0008": "lateral-movement",
    "TA0009": "collection",
    "TA0010": "exfiltration",
    "TA0042": "resource-development",
}

TECHNIQUES: dict[str, str] = {
    "T1078": "Valid Accounts",
    "T1078.004": "Cloud Accounts",
    "T1098": "Account Manipulation",
    "T1098.001": "Additional Cloud Credentials",
    "T1110": "Brute Force",
    "T1110.001": "Password Guessing",
    "T1110.003": "Password Spraying",
    "T1114": "Email Collection",
    "T1114.002": "Remote Email Collection",
    "T1534": "Internal Spearphishing",
    "T1550": "Use Alternate Authentication Material",
    "T1550.001": "Application Access Token",
    "T1566": "Phishing",
    "T1567": "Exfiltration Over Web Service",
    "T1586": "Compromise Accounts",
    "T1586.002": "Email Accounts",
}

_configured = False


def _ref(external_id: str) -> list[dict[str, str]]:
    return [{"source_name": "mitre-attack", "external_id": external_id}]


def stix_bundle() -> dict[str, object]:
    tactics = [
        {"type": "x-mitre-tactic", "x_mitre_shortname": name, "external_references": _ref(tid)}
        for tid, name in TACTICS.items()
    ]
    techniques = [
        {"type": "attack-pattern", "name": name, "external_references": _ref(tid)}
        for tid, name in TECHNIQUES.items()
    ]
    return {"type": "bundle", "objects": tactics + techniques}


def use_bundled_attack_data() -> None:
    """Point pySigma at the bundle (once per process), in a cache directory of our own."""
    global _configured
    if _configured:
        return
    from sigma.data import mitre_attack

    directory = Path(tempfile.mkdtemp(prefix="wmf-attack-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    bundle = directory / "enterprise-attack.json"
    bundle.write_text(json.dumps(stix_bundle()))
    mitre_attack.set_cache_dir(str(directory / "cache"))
    mitre_attack.set_url(str(bundle))
    _configured = True
