"""Serving many visitors at once on two cores: a queue shared fairly, cheap new sessions, bounded
direct calls and request bodies, and a heap the garbage collector does not walk.

* :class:`FairQueue` — Gradio's queue is first come, first served: one visitor who sends 90
  events (a script, a stuck slider) puts every other visitor behind all 90. Here a visitor may
  have at most :data:`PER_VISITOR` events waiting (beyond that the event is refused with a message
  saying so; a page load sends 10, a dragged slider keeps only its newest), and events wait in
  rounds: everyone's first waiting event is served before anyone's second, and so on, in order of
  arrival within a round. A visitor alone sees no difference; a flood delays only its sender.
* :func:`light_sessions` — Gradio builds every component's configuration (about 300 here) when a
  session starts, for its "deep link" feature, which this app does not use, on the server's event
  loop: about 20 ms per new visitor during which no other request moves. Sessions here build a
  component's configuration when it is first needed, and a visitor's first event costs what the
  next one does.
* :func:`bounded` — the page's server functions (the latent map's points, thumbnails and decodes,
  the τ view, the code editor) reach Python without the queue; at most
  :data:`SERVER_FUNCTIONS_AT_ONCE` of them run at once.
* :class:`BodyLimits` — every request's body is capped before it is read (a 150 MB JSON body sent
  to the queue used to be parsed whole, raising the server's memory by 400 MB).
* :func:`freeze_heap` — full garbage collections no longer walk the built app (a third of a second
  each, every few seconds under load).
"""

from __future__ import annotations

import functools
import gc
import os
import threading
from collections import Counter
from copy import copy

import gradio as gr
from gradio import queueing, state_holder
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

BODY_BYTES = 8 << 20  # a request's body (every request but a file upload): a drawing is at most 2 MB
QUEUE_SIZE = 100  # events waiting at once, all visitors together
PER_VISITOR = 24  # events waiting at once from one visitor (one browser tab, one API session)
SERVER_FUNCTIONS_AT_ONCE = 4  # calls of the page's server functions (map, τ view, code editor) running at once
SERVER_FUNCTION_WAIT = 5.0  # seconds such a call waits for its turn before it is told the server is busy
CACHE_CLEANING = (1800, 3600)  # every 30 minutes, Gradio's files older than an hour are deleted


def freeze_heap() -> None:
    """Take what the app has built so far out of the garbage collector's sight, once it is built.

    The built app holds about 580,000 Python objects (Gradio's blocks, the models, cached arrays'
    wrappers) for as long as the process lives. A full collection walks them all, holding every
    request up for about a third of a second, and under load the collector runs one every few
    seconds. After ``gc.freeze()`` a full collection only walks what came later. Called by the
    entry points (``app.py``, ``vaelab.explore``), not by ``build()``: a process that builds many
    apps (the tests) must still be able to free the old ones."""
    gc.collect()
    gc.freeze()


class FairQueue(queueing.Queue):
    """Gradio's queue with a cap per visitor and round-robin order among visitors (see above)."""

    per_visitor = PER_VISITOR

    def waiting(self, session_hash: str | None) -> int:
        """How many of this visitor's events are waiting (not yet running), over every queue."""
        return sum(e.session_hash == session_hash for q in self.event_queue_per_concurrency_id.values()
                   for e in q.queue)

    async def push(self, body, request, username):
        if body.session_hash is not None and self.waiting(body.session_hash) >= self.per_visitor:
            return (False, f"You have {self.per_visitor} requests waiting already: wait for them to finish, "
                           "then try again.", "queue_full")
        accepted, event_id, status = await super().push(body, request, username)
        if accepted:
            event = self.event_ids_to_events.get(event_id)
            queue = self.event_queue_per_concurrency_id.get(event.concurrency_id) if event else None
            if queue is not None and queue.queue and queue.queue[-1] is event:
                queue.queue.pop()
                queue.queue.insert(place_in_rounds([e.session_hash for e in queue.queue], event.session_hash),
                                   event)
        return accepted, event_id, status


def place_in_rounds(waiting: list, visitor) -> int:
    """Where an event of ``visitor`` joins a queue holding events of the visitors ``waiting``
    (in order): before the first event of a later round than its own. An event's round is how
    many events of the same visitor wait ahead of it."""
    ahead = Counter()
    own_round = waiting.count(visitor)
    for position, other in enumerate(waiting):
        if ahead[other] > own_round:
            return position
        ahead[other] += 1
    return len(waiting)


def share_fairly(demo: gr.Blocks) -> gr.Blocks:
    """Make ``demo``'s queue (set up by ``demo.queue(...)``) a :class:`FairQueue`. ``Blocks.queue``
    builds its ``Queue`` itself, with no way to choose the class; the subclass adds no state, so
    the built queue only changes class."""
    demo._queue.__class__ = FairQueue
    return demo


_server_slots = threading.BoundedSemaphore(SERVER_FUNCTIONS_AT_ONCE)


def bounded(fn):
    """``fn`` (a server function: one JSON argument, a dict back) run in one of the shared slots;
    a call that finds none free within :data:`SERVER_FUNCTION_WAIT` seconds is answered
    ``{"error": ...}`` (what the page's scripts show) instead of piling up threads."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if not _server_slots.acquire(timeout=SERVER_FUNCTION_WAIT):
            return {"error": "The server is busy with other visitors' requests: try again in a moment."}
        try:
            return fn(*args, **kwargs)
        finally:
            _server_slots.release()
    return call


class BodyLimits:
    """ASGI middleware: a file upload's body may be as large as the upload limit, every other
    request's body :data:`BODY_BYTES`; beyond that the request is answered 413 ("Content Too
    Large") as its bytes arrive, before it is parsed (Starlette's ``RequestBodyLimitMiddleware``)."""

    def __init__(self, app, upload_bytes: int, other_bytes: int = BODY_BYTES):
        self.upload = RequestBodyLimitMiddleware(app, upload_bytes)
        self.other = RequestBodyLimitMiddleware(app, other_bytes)

    async def __call__(self, scope, receive, send):
        is_upload = scope["type"] == "http" and scope.get("path", "").rstrip("/").endswith("/upload")
        await (self.upload if is_upload else self.other)(scope, receive, send)


def body_limits(upload_bytes: int) -> Middleware:
    """The :class:`BodyLimits` middleware, for ``demo.launch(app_kwargs={"middleware": [...]})``;
    an upload's body holds the file plus its multipart framing (1 MB is plenty)."""
    return Middleware(BodyLimits, upload_bytes=upload_bytes + (1 << 20))


class LightSessionState(state_holder.SessionState):
    """A session that builds a component's configuration when it is first needed, not every
    component's when the session starts (see the module's docstring)."""

    def __init__(self, blocks):
        self.blocks_config = copy(blocks.default_config)
        self._rendered = set(blocks.blocks)
        self.config_values = {}
        self.state_data = {}
        self._state_ttl = {}
        self.is_closed = False
        self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600  # as Gradio's

    @property
    def components(self):
        """Every component's configuration (what a deep link saves), built now where missing, in
        the blocks' order as Gradio's session gives them."""
        for key, block in self.blocks_config.blocks.items():
            if key in self._rendered and key not in self.config_values:
                self.config_values[key] = self.blocks_config.config_for_block(key, [], block)
        order = {key: n for n, key in enumerate(self.blocks_config.blocks)}
        for key in sorted(self.config_values, key=lambda k: order.get(k, len(order))):
            if self.config_values[key]:
                yield self.config_values[key]


def light_sessions() -> None:
    """New sessions (``StateHolder`` builds them by this module-level name) are light ones."""
    state_holder.SessionState = LightSessionState
