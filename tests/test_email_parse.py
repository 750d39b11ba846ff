"""Reading mail, pure functions: bodies, charsets, quotes, noise, trust and tokens."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from channels.email.parse import parse
from channels.email.tokens import Signer
from channels.email.trust import address_matches, authenticated, read_decision
from model.ids import request_id_for

HEAD = (
    "From: Alice <alice@example.com>\r\nTo: deploybot@sb.test\r\nSubject: Re: Deploy\r\n"
    "Message-ID: <r1@example.com>\r\nMIME-Version: 1.0\r\n"
)


def raw(content_type: str, body: bytes, extra: str = "") -> bytes:
    return (HEAD + extra + f"Content-Type: {content_type}\r\n\r\n").encode() + body


GMAIL = (
    "Yes, go ahead with staging.\n\n"
    "On Tue, Nov 24, 2026 at 10:02 AM Deploybot <deploybot@sb.test> wrote:\n\n"
    "> Which environment?\n>\n> Reply to this mail.\n"
)
OUTLOOK = (
    "Yes, go ahead with staging.\n\nBest regards,\nAlice Example\nOps lead\n\n"
    "________________________________\n"
    "From: Deploybot <deploybot@sb.test>\nSent: Tuesday, November 24, 2026 10:02 AM\n"
    "To: Alice Example <alice@example.com>\nSubject: Re: Deploy\n\nWhich environment?\n"
)
APPLE = (
    "Yes, go ahead with staging.\n\nSent from my iPhone\n\n"
    "> On 24 Nov 2026, at 10:02, Deploybot <deploybot@sb.test> wrote:\n>\n"
    "> Which environment?\n"
)


@pytest.mark.parametrize("body", [GMAIL, OUTLOOK, APPLE], ids=["gmail", "outlook", "apple"])
def test_quoted_history_and_signature_are_stripped(body: str) -> None:
    mail = parse(raw("text/plain; charset=utf-8", body.encode()))
    assert mail.reply == "Yes, go ahead with staging."
    assert "Which environment?" in mail.text  # the whole body is still there


def test_signature_after_dash_dash_is_stripped() -> None:
    mail = parse(raw("text/plain", b"Thanks, that works.\n\n-- \nAlice\nACME Ops\n"))
    assert mail.reply == "Thanks, that works."


def test_html_only_mail_becomes_text() -> None:
    html = (
        b"<html><head><style>p{color:red}</style></head><body><p>Please <b>deploy</b> "
        b"v1.2.3</p><ul><li>to staging</li><li>then production</li></ul>"
        b"<div class='gmail_quote'>On Mon, Bob wrote:<blockquote>old</blockquote></div>"
        b"</body></html>"
    )
    mail = parse(raw("text/html; charset=utf-8", html))
    assert "Please deploy v1.2.3" in mail.text
    assert "to staging" in mail.text
    assert "color:red" not in mail.text
    assert "<" not in mail.reply


def test_plain_text_is_preferred_to_html() -> None:
    msg = EmailMessage()
    msg["From"] = "alice@example.com"
    msg.set_content("the plain words")
    msg.add_alternative("<p>the <i>html</i> words</p>", subtype="html")
    assert parse(msg.as_bytes()).text == "the plain words"


def test_non_utf8_charset_is_decoded() -> None:
    body = "Grüße aus Zürich: déployez v1.2.3".encode("iso-8859-1")
    mail = parse(raw("text/plain; charset=iso-8859-1", body, "Content-Transfer-Encoding: 8bit\r\n"))
    assert mail.reply == "Grüße aus Zürich: déployez v1.2.3"


def test_bogus_charset_does_not_crash() -> None:
    body = "café ok".encode("latin-1") + b" \xff\xfe"
    mail = parse(raw("text/plain; charset=x-no-such-charset", body))
    assert mail.reply.startswith("café ok")
    utf8 = parse(raw("text/plain; charset=x-no-such-charset", "naïve".encode()))
    assert utf8.reply == "naïve"


def test_broken_headers_and_missing_parts_do_not_crash() -> None:
    mail = parse(b"From: \r\nSubject: =?utf-8?q?broken\r\nMessage-ID: not-an-id\r\n\r\n")
    assert (mail.sender, mail.message_id, mail.reply) == ("", None, "")


def test_attachments_are_listed_not_inlined() -> None:
    msg = EmailMessage()
    msg["From"] = "alice@example.com"
    msg.set_content("logs attached")
    msg.add_attachment(b"\x00" * 1234, maintype="application", subtype="gzip", filename="a.tgz")
    msg.add_attachment("line\n" * 10, subtype="plain", filename="notes.txt")
    mail = parse(msg.as_bytes())
    assert mail.reply == "logs attached"
    assert [(a.name, a.content_type, a.size) for a in mail.attachments] == [
        ("a.tgz", "application/gzip", 1234),
        ("notes.txt", "text/plain", 50),
    ]
    assert mail.content().splitlines()[-1] == (
        "[attached: a.tgz (application/gzip, 1234 bytes); notes.txt (text/plain, 50 bytes)]"
    )


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        ("Auto-Submitted: auto-replied\r\n", "auto_reply"),
        ("Auto-Submitted: auto-generated\r\n", "auto_reply"),
        ("X-Autoreply: yes\r\n", "auto_reply"),
        ("Precedence: junk\r\n", "bulk"),
        ("List-Unsubscribe: <mailto:leave@lists.example.com>\r\n", "bulk"),
    ],
)
def test_noise_is_recognized(extra: str, kind: str) -> None:
    mail = parse(raw("text/plain", b"I am away", extra))
    assert mail.noise is not None
    assert mail.noise.kind == kind


def test_a_person_is_not_noise() -> None:
    assert parse(raw("text/plain", b"hi", "Auto-Submitted: no\r\n")).noise is None


def test_delayed_delivery_report_is_not_a_failure() -> None:
    report = (
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; a@b.c\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n--B--\r\n"
    )
    mail = parse(
        raw('multipart/report; report-type=delivery-status; boundary="B"', report),
        envelope_sender="",
    )
    assert mail.noise is not None
    assert (mail.noise.kind, mail.noise.failed) == ("bounce", False)


def test_first_line_decides() -> None:
    assert read_decision("APPROVE") == ("approve", None)
    assert read_decision("approved, thanks") == ("approve", "thanks")
    assert read_decision("REJECT: not during the freeze") == ("reject", "not during the freeze")
    assert read_decision("Reject\nwe are frozen until Monday") == (
        "reject",
        "we are frozen until Monday",
    )
    assert read_decision("I approve of this") is None
    assert read_decision("approvex") is None


def test_authentication_results() -> None:
    ok = "mx.sb.test; dkim=pass (good) header.d=example.com; spf=fail smtp.mailfrom=x"
    assert authenticated([ok], "alice@example.com", ["mx.sb.test"])
    assert authenticated(
        ["mx.sb.test 1; dmarc=pass header.from=example.com"], "a@example.com", ["mx.sb.test"]
    )
    assert authenticated(
        ["mx.sb.test; dkim=pass header.d=example.com"], "a@eu.example.com", ["mx.sb.test"]
    )
    assert not authenticated([ok], "alice@example.com", [])
    assert not authenticated([ok], "alice@example.org", ["mx.sb.test"])
    assert not authenticated(
        ["mx.sb.test; dkim=fail header.d=example.com"], "a@example.com", ["mx.sb.test"]
    )
    # Only the topmost header of the trusted host counts: a forged one further down does not.
    genuine = "mx.sb.test; dkim=none; dmarc=fail header.from=example.com"
    assert not authenticated([genuine, ok], "alice@example.com", ["mx.sb.test"])


# What a sender controls inside a trusted host's header (its MAIL FROM, the comments) must not
# read as a pass: RFC 8601 quoted strings and nested comments, parsed by authres.
QUOTED_MAILFROM = (
    'mx.sb.test; spf=fail smtp.mailfrom="x;dkim=pass header.d=example.com;"@evil.test; dkim=none'
)
NESTED_COMMENT = (
    "mx.sb.test; dkim=none (a (b) ; dkim=pass header.d=example.com x) header.d=evil.test"
)
GMAIL_STYLE = (
    "mx.sb.test;\r\n       dkim=pass header.i=@example.com header.s=20230601 header.b=AbCd;\r\n"
    "       spf=pass (mx.sb.test: domain of a@example.com designates 192.0.2.1 as permitted"
    " sender) smtp.mailfrom=a@example.com;\r\n       dmarc=pass (p=NONE sp=NONE dis=NONE)"
    " header.from=example.com"
)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([QUOTED_MAILFROM], False),
        ([NESTED_COMMENT], False),
        ([GMAIL_STYLE], True),
        (["mx.sb.test; dkim=pass header.d=EXAMPLE.com"], True),
        (["mx.sb.test; none"], False),
        # Unreadable from the trusted host: what it said is unknown, the forged one below is
        # not read instead of it.
        (
            [
                "mx.sb.test; dkim=pass header.d=example.com (",
                "mx.sb.test; dkim=pass header.d=example.com",
            ],
            False,
        ),
        # Unreadable from someone else (Exchange writes no authserv-id): skipped.
        (
            ["spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com; dkim=pass", GMAIL_STYLE],
            True,
        ),
    ],
    ids=[
        "quoted-mailfrom",
        "nested-comment",
        "gmail-style",
        "case",
        "none",
        "unreadable-trusted",
        "unreadable-other",
    ],
)
def test_authentication_results_are_parsed_as_rfc_8601(headers: list[str], expected: bool) -> None:
    assert authenticated(headers, "alice@example.com", ["mx.sb.test"]) is expected


def test_allowed_senders() -> None:
    assert address_matches("Alice@Example.com", ["alice@example.com"])
    assert address_matches("bob@example.com", ["@example.com"])
    assert address_matches("bob@example.com", ["example.com"])
    assert not address_matches("bob@evil-example.com", ["@example.com"])
    assert not address_matches("bob@sub.example.com", ["@example.com"])


def test_reply_tokens_are_signed() -> None:
    signer = Signer(b"k")
    token = signer.reply_token("th_abc", "rq_def")
    assert signer.read_reply_token(token).request_id == "rq_def"  # type: ignore[union-attr]
    assert signer.read_reply_token(token.upper()) is not None  # local parts may be folded
    assert signer.read_reply_token(token.replace("rq_def", "rq_xyz")) is None
    assert Signer(b"other").read_reply_token(token) is None
    assert signer.read_reply_token("th_abc") is None


def test_a_reply_token_names_a_request_that_names_its_thread_once() -> None:
    signer = Signer(b"k")
    rid = request_id_for("th_wmpdeia6h6f56hx6")
    token = signer.reply_token("th_wmpdeia6h6f56hx6", rid)
    assert token.count("th_wmpdeia6h6f56hx6") == 1
    assert len(f"reply+{token}") <= 64  # an address's local part
    ref = signer.read_reply_token(token.upper())
    assert ref is not None
    assert (ref.thread_id, ref.request_id) == ("th_wmpdeia6h6f56hx6", rid)
    other = request_id_for("th_other")
    assert signer.read_reply_token(token.replace(rid, other)) is None
    # a thread-only token of that thread does not pass for the request's
    thread_mac = signer.reply_token("th_wmpdeia6h6f56hx6").rpartition(".")[2]
    assert signer.read_reply_token(f"{rid}.{thread_mac}") is None


def test_link_tokens_are_signed_and_expire() -> None:
    signer = Signer(b"k")
    token = signer.link_token("rq_1", "approve", "alice@example.com", expires=1000)
    claim = signer.read_link_token(token, now=999)
    assert claim is not None
    assert (claim.request_id, claim.decision, claim.approver) == (
        "rq_1",
        "approve",
        "alice@example.com",
    )
    assert signer.read_link_token(token, now=1001) is None
    body, _, mac = token.partition(".")
    assert signer.read_link_token(body[:-2] + "xx." + mac, now=0) is None
    assert signer.read_link_token("garbage", now=0) is None


GMAIL_HTML = (
    '<div dir="ltr">APPROVE</div><br><div class="gmail_quote"><div dir="ltr" '
    'class="gmail_attr">On Tue, Nov 24, 2026 at 10:02 AM Deploybot &lt;<a href="mailto:'
    'deploybot@sb.test">deploybot@sb.test</a>&gt; wrote:<br></div><blockquote '
    'class="gmail_quote">Approval needed</blockquote></div>'
)
OUTLOOK_HTML = (
    '<div>APPROVE</div><div><br></div><hr style="display:inline-block;width:98%">'
    '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri"><b>From:</b> Deploybot '
    "&lt;deploybot@sb.test&gt;<br><b>Sent:</b> Tuesday, November 24, 2026 10:02 AM<br>"
    "<b>To:</b> Alice &lt;alice@example.com&gt;<br><b>Subject:</b> Re: Deploy please</font>"
    "<div>&nbsp;</div></div><div>Approval needed</div>"
)


@pytest.mark.parametrize("html", [GMAIL_HTML, OUTLOOK_HTML], ids=["gmail", "outlook"])
def test_quotes_are_stripped_from_html_only_replies(html: str) -> None:
    mail = parse(raw("text/html; charset=utf-8", html.encode()))
    assert mail.reply == "APPROVE"
