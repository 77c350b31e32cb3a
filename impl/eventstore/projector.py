"""A projection service: folds the store's global log, in position order, into read models.

Read models: an account's balance (``None`` until opened) and a user directory entry
``[name, active]``. The projector subscribes from its checkpoint (the last position it applied)
and re-subscribes every ``poll_interval`` ticks, which repairs lost pushes and store restarts
(``poll_limit`` > 0 stops after that many polls: exhaustive search needs runs that end).
The views and the checkpoint are saved together in one write, so a crash never applies an event
twice or skips one.

Records ``projected`` {position, stream, view} for every event it applies (the view of that
event's stream right after it).
"""

from __future__ import annotations

from typing import Any

from treadle.impl.eventstore.messages import Deliver, Recorded, Subscribe

from treadle.node import Context, Node

STORE = "n1"


class Projector(Node):
    def __init__(self) -> None:
        self.position = 0
        self.views: dict[str, Any] = {}
        self.polls = 0

    def state(self) -> Any:
        return (self.position, tuple(sorted(self.views.items())), self.polls)

    def on_start(self, ctx: Context) -> None:
        position, views = ctx.storage.get("projection", (0, ()))
        self.position, self.views = position, dict(views)
        ctx.set_timer("poll", 1)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "poll":
            ctx.send(STORE, Subscribe(self.position + 1))
            self.polls += 1
            # poll_limit bounds the polling for exhaustive search, where nothing is lost and
            # the pushes after each sync keep the projection up to date (0 = poll forever)
            limit = int(ctx.config["poll_limit"])
            if limit <= 0 or self.polls < limit:
                ctx.set_timer("poll", int(ctx.config["poll_interval"]))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if not isinstance(msg, Deliver):
            return
        applied = False
        for e in msg.events:
            if e.position <= self.position:
                continue  # a duplicate or an overlap with an earlier push
            if e.position != self.position + 1:
                # a gap: a push was lost or overtaken; subscribe again from the checkpoint
                ctx.send(STORE, Subscribe(self.position + 1))
                break
            self.apply(e)
            self.position = e.position
            applied = True
            ctx.record(
                "projected",
                position=e.position,
                stream=e.stream,
                view=self.views.get(e.stream),
            )
        if applied:
            ctx.storage.put("projection", (self.position, tuple(sorted(self.views.items()))))

    def apply(self, e: Recorded) -> None:
        data = dict(e.data)
        view = self.views.get(e.stream)
        if e.type == "AccountOpened":
            self.views[e.stream] = 0
        elif e.type == "Deposited":
            self.views[e.stream] = (view or 0) + data["amount"]
        elif e.type == "Withdrawn":
            self.views[e.stream] = (view or 0) - data["amount"]
        elif e.type == "UserCreated":
            self.views[e.stream] = (data["name"], True)
        elif e.type == "UserUpdated" and view is not None:
            self.views[e.stream] = (data["name"], view[1])
        elif e.type == "UserDeactivated" and view is not None:
            self.views[e.stream] = (view[0], False)
