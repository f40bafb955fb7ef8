"""GeneratorWorker: events arrive in the GUI thread, errors become messages, stop is prompt."""

from __future__ import annotations

import threading
import time

import pytest

from workbench.errors import UserError
from workbench_ui.workers import GeneratorWorker, live_workers, stop_all


def count_to(n: int, delay: float = 0.0):
    """A generator without a `stop` parameter."""
    for i in range(n):
        if delay:
            time.sleep(delay)
        yield i


def test_events_arrive_in_order_in_the_gui_thread(qtbot):
    seen: list[tuple[int, bool]] = []
    worker = GeneratorWorker(count_to, 5)
    worker.event.connect(
        lambda e: seen.append((e, threading.current_thread() is threading.main_thread()))
    )
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert worker.join(2)
    assert seen == [(i, True) for i in range(5)]
    assert not worker.stopped and worker.error is None


def test_user_error_reaches_failed_as_its_own_text(qtbot):
    def bad():
        yield 1
        raise UserError("no images found in /nowhere")

    order: list[str] = []
    worker = GeneratorWorker(bad)
    worker.failed.connect(order.append)
    worker.finished.connect(lambda: order.append("finished"))
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    worker.join(2)
    assert order == ["no images found in /nowhere", "finished"]
    assert worker.error == "no images found in /nowhere"


def test_unexpected_error_is_a_short_message_with_the_traceback_logged(qtbot, caplog):
    def broken():
        yield 1
        raise ZeroDivisionError("division by zero")

    worker = GeneratorWorker(broken)
    with qtbot.waitSignal(worker.failed, timeout=5000) as blocker:
        worker.start()
    worker.join(2)
    assert blocker.args[0] == "Unexpected error: ZeroDivisionError: division by zero"
    assert "Traceback" in caplog.text


def test_stop_event_is_passed_to_generators_that_accept_it(qtbot):
    got: dict[str, object] = {}

    def waits(stop: threading.Event):
        got["stop"] = stop
        yield "started"
        while not stop.wait(0.01):  # a long step that only ends when asked to
            pass
        yield "saw stop"

    worker = GeneratorWorker(waits)
    with qtbot.waitSignal(worker.event, timeout=5000):
        worker.start()
    t0 = time.monotonic()
    worker.stop()
    assert worker.join(5)
    assert time.monotonic() - t0 < 5.0  # the step never ends unless asked
    assert isinstance(got["stop"], threading.Event) and worker.stopped


def test_stop_closes_a_generator_without_stop_parameter(qtbot):
    cleaned = threading.Event()

    def endless():
        try:
            while True:
                time.sleep(0.005)
                yield "tick"
        finally:
            cleaned.set()  # the generator's cleanup runs when the worker closes it

    worker = GeneratorWorker(endless)
    with qtbot.waitSignal(worker.event, timeout=5000):
        worker.start()
    with qtbot.waitSignal(worker.finished, timeout=2000):
        worker.stop()
    assert worker.join(2) and worker.stopped and cleaned.is_set()


def test_throttle_drops_progress_but_keeps_important_and_last_events(qtbot):
    seen: list[int] = []
    worker = GeneratorWorker(
        count_to, 2000, throttle_s=0.05, droppable=lambda e: e % 500 != 0
    )
    worker.event.connect(seen.append)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    worker.join(2)
    assert len(seen) < 100  # not 2000 queued signals
    assert {0, 500, 1000, 1500} <= set(seen)
    assert seen[-1] == 1999  # the final progress is never lost


def test_an_iterable_can_be_given_directly(qtbot):
    seen: list[str] = []
    worker = GeneratorWorker(iter(["a", "b"]))
    worker.event.connect(seen.append)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    worker.join(2)
    assert seen == ["a", "b"]


def test_stop_all_joins_every_live_worker(qtbot):
    workers = [GeneratorWorker(count_to, 10_000, 0.01) for _ in range(3)]
    for w in workers:
        w.start()
    assert len(live_workers()) == 3
    assert stop_all(timeout=3.0)
    assert live_workers() == []
    assert all(not w.is_running() for w in workers)


@pytest.mark.parametrize("timeout", [0.0, 0.05])
def test_join_before_start_returns_true(qtbot, timeout):
    assert GeneratorWorker(count_to, 1).join(timeout)
