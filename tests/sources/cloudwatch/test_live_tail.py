"""The Live Tail ledger: early deliveries never repeat, never replace the poller's."""

from __future__ import annotations

from forwarder.acks import Ack
from forwarder.events import Status
from forwarder.sources.cloudwatch.live_tail import TailLedger

KEY = ("/g", "s", 1000, '{"a": 1}')


def pending_ack() -> Ack:
    ack = Ack()
    ack.expect(1)
    ack.seal()
    return ack


def test_the_poller_waits_for_a_live_tail_delivery_in_flight() -> None:
    ledger, tail = TailLedger(), pending_ack()
    assert ledger.claim(KEY, 1000, tail)
    page = Ack()
    assert ledger.covered(KEY, 1000, page)
    page.seal()
    assert not page.done  # the page's checkpoint must not pass an undelivered event
    tail.resolve(Status.DELIVERED)
    assert page.done and page.status is Status.DELIVERED


def test_a_failed_live_tail_delivery_fails_the_page_so_the_poller_reads_it_again() -> None:
    ledger, tail = TailLedger(), pending_ack()
    ledger.claim(KEY, 1000, tail)
    page = Ack()
    ledger.covered(KEY, 1000, page)
    page.seal()
    tail.resolve(Status.ERRORED)
    assert page.errored
    # Read again after the rewind: now the poller sends it itself.
    assert not ledger.covered(KEY, 1000, Ack())


def test_what_the_poller_sent_live_tail_does_not_send() -> None:
    ledger = TailLedger()
    assert not ledger.covered(KEY, 1000, Ack())
    assert not ledger.claim(KEY, 1000, Ack())


def test_a_delivered_live_tail_event_is_covered_without_waiting() -> None:
    ledger, tail = TailLedger(), Ack()
    ledger.claim(KEY, 1000, tail)
    tail.seal()
    page = Ack()
    assert ledger.covered(KEY, 1000, page)
    page.seal()
    assert page.done


def test_old_keys_are_forgotten() -> None:
    ledger = TailLedger()
    ledger.claim(KEY, 1000, Ack())
    ledger.claim(("/g", "s", 5000, "x"), 5000, Ack())
    ledger.forget_before(2000)
    assert len(ledger) == 1
