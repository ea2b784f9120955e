"""A plugin with one console section, ``demo``, for tests/engine/console/test_sections.py:
``engine: {plugins: [profiles.plugin, tests.engine.console.demo_plugin]}``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from engine.audit import AuditEvent, Outcome, participant
from engine.console import params
from engine.console.accounts import Principal
from engine.console.sections import ConsoleSection, SectionRoute, SectionTools, error, json_response
from engine.plugins import Plugin
from engine.store.db import utcnow

ITEMS = ["alpha", "beta", 2**60]  # a 64-bit number goes out as a string


def routes(tools: SectionTools) -> Sequence[SectionRoute]:
    async def items(request: Request, who: Principal) -> Response:
        limit = params.integer(request.query_params, "limit", low=1, high=10, default=10)
        start = params.integer(request.query_params, "before", low=0, high=len(ITEMS), default=0)
        assert limit is not None and start is not None
        event = AuditEvent(
            event_id=("110112", "Query", "DCM"),
            action="E",
            outcome=Outcome.SUCCESS,
            event_time=utcnow(),
            participants=[participant(who.username, requestor=True)],
            user_id=who.username,
        )
        refused = await tools.audited(request, event)
        if refused is not None:
            return refused
        end = start + limit
        return json_response({"items": ITEMS[start:end], "next_before": end if end < len(ITEMS) else None})

    async def add(request: Request, who: Principal) -> Response:
        body = json.loads(await request.body() or b"{}")
        if not isinstance(body.get("item"), str):
            return error(400, 'expected JSON {"item": "..."}')
        return json_response({"added": body["item"]}, 201)

    return [
        SectionRoute(
            "/items", items, "patients", "the demo items", query=(("limit", "how many"), ("before", "from"))
        ),
        SectionRoute("/items", add, "steward", "add a demo item", methods=("POST",), body="{item}"),
    ]


DEMO = ConsoleSection(
    id="demo", permission="patients", static=Path(__file__).with_name("demo_section"), routes=routes
)
PLUGIN = Plugin(name="demo", console=[DEMO])
