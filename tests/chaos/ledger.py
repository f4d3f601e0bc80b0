"""The chaos suite's ledger: every record in is delivered (once or more) or dead-lettered.

`Ledger.settle` compares what went in with what the sinks hold and what the
dead-letter output holds, and says how many were lost (must be 0) and how many came
twice (at-least-once allows it; the suite counts it). `report` prints one line per
scenario, which docs/reliability.md quotes.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.e2e.helpers import expected_ids, read_ndjson


@dataclass
class Settlement:
    scenario: str
    records_in: int
    delivered_unique: int
    duplicates: int
    dead_lettered: int
    lost: int

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


class Ledger:
    def __init__(self, scenario: str, records: list[dict[str, Any]]) -> None:
        self.scenario = scenario
        self.records = records
        self.expected = Counter(expected_ids(records))

    def settle(self, delivered: Iterable[str], dead_letters: int = 0,
               dead_lettered_ids: Iterable[str] = ()) -> Settlement:  # fmt: skip
        got = Counter(delivered)
        accounted = set(got) | set(dead_lettered_ids)
        lost = sum(1 for event_id in self.expected if event_id not in accounted)
        result = Settlement(
            scenario=self.scenario,
            records_in=sum(self.expected.values()),
            delivered_unique=len(set(got) & set(self.expected)),
            # Extra copies of the records this ledger tracks (other output is not counted).
            duplicates=sum(max(0, got[i] - n) for i, n in self.expected.items()),
            dead_lettered=dead_letters,
            lost=lost,
        )
        report(result)
        return result


def report(result: Settlement) -> None:
    """Print the settlement; append it to $WMF_CHAOS_REPORT when set (for the docs)."""
    print(f"CHAOS {result.line()}")
    target = os.environ.get("WMF_CHAOS_REPORT")
    if target:
        with Path(target).open("a") as handle:
            handle.write(result.line() + "\n")


def hec_ids(events: list[dict[str, Any]]) -> list[str]:
    """Event ids of what the HEC peer stored (the `event_id` indexed field)."""
    return [str(e["fields"]["event_id"]) for e in events]


def dead_letter_entries(path: Path) -> list[dict[str, Any]]:
    return [dict(entry) for entry in read_ndjson(path)]
