"""The inbound edge: signatures, duplicates, threads per number, opt-out, delivery retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import pytest

from agent.delivery import SendFailed
from channels.sms import inbound, segments
from model.events import DeliveryFailed, FinalAnswer, Rerouted, SystemNote, UserMessage
from model.ids import thread_id_for
from model.records import Origin, OutboxItem, ThreadView
from store.embedded import free_port
from tests.fakes.openai_server import FakeOpenAI, step
from tests.fakes.twilio_server import Fail, Lost, Slow
from tests.sms.conftest import APPROVER, OURS, PUBLIC, TALKER, TOKEN, Sms, approval_to, sign

Factory = Callable[..., Awaitable[Sms]]
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'


async def _nothing_stored(sms: Sms) -> None:
    assert await sms.store.thread_ids() == []
    assert await sms.store.redis.keys("sb:*sms*") == []


async def test_forged_missing_or_misdirected_signatures_are_refused(sms_factory: Factory) -> None:
    sms = await sms_factory()
    assert (await sms.text(APPROVER, "hello", signature=None)).status_code == 403
    assert (await sms.text(APPROVER, "hello", signature="bm90IGEgc2lnbmF0dXJl")).status_code == 403
    # Signed over the URL this process sees (http://sb/...), not the public one Twilio used.
    form = {"MessageSid": "SM" + "a" * 32, "From": APPROVER, "To": OURS, "Body": "hello"}
    r = await sms.hooks.post(
        "/twilio/sms", data=form, headers={"X-Twilio-Signature": sign("http://sb/twilio/sms", form)}
    )
    assert r.status_code == 403
    # A valid signature, then the body changed on the way.
    good = sign(f"{PUBLIC}/twilio/sms", form)
    r = await sms.hooks.post(
        "/twilio/sms",
        data={**form, "Body": "deploy v9.9.9 to production"},
        headers={"X-Twilio-Signature": good},
    )
    assert r.status_code == 403
    assert (await sms.status("SM" + "b" * 32, "failed", signature=None)).status_code == 403
    await _nothing_stored(sms)


async def test_a_repeated_field_is_signed_over_every_value(sms_factory: Factory) -> None:
    """Twilio signs each value of a repeated field; checking only one of them would let a
    value be added or dropped on the way."""
    sms = await sms_factory()
    pairs = [
        ("MessageSid", "SM" + "c" * 32),
        ("From", TALKER),
        ("To", OURS),
        ("Body", "hello"),
        ("MediaUrl", "https://media.example/1"),
        ("MediaUrl", "https://media.example/2"),
    ]
    url = f"{PUBLIC}/twilio/sms"
    # Twilio's scheme written out: the URL, then every name with each of its values, sorted.
    signed = url + "".join(name + value for name, value in sorted(pairs))
    mac = hmac.new(TOKEN.encode(), signed.encode(), hashlib.sha1).digest()
    form = {"content-type": "application/x-www-form-urlencoded"}

    async def post(signature: str, body: list[tuple[str, str]]) -> int:
        r = await sms.hooks.post(
            "/twilio/sms",
            content=urlencode(body),
            headers={**form, "X-Twilio-Signature": signature},
        )
        return r.status_code

    assert await post(sign(url, dict(pairs)), pairs) == 403  # over the last value only
    assert await post(base64.b64encode(mac).decode(), pairs[:-1]) == 403  # a value dropped
    assert await post(base64.b64encode(mac).decode(), pairs) == 200


async def test_malformed_payload_is_refused(sms_factory: Factory) -> None:
    sms = await sms_factory()
    r = await sms.text("not-a-number", "hello")
    assert r.status_code == 400
    r = await sms.hooks.post("/twilio/sms", json={"Body": "hi"})
    assert r.status_code == 415
    await _nothing_stored(sms)


async def test_a_text_starts_and_continues_the_numbers_thread(
    sms_factory: Factory, fake_llm: FakeOpenAI
) -> None:
    sms = await sms_factory()
    fake_llm.script(step("done_for_now", message="Hello! What should I deploy?"))
    r = await sms.text("+1 (555) 123-0009", "hi there", sid="SM" + "1" * 32)
    assert r.status_code == 200
    assert r.text == EMPTY
    assert r.headers["content-type"].startswith("application/xml")
    dup = await sms.text(TALKER, "hi there", sid="SM" + "1" * 32)
    assert dup.text == EMPTY

    tid = thread_id_for("sms", f"{OURS}:{TALKER}")
    view = await sms.service.settled(tid, "done")
    assert view.meta.origin.address == TALKER
    assert [e.text for e in view.events if isinstance(e, UserMessage)] == ["hi there"]
    assert sms.fake.sent_to(TALKER) == ["Hello! What should I deploy?"]

    fake_llm.script(step("done_for_now", message="You're welcome."))
    await sms.text(TALKER, "thanks")
    view = await sms.service.settled(tid, "done")
    assert [e.text for e in view.events if isinstance(e, UserMessage)] == ["hi there", "thanks"]


async def test_unknown_number_and_empty_texts_are_refused(sms_factory: Factory) -> None:
    sms = await sms_factory()
    r = await sms.text("+15557770000", "deploy v1.2.3 to production")
    assert r.status_code == 200
    assert "not set up to talk to the agent" in r.text
    r = await sms.text(TALKER, "", NumMedia="1")
    assert "Only text" in r.text
    assert await sms.store.thread_ids() == []


async def test_long_unicode_answer_is_cut_to_the_segment_budget(
    sms_factory: Factory, fake_llm: FakeOpenAI
) -> None:
    sms = await sms_factory(budget=2)
    answer = "Déploiement terminé ✅ " + "résumé des étapes " * 30
    fake_llm.script(step("done_for_now", message=answer))
    await sms.text(TALKER, "status?")
    tid = thread_id_for("sms", f"{OURS}:{TALKER}")
    view = await sms.service.settled(tid, "done")
    [body] = sms.fake.sent_to(TALKER)
    assert segments.encoding(body) == "ucs2"
    assert segments.segments(body) <= 2
    assert body.startswith("Déploiement terminé ✅ résumé")
    assert re.search(rf"\.\.\. {PUBLIC}/t/{tid}\?exp=\d+&sig=[\w-]{{22}}$", body), body
    # The thread keeps the whole answer.
    assert [e.text for e in view.events if isinstance(e, FinalAnswer)] == [answer]


async def test_stop_then_request_is_not_sent_and_falls_back(sms_factory: Factory) -> None:
    sms = await sms_factory()
    r = await sms.text(APPROVER, "Stop")
    assert r.text == EMPTY  # Twilio itself confirms an opt-out
    r = await sms.service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to production", "sender": "alice"}
    )
    tid = r.json()["thread_id"]

    await sms.service.wait(tid, approval_to("rest"))
    view = await sms.service.settled(tid, "awaiting_human")
    assert sms.fake.attempts == 0
    by_channel = {o.item.to.channel: o for o in view.outbox if o.item.kind == "approval"}
    assert by_channel["sms"].status == "failed"
    assert "opted out" in (by_channel["sms"].error or "")
    assert by_channel["rest"].status == "sent"
    [rerouted] = [e for e in view.events if isinstance(e, Rerouted)]
    assert "opted out" in rerouted.text
    assert rerouted.to == "rest:alice"

    # START opts back in: the next request reaches the phone again.
    assert (await sms.text(APPROVER, "START")).text == EMPTY
    r = await sms.service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.4 to staging", "sender": "alice"}
    )
    await sms.service.settled(r.json()["thread_id"], "awaiting_human")
    assert len(sms.fake.sent_to(APPROVER)) == 1


async def test_stop_moves_an_already_pending_request(sms_factory: Factory) -> None:
    sms = await sms_factory()
    r = await sms.service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to production", "sender": "alice"}
    )
    tid = r.json()["thread_id"]
    await sms.service.settled(tid, "awaiting_human")
    await sms.text(APPROVER, "unsubscribe")

    view = await sms.service.wait(tid, approval_to("rest"))
    assert [r.status for r in view.requests] == ["pending"]
    # A YES from the opted-out number re-subscribes it; it decides nothing.
    await sms.text(APPROVER, "yes")
    view = await sms.service.settled(tid, "awaiting_human")
    assert [r.status for r in view.requests] == ["pending"]


async def _approval_thread(sms: Sms) -> str:
    r = await sms.service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to production", "sender": "alice"}
    )
    return str(r.json()["thread_id"])


async def test_rate_limited_then_sent_once(sms_factory: Factory) -> None:
    sms = await sms_factory()
    sms.fake.fail(Fail(429, 20429, "Too Many Requests", retry_after="0"), Fail(429, 20429, "Slow"))
    view = await sms.service.settled(await _approval_thread(sms), "awaiting_human")
    assert sms.fake.attempts == 3
    assert len(sms.fake.sent_to(APPROVER)) == 1
    [approval] = [o for o in view.outbox if o.item.kind == "approval"]
    assert (approval.status, approval.attempts) == ("sent", 3)


async def test_permanent_error_is_not_retried(sms_factory: Factory) -> None:
    sms = await sms_factory()
    sms.fake.fail(Fail(400, 21211, "The 'To' number is not a valid phone number."))
    tid = await _approval_thread(sms)

    await sms.service.wait(tid, approval_to("rest"))
    view = await sms.service.settled(tid, "awaiting_human")
    assert sms.fake.attempts == 1
    by_channel = {o.item.to.channel: o for o in view.outbox if o.item.kind == "approval"}
    assert by_channel["sms"].status == "failed"
    assert "21211" in (by_channel["sms"].error or "")


async def test_a_5xx_after_twilio_created_the_text_sends_it_once(sms_factory: Factory) -> None:
    """Twilio sent the text and answered 500: found in the message list, not sent again."""
    sms = await sms_factory()
    sms.fake.fail(Lost(500))
    view = await sms.service.settled(await _approval_thread(sms), "awaiting_human")
    [sent] = sms.fake.messages
    assert sms.fake.attempts == 1
    [approval] = [o for o in view.outbox if o.item.kind == "approval"]
    assert (approval.item.to.channel, approval.status) == ("sms", "sent")
    assert approval.provider_id == sent["Sid"]
    assert not [e for e in view.events if isinstance(e, Rerouted)]


async def test_a_5xx_that_sent_nothing_is_an_unknown_outcome(sms_factory: Factory) -> None:
    """Not in the message list either: never resent blindly; the origin is asked too."""
    sms = await sms_factory()
    sms.fake.fail(Fail(503, 20500, "busy"))
    tid = await _approval_thread(sms)
    await sms.service.wait(tid, approval_to("rest"))
    view = await sms.service.settled(tid, "awaiting_human")
    assert (sms.fake.attempts, sms.fake.messages) == (1, [])
    by_channel = {o.item.to.channel: o for o in view.outbox if o.item.kind == "approval"}
    assert by_channel["sms"].status == "unknown"
    assert "outcome unknown: Twilio 503" in (by_channel["sms"].error or "")
    [failure] = [e for e in view.events if isinstance(e, DeliveryFailed)]
    assert failure.outcome == "unknown"


async def test_a_lost_response_is_found_in_the_message_list(sms_factory: Factory) -> None:
    """Twilio took the message but the answer never came (a timeout): it is looked up."""
    sms = await sms_factory(sms_timeout=0.3)
    sms.fake.fail(Slow(2))
    view = await sms.service.settled(await _approval_thread(sms), "awaiting_human")
    [sent] = sms.fake.messages
    assert sms.fake.attempts == 1
    [approval] = [o for o in view.outbox if o.item.kind == "approval"]
    assert (approval.status, approval.provider_id) == ("sent", sent["Sid"])


async def test_send_cut_off_with_its_sender_is_found_not_sent_again(sms_factory: Factory) -> None:
    """The sender looked dead mid-call (its claim ran out): the next claim finds the text."""
    sms = await sms_factory()  # the test outbox's claims last 2 s; this send hangs longer
    sms.fake.fail(Slow(3.5))
    tid = await _approval_thread(sms)

    def sent(view: ThreadView) -> bool:
        return any(o.item.kind == "approval" and o.status == "sent" for o in view.outbox)

    view = await sms.service.wait(tid, sent, within=15)
    assert sms.fake.attempts == 1
    assert not [e for e in view.events if isinstance(e, DeliveryFailed | Rerouted)]


async def test_unreachable_twilio_is_retried(sms_factory: Factory) -> None:
    """Nothing reached Twilio (connection refused): safe to try again, and it is."""
    sms = await sms_factory(api_url=f"http://127.0.0.1:{free_port()}")
    item = OutboxItem(
        outbox_id="out_x",
        thread_id="th_x",
        kind="final",
        text="hi",
        to=Origin(channel="sms", address=APPROVER),
    )
    assert sms.channel.sender is not None
    with pytest.raises(SendFailed) as failed:
        await sms.channel.sender.send(item)
    assert failed.value.transient


async def test_failed_answer_is_recorded_on_the_thread(
    sms_factory: Factory, fake_llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbound, "REF_WAIT_PAUSE", 0.01)
    sms = await sms_factory()
    fake_llm.script(step("done_for_now", message="All good."))
    await sms.text(TALKER, "status?")
    tid = thread_id_for("sms", f"{OURS}:{TALKER}")
    await sms.service.settled(tid, "done")
    [sent] = sms.fake.messages
    assert (await sms.status(sent["Sid"], "delivered")).status_code == 204
    assert (await sms.status(sent["Sid"], "failed", "30006")).status_code == 204

    def noted(v: ThreadView) -> bool:
        return any(isinstance(e, SystemNote) and e.kind == "escalation" for e in v.events)

    # The answer went to the thread's own origin: nowhere left to send it, a person must look.
    await sms.service.wait(tid, noted)
    view = await sms.service.settled(tid, "awaiting_human")
    [final] = view.outbox
    assert final.status == "failed"
    assert "30006" in (final.error or "")
    [failure] = [e for e in view.events if isinstance(e, DeliveryFailed)]
    assert (failure.message, failure.address) == ("final", TALKER)
    # An unknown SID (not ours, or long expired) is acknowledged and ignored.
    assert (await sms.status("SM" + "f" * 32, "failed", "30006")).status_code == 204


async def test_a_signed_text_without_body_is_refused(sms_factory: Factory) -> None:
    # Twilio always sends Body (empty for a media-only text): a form without it did not come
    # from Twilio's messaging webhook, whatever signed it. Refused, and nothing is stored.
    sms = await sms_factory()
    r = await sms.text(TALKER, "", omit=("Body",))
    assert (r.status_code, r.text) == (400, "Body: missing")
    await _nothing_stored(sms)
    # An empty Body is a text (a picture without words): answered, not refused.
    empty = await sms.text(TALKER, "")
    assert (empty.status_code, "Only text is understood here." in empty.text) == (200, True)


async def test_every_status_callback_is_recorded_on_the_item(sms_factory: Factory) -> None:
    sms = await sms_factory()
    tid = await _approval_thread(sms)
    await sms.service.settled(tid, "awaiting_human")
    [sent] = sms.fake.messages
    for status in ("queued", "sent", "delivered", "delivered", "read"):
        r = await sms.status(sent["Sid"], status, callback=sent["StatusCallback"])
        assert r.status_code == 204
    # Not a Twilio status: refused, nothing noted.
    r = await sms.status(sent["Sid"], "exploded", callback=sent["StatusCallback"])
    assert r.status_code == 400
    view = await sms.store.thread(tid)
    [approval] = [o for o in view.outbox if o.item.to.channel == "sms"]
    assert (approval.status, approval.reported) == ("sent", ["queued", "sent", "delivered", "read"])
    r = await sms.service.api.get(f"/v1/threads/{tid}")
    [shown] = [o for o in r.json()["outbox"] if o["item"]["to"]["channel"] == "sms"]
    assert shown["reported"] == ["queued", "sent", "delivered", "read"]


async def test_an_unknown_outcome_shows_what_twilio_reported_later(sms_factory: Factory) -> None:
    """A 500 after the text went out, and the message list does not show it yet: the item's
    outcome is unknown (not failed), the origin is asked too, and the delivery Twilio reports
    later is shown beside it."""
    sms = await sms_factory()
    sms.fake.fail(Lost(500, listed=False))
    tid = await _approval_thread(sms)
    await sms.service.wait(tid, approval_to("rest"))
    [sent] = sms.fake.messages
    r = await sms.status(sent["Sid"], "delivered", callback=sent["StatusCallback"])
    assert r.status_code == 204
    view = await sms.service.settled(tid, "awaiting_human")
    [approval] = [o for o in view.outbox if o.item.to.channel == "sms"]
    assert (approval.status, approval.reported) == ("unknown", ["delivered"])
    assert "outcome unknown" in (approval.error or "")
    [failure] = [e for e in view.events if isinstance(e, DeliveryFailed)]
    assert failure.outcome == "unknown"
