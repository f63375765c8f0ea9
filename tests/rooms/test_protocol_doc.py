"""docs/protocol.md against the code: every documented message type exists as a model and
every model is documented, with the fields the model has, and every example in the
document is a valid message (read back to the same JSON)."""

from __future__ import annotations

import json
import re
from typing import Any, get_args

from pydantic import BaseModel

from rooms.control.events import EVENT, MODELS, type_of
from rooms.control.messages import MESSAGE, Message
from tests.support import ROOT

DOC = (ROOT / "docs" / "protocol.md").read_text()
Fields = dict[str, bool]  # field name -> optional


def section(title: str) -> str:
    start = DOC.index(f"\n## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end >= 0 else len(DOC)]


def table(text: str) -> dict[str, Fields]:
    """The message table of a section: type -> its fields (``name``? for optional ones)."""
    rows: dict[str, Fields] = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            fields = re.findall(r"`([^`]+)`(\??)", cells[1])
            rows[cells[0].strip("`")] = {name: bool(opt) for name, opt in fields}
    return rows


def fields_of(model: type[BaseModel], *skip: str) -> Fields:
    return {
        name: not info.is_required()
        for name, info in model.model_fields.items()
        if name not in ("type", *skip)
    }


def examples(text: str) -> list[Any]:
    """The JSON values of a section's ``json`` blocks: one per block, or one per line."""
    found: list[Any] = []
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        try:
            found.append(json.loads(block))
        except ValueError:
            found.extend(json.loads(line) for line in block.splitlines() if line.strip())
    return found


def test_every_server_message_is_documented_with_its_fields() -> None:
    documented = table(section("Server → client"))
    models = {type_of(m): m for m in MODELS if not type_of(m).startswith("_")}
    assert sorted(documented) == sorted(models)
    for kind, model in models.items():
        assert documented[kind] == fields_of(model), kind


def test_every_client_message_is_documented_with_its_fields() -> None:
    documented = table(section("Client → server"))
    union = get_args(get_args(Message)[0])
    models = {t: m for m in union for t in get_args(m.model_fields["type"].annotation)}
    assert sorted(documented) == sorted(models)
    for kind, model in models.items():
        assert documented[kind] == fields_of(model, "ref"), kind


def test_examples_are_valid_messages() -> None:
    sent = [
        e
        for title in ("Joining", "What you may do", "Server → client")
        for e in examples(section(title))
    ]
    assert {e["type"] for e in sent} >= {"welcome", "actions", "participant.updated", "error"}
    for example in sent:
        assert EVENT.validate_python(example).wire() == example, example["type"]
    received = examples(section("Client → server"))
    assert len(received) >= 5
    for example in received:
        message = MESSAGE.validate_python(example)
        assert message.model_dump(mode="json", exclude_unset=True) == example
