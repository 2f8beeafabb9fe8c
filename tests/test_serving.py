"""Serving many visitors: the queue's rounds and per-visitor cap, light sessions, bounded server
functions and request bodies (vaelab.app.serving), on small apps served on loopback."""

from __future__ import annotations

import json
import threading
import time

import gradio as gr
import pytest
from gradio import state_holder

from vaelab.app import serving
from vaelab.app.serving import FairQueue, LightSessionState, place_in_rounds

from .conftest import post

GRADIO_SESSION = LightSessionState.__mro__[1]  # Gradio's own SessionState


@pytest.mark.parametrize("waiting, visitor, position", [
    ([], "a", 0),
    (["a", "a", "a"], "b", 1),  # b's first event goes before a's second
    (["a", "b", "a", "b"], "c", 2),  # c's first goes after every first, before every second
    (["a", "a", "b"], "b", 3),  # b's second waits behind a's second (it came later)
    (["a", "b", "a", "a"], "b", 3),  # b's second goes before a's third
    (["a", "a", "a"], "a", 3),  # alone, a visitor's events keep their order
])
def test_an_event_joins_the_queue_in_its_visitors_round(waiting, visitor, position):
    assert place_in_rounds(waiting, visitor) == position


@pytest.fixture(scope="module")
def slow_app():
    """One slow event (60 ms, one at a time) in a queue shared fairly, served on loopback."""
    ran = []

    def work(who: str) -> str:
        ran.append(who)
        time.sleep(0.06)
        return who

    with gr.Blocks() as demo:
        who = gr.Textbox()
        out = gr.Textbox()
        who.submit(work, who, out, api_name="work", concurrency_limit=1)
    demo.queue(max_size=serving.QUEUE_SIZE)
    serving.share_fairly(demo)
    demo.launch(prevent_thread_lock=True, quiet=True)
    yield demo, ran
    demo.close()


def _join(url: str, session: str, data: list) -> tuple[int, str]:
    """Put one event in the queue, as the page does."""
    body = json.dumps({"data": data, "fn_index": 0, "session_hash": session, "event_data": None,
                       "trigger_id": None}).encode()
    return post(url, "/gradio_api/queue/join", body)


def test_a_flood_from_one_visitor_is_capped_and_does_not_delay_another(slow_app):
    demo, ran = slow_app
    assert type(demo._queue) is FairQueue
    url = demo.local_url
    answers = [_join(url, "flood", ["flood"]) for _ in range(serving.PER_VISITOR + 10)]
    accepted = [a for a in answers if a[0] == 200]
    refused = [a for a in answers if a[0] != 200]
    # at most PER_VISITOR waiting at once; the first may already be running, freeing one place
    assert serving.PER_VISITOR <= len(accepted) <= serving.PER_VISITOR + 2
    assert refused and all(code == 503 and "requests waiting already" in text for code, text in refused)
    # another visitor arriving now is served in the next round, not after the flood
    began = len(ran)
    assert _join(url, "other", ["other"])[0] == 200
    while len(ran) < len(accepted) + 1:  # let the flood drain (and before the next test)
        time.sleep(0.05)
    order = ran[began:]
    # first come, first served, it would have run after every flood event still waiting; in
    # rounds it runs next (after the one running, or one more that started as it came)
    behind = order.index("other")
    ahead_of = len(order) - behind - 1  # flood events that ran after it
    print(f"the other visitor's event ran after {behind} and before {ahead_of} of the flood's events "
          f"still waiting when it came")
    assert ahead_of >= 10 and behind <= 3, order


def test_a_light_session_gives_a_deep_link_the_same_components(slow_app):
    import app  # the whole app: every kind of component this project lays out

    for blocks in (slow_app[0], app.demo):
        gradio_way = GRADIO_SESSION(blocks)
        light = LightSessionState(blocks)
        assert light.config_values == {}  # nothing built when the session starts
        assert list(light.components) == list(gradio_way.components)
        # fresh sessions where an event writes a value before a deep link is asked for: the same
        # components in the same order
        gradio_way, light = GRADIO_SESSION(blocks), LightSessionState(blocks)
        key = [k for k, c in gradio_way.config_values.items() if "props" in c][-1]  # written first here
        for session in (gradio_way, light):
            session._update_value_in_config(key, "a value an event wrote")
        assert list(light.components) == list(gradio_way.components)
    assert state_holder.SessionState is LightSessionState  # what new sessions are, once the app is built


def test_a_visitors_first_event_costs_what_the_next_one_does():
    """A session's start no longer builds every component's configuration (measured on the app)."""
    import app

    def start_ms(cls) -> float:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            cls(app.demo)
            times.append((time.perf_counter() - t) * 1000)
        return sorted(times)[2]

    gradio_way, light = start_ms(GRADIO_SESSION), start_ms(LightSessionState)
    print(f"a session's start: Gradio's {gradio_way:.1f} ms, light {light:.2f} ms")
    assert light < gradio_way / 10


def test_server_functions_run_in_bounded_slots_and_say_when_busy(monkeypatch):
    monkeypatch.setattr(serving, "SERVER_FUNCTION_WAIT", 0.2)
    monkeypatch.setattr(serving, "_server_slots", threading.BoundedSemaphore(2))
    running, most = [0], [0]
    lock = threading.Lock()
    release = threading.Event()

    @serving.bounded
    def slow(request: dict) -> dict:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(5)
        with lock:
            running[0] -= 1
        return {"ok": request}

    assert slow.__name__ == "slow"  # the page calls it by this name
    results = []
    threads = [threading.Thread(target=lambda k=k: results.append(slow(k))) for k in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the three without a slot have given up by now
    release.set()
    for t in threads:
        t.join()
    assert most[0] == 2
    assert sum("error" in r for r in results) == 3 and all("busy" in r["error"] for r in results if "error" in r)
    assert sum("ok" in r for r in results) == 2


def test_request_bodies_are_capped_before_they_are_read():
    from vaelab.app import launch_options

    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(lambda s: len(s), box, gr.Number(), api_name="size")
    demo.queue()
    options = launch_options()
    demo.launch(prevent_thread_lock=True, quiet=True, app_kwargs=options["app_kwargs"])
    try:
        url = demo.local_url
        code, text = _join(url, "big", ["x" * (serving.BODY_BYTES + 1024)])
        assert code == 413, (code, text[:200])
        code, _ = _join(url, "small", ["x" * (1 << 20)])  # a large drawing's size still passes
        assert code == 200
        # a file upload may be as large as the upload limit, not beyond: refused as it arrives
        too_big = bytes(options["max_file_size"] + (2 << 20))
        assert post(url, "/gradio_api/upload", too_big, "multipart/form-data; boundary=x")[0] == 413
    finally:
        demo.close()
