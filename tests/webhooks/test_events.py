"""The event models, their documented schemas, and the retry schedule (pure code)."""

from __future__ import annotations

import json
import re

from server.webhooks.delivery import Policy, Tries
from server.webhooks.events import EVENT_TYPES, schemas, type_name
from tests.support import ROOT


def test_every_schema_is_documented_as_generated() -> None:
    doc = (ROOT / "docs" / "webhooks.md").read_text()
    found = dict(re.findall(r"### `([a-z_.]+)`\n\n```json\n(.*?)\n```", doc, re.S))
    assert set(found) == {type_name(m) for m in EVENT_TYPES}
    for name, schema in schemas().items():
        assert json.loads(found[name]) == schema, (
            f"regenerate {name}: python -m server.webhooks.events"
        )


def test_backoff_doubles_up_to_the_cap_then_gives_up_after_the_window() -> None:
    policy = Policy(base=5, cap=60, window=300)
    tries, now, delays = Tries(), 1000.0, []
    while True:
        after = policy.after_failure(tries, now, "HTTP 500")
        if after is None:
            break
        delays.append(after.next_at - now)
        tries, now = after, after.next_at
    assert delays[:5] == [5, 10, 20, 40, 60]
    assert now - 1000.0 == 300  # the last retry is at the end of the window, not after
    assert tries.attempts == len(delays) and tries.error == "HTTP 500"
