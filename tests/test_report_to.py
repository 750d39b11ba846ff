"""A thread no human started speaks to every ``report_to`` address: the origin and its
copies are asked together, and a failed delivery to one leaves the request standing at the
others (agent.reroute, agent.contact)."""

from __future__ import annotations

from agent.contact import Contact
from agent.reroute import NowhereLeft, StillOffered, next_reroute
from model.events import DeliveryFailed, Event, Question, UserMessage
from model.records import Origin

REPORT_TO = ["slack:C0ONCALL", "email:oncall@example.com", "sms:+15550001111"]


def _failed(address: str, channel: str, n: int) -> DeliveryFailed:
    return DeliveryFailed(
        outbox_id=f"out_{n}",
        message="question",
        channel=channel,
        address=address,
        reason="channel_not_found",
        request_id="rq_1",
    )


def test_the_origin_of_report_to_is_its_first_address_with_the_rest_as_copies() -> None:
    origin = Origin.report_to(REPORT_TO)
    assert (origin.target, origin.copies) == ("slack:C0ONCALL", REPORT_TO[1:])
    assert [p.target for p in origin.places()] == REPORT_TO
    # A stored origin from before copies existed loads unchanged.
    old = Origin.model_validate_json('{"channel": "rest", "address": "api", "route": {}}')
    assert old.places() == [old]


def test_contact_sends_to_every_place_of_the_origin() -> None:
    contact = Contact("th_1", Origin.report_to(REPORT_TO))
    contact.question("Which environment?")
    contact.send("final", "Done.")
    _, outbox = contact.take()
    assert [(o.kind, o.to.target) for o in outbox] == [
        *(("question", t) for t in REPORT_TO),
        *(("final", t) for t in REPORT_TO),
    ]


def test_a_failed_copy_leaves_the_question_standing_at_the_others() -> None:
    events: list[Event] = [
        UserMessage(channel="trigger", sender="alert", text="disk full"),
        Question(request_id="rq_1", text="Which host?"),
        _failed("C0ONCALL", "slack", 1),
    ]
    origin, copies = REPORT_TO[0], REPORT_TO[1:]
    action = next_reroute(events, origin, copies)
    assert isinstance(action, StillOffered)
    assert action.at == tuple(copies)
    # Without its copies, the same failure would have left nowhere to ask.
    assert isinstance(next_reroute(events, origin), NowhereLeft)
