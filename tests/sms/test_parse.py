"""Pure functions of the SMS channel: payloads, keywords, decisions, segments."""

from __future__ import annotations

import pytest

from channels.sms import parse, segments
from channels.sms.parse import Decision, Keyword, PayloadError


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("YES", Decision("approve", None, None)),
        ("y", Decision("approve", None, None)),
        (" Approve 4821 ", Decision("approve", "4821", None)),
        ("yes #4821 go ahead", Decision("approve", "4821", "go ahead")),
        ("NO", Decision("reject", None, None)),
        ("n 4821 freeze until Monday", Decision("reject", "4821", "freeze until Monday")),
        ("No, not on a Friday.", Decision("reject", None, "not on a Friday.")),
        ("REJECT: tests are red", Decision("reject", None, "tests are red")),
        ("no 12345 is not a code", Decision("reject", None, "12345 is not a code")),
        ("YES ALL", Decision("approve", None, None, grant=True)),
        ("yes 4821 all", Decision("approve", "4821", None, grant=True)),
        ("Y ALL #4821!", Decision("approve", "4821", None, grant=True)),
        ("yes all good", Decision("approve", None, "all good")),
        ("yes 4821 all 1234", Decision("approve", "4821", "all 1234")),
        ("no all", Decision("reject", None, "all")),
        ("yesterday went fine", None),
        ("nope", None),
        ("deploy v1.2.3 to production", None),
    ],
)
def test_decisions(body: str, expected: Decision | None) -> None:
    assert parse.decision(body) == expected


def _sms(body: str, opt_out_type: str | None = None) -> parse.InboundSms:
    return parse.InboundSms(
        message_sid="SM" + "0" * 32,
        sender="+15551230001",
        to="+15005550006",
        body=body,
        opt_out_type=opt_out_type,
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("STOP", "opt_out"),
        ("stop ", "opt_out"),
        ("StopAll", "opt_out"),
        ("unsubscribe", "opt_out"),
        ("CANCEL", "opt_out"),
        ("end", "opt_out"),
        ("Quit", "opt_out"),
        ("START", "opt_in"),
        ("unstop", "opt_in"),
        ("yes", "opt_in"),
        ("HELP", "help"),
    ],
)
def test_keywords(body: str, kind: str) -> None:
    assert parse.keyword(_sms(body)) == Keyword(kind)  # type: ignore[arg-type]


def test_only_single_word_keywords_count() -> None:
    assert parse.keyword(_sms("stop please")) is None
    assert parse.keyword(_sms("please cancel the deploy")) is None
    # Advanced Opt-Out tells us itself, whatever the word.
    assert parse.keyword(_sms("ARRET", opt_out_type="STOP")) == Keyword("opt_out")


def test_numbers_are_normalized_to_e164() -> None:
    form = {
        "MessageSid": "SM" + "1" * 32,
        "From": "+1 (555) 123-0001",
        "To": "+1 500 555 0006",
        "Body": "hi",
    }
    sms = parse.inbound(form)
    assert (sms.sender, sms.to) == ("+15551230001", "+15005550006")
    with pytest.raises(PayloadError):
        parse.inbound({**form, "From": "5551230001"})  # no country: ambiguous
    with pytest.raises(PayloadError):
        parse.inbound({**form, "MessageSid": ""})
    with pytest.raises(PayloadError):
        parse.inbound({**form, "Body": "x" * 1601})
    without_body = {k: v for k, v in form.items() if k != "Body"}
    with pytest.raises(PayloadError, match="Body: missing"):
        parse.inbound(without_body)
    assert parse.inbound({**form, "Body": ""}).body == ""  # a picture without words


def test_segment_counts() -> None:
    assert segments.encoding("Deploy v1.2.3? [yes]") == "gsm7"
    assert segments.encoding("Déploiement ✅") == "ucs2"
    assert segments.segments("a" * 160) == 1
    assert segments.segments("a" * 161) == 2
    assert segments.segments("a" * 306) == 2
    assert segments.segments("a" * 307) == 3
    assert segments.segments("€" * 80) == 1  # extension characters take two septets
    assert segments.segments("€" * 81) == 2
    assert segments.segments("é" * 160) == 1  # é is in GSM-7's basic table
    assert segments.segments("✅" * 70) == 1
    assert segments.segments("ä" + "✅" * 70) == 2
    assert segments.segments("✅" * 134) == 2
    assert segments.segments("😀" * 35) == 1  # outside the BMP: two UTF-16 units each


@pytest.mark.parametrize("budget", [1, 2, 3])
@pytest.mark.parametrize("body", ["word " * 200, "mot✅ " * 200, "😀" * 300])
def test_fit_keeps_tail_and_link_within_budget(budget: int, body: str) -> None:
    tail = "\nReply YES, or NO and a reason."
    text = segments.fit(body, tail, budget, "https://sb.example/v1/threads/th_x")
    assert segments.segments(text) <= budget
    assert text.endswith(tail)
    assert "..." in text
    assert len(text) > len(tail) + 20  # a fair part of the body is left
    if budget > 1:
        assert text.endswith("... https://sb.example/v1/threads/th_x" + tail)


def test_fit_leaves_short_texts_alone() -> None:
    assert segments.fit("Done: deployed", "", 1, "https://x") == "Done: deployed"
