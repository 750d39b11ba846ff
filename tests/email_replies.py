"""Replies as the mail clients write them, in eleven languages: one fixture per client and
language (Gmail, Outlook, Apple Mail, Thunderbird), each a REJECT with its reason above (or,
Thunderbird's default, below) the quoted approval mail.

The attribution lines are the clients' own localized forms; Gmail wraps long ones, Apple Mail
quotes its line and adds the device's "Sent from my iPhone", Outlook writes a header block
and leaves the quoted mail unmarked, Thunderbird answers below the quote.
"""

from __future__ import annotations

from dataclasses import dataclass

FRESH = "REJECT not during the freeze"
"""What the approver wrote: the decision and its reason, nothing else."""
QUOTED = (
    "Approval needed: deploy(tag='v1.2.3', env='production')",
    "",
    "Reply APPROVE, or REJECT and a reason (on the first line of your reply).",
)
"""Our approval mail, as it comes back quoted."""
BOT = "Deploybot <deploybot@sb.test>"
ALICE = "Alice Example <alice@example.com>"


@dataclass(frozen=True)
class Reply:
    lang: str
    client: str
    body: str

    @property
    def id(self) -> str:
        return f"{self.client}-{self.lang}"


def _quote(lines: tuple[str, ...] | list[str]) -> str:
    return "\n".join(f"> {line}".rstrip() for line in lines)


def gmail(lang: str, attribution: str) -> Reply:
    """Fresh text, a blank line, the attribution (wrapped as Gmail wraps), the quote."""
    return Reply(lang, "gmail", f"{FRESH}\n\n{attribution}\n\n{_quote(QUOTED)}\n")


def apple(lang: str, device: str, attribution: str) -> Reply:
    """iOS Mail: the device signature, then the attribution inside the quote."""
    return Reply(lang, "apple", f"{FRESH}\n\n{device}\n\n{_quote([attribution, '', *QUOTED])}\n")


def outlook(lang: str, separator: str, headers: tuple[str, str, str, str]) -> Reply:
    """A separator line and a From / Sent / To / Subject block; the mail below is unquoted."""
    block = "\n".join(headers)
    return Reply(lang, "outlook", f"{FRESH}\n\n{separator}\n{block}\n\n" + "\n".join(QUOTED) + "\n")


def thunderbird(lang: str, attribution: str) -> Reply:
    """Thunderbird's default: the attribution, the quote, and the answer below it."""
    return Reply(lang, "thunderbird", f"{attribution}\n{_quote(QUOTED)}\n\n{FRESH}\n")


_LINE = "_" * 32
REPLIES: tuple[Reply, ...] = (
    # ---- Gmail --------------------------------------------------------------------------
    gmail("en", f"On Tue, Nov 24, 2026 at 9:14 AM {BOT} wrote:"),
    gmail(
        "de",
        "Am Di., 24. Nov. 2026 um 09:14 Uhr schrieb Deploybot Notifications <\ndeploybot@sb.test>:",
    ),
    gmail("fr", f"Le mar. 24 nov. 2026 à 09:14, {BOT} a\nécrit :"),
    gmail("es", "El mar, 24 nov 2026 a las 9:14, Deploybot (<deploybot@sb.test>)\nescribió:"),
    gmail("pt", f"Em ter., 24 de nov. de 2026 às 09:14, {BOT}\nescreveu:"),
    gmail("it", f"Il giorno mar 24 nov 2026 alle ore 09:14 {BOT} ha\nscritto:"),
    gmail("nl", f"Op di 24 nov 2026 om 09:14 schreef {BOT}:"),
    gmail("sv", f"Den tis 24 nov. 2026 kl 09:14 skrev {BOT}:"),
    gmail("pl", f"wt., 24 lis 2026 o 09:14 {BOT} napisał(a):"),
    gmail("ja", f"2026年11月24日(火) 9:14 {BOT}:"),
    gmail("zh", f"{BOT} 于2026年11月24日周二 09:14写道："),  # noqa: RUF001 - the client's colon
    # ---- Apple Mail (iOS) ---------------------------------------------------------------
    apple("en", "Sent from my iPhone", f"On Nov 24, 2026, at 09:14, {BOT} wrote:"),
    apple("de", "Von meinem iPhone gesendet", f"Am 24.11.2026 um 09:14 schrieb {BOT}:"),
    apple("fr", "Envoyé de mon iPhone", f"Le 24 nov. 2026 à 09:14, {BOT} a écrit :"),
    apple("es", "Enviado desde mi iPhone", f"El 24 nov 2026, a las 9:14, {BOT} escribió:"),
    apple("pt", "Enviado do meu iPhone", f"Em 24 de nov. de 2026, à(s) 09:14, {BOT} escreveu:"),
    apple("it", "Inviato da iPhone", f"Il giorno 24 nov 2026, alle ore 09:14, {BOT} ha scritto:"),
    apple(
        "nl",
        "Verstuurd vanaf mijn iPhone",
        f"Op 24 nov. 2026 om 09:14 heeft {BOT} het volgende geschreven:",
    ),
    apple("sv", "Skickat från min iPhone", f"24 nov. 2026 kl. 09:14 skrev {BOT}:"),
    apple(
        "pl",
        "Wysłane z iPhone’a",  # noqa: RUF001 - the apostrophe iOS writes
        f"Wiadomość napisana przez {BOT} w dniu 24.11.2026, o godz. 09:14:",
    ),
    apple("ja", "iPhoneから送信", f"2026/11/24 9:14、{BOT}のメール:"),
    apple("zh", "发自我的iPhone", f"2026年11月24日 09:14，{BOT} 写道："),  # noqa: RUF001
    # ---- Outlook ------------------------------------------------------------------------
    outlook(
        "en",
        _LINE,
        (
            f"From: {BOT}",
            "Sent: Tuesday, November 24, 2026 9:14 AM",
            f"To: {ALICE}",
            "Subject: Re: Deploy please",
        ),
    ),
    outlook(
        "de",
        "-----Ursprüngliche Nachricht-----",
        (
            f"Von: {BOT}",
            "Gesendet: Dienstag, 24. November 2026 09:14",
            f"An: {ALICE}",
            "Betreff: Re: Deploy please",
        ),
    ),
    outlook(
        "fr",
        _LINE,
        (
            f"De : {BOT}",
            "Envoyé : mardi 24 novembre 2026 09:14",
            f"À : {ALICE}",
            "Objet : Re: Deploy please",
        ),
    ),
    outlook(
        "es",
        "-----Mensaje original-----",
        (
            f"De: {BOT}",
            "Enviado el: martes, 24 de noviembre de 2026 9:14",
            f"Para: {ALICE}",
            "Asunto: Re: Deploy please",
        ),
    ),
    outlook(
        "pt",
        _LINE,
        (
            f"De: {BOT}",
            "Enviado: terça-feira, 24 de novembro de 2026 09:14",
            f"Para: {ALICE}",
            "Assunto: Re: Deploy please",
        ),
    ),
    outlook(
        "it",
        "-----Messaggio originale-----",
        (
            f"Da: {BOT}",
            "Inviato: martedì 24 novembre 2026 09:14",
            f"A: {ALICE}",
            "Oggetto: Re: Deploy please",
        ),
    ),
    outlook(
        "nl",
        _LINE,
        (
            f"Van: {BOT}",
            "Verzonden: dinsdag 24 november 2026 09:14",
            f"Aan: {ALICE}",
            "Onderwerp: Re: Deploy please",
        ),
    ),
    outlook(
        "sv",
        _LINE,
        (
            f"Från: {BOT}",
            "Skickat: den 24 november 2026 09:14",
            f"Till: {ALICE}",
            "Ämne: Re: Deploy please",
        ),
    ),
    outlook(
        "pl",
        "-----Wiadomość oryginalna-----",
        (
            f"Od: {BOT}",
            "Wysłano: wtorek, 24 listopada 2026 09:14",
            f"Do: {ALICE}",
            "Temat: Re: Deploy please",
        ),
    ),
    outlook(
        "ja",
        _LINE,
        (
            f"差出人: {BOT}",
            "送信日時: 2026年11月24日 9:14",
            f"宛先: {ALICE}",
            "件名: Re: Deploy please",
        ),
    ),
    outlook(
        "zh",
        "-----原始邮件-----",
        (
            f"发件人: {BOT}",
            "发送时间: 2026年11月24日 9:14",
            f"收件人: {ALICE}",
            "主题: Re: Deploy please",
        ),
    ),
    # ---- Thunderbird (reply below the quote, its default) -------------------------------
    thunderbird("en", "On 11/24/26 9:14 AM, Deploybot wrote:"),
    thunderbird("de", "Am 24.11.26 um 09:14 schrieb Deploybot:"),
    thunderbird("fr", "Le 24/11/2026 à 09:14, Deploybot a écrit :"),
    thunderbird("es", "El 24/11/26 a las 9:14, Deploybot escribió:"),
    thunderbird("pt", "Em 24/11/2026 09:14, Deploybot escreveu:"),
    thunderbird("it", "Il 24/11/26 09:14, Deploybot ha scritto:"),
    thunderbird("nl", "Op 24-11-2026 om 09:14 schreef Deploybot:"),
    thunderbird("sv", "Den 2026-11-24 kl. 09:14, skrev Deploybot:"),
    thunderbird("pl", "W dniu 24.11.2026 o 09:14, Deploybot pisze:"),
    thunderbird("ja", "2026/11/24 9:14 に Deploybot さんは書きました:"),
    thunderbird("zh", "在 2026/11/24 09:14, Deploybot 写道:"),
)


HTML_REPLIES: dict[str, str] = {
    # HTML-only replies (no text/plain part): the markup each client writes around its quote.
    "gmail-es": (
        f'<div dir="ltr">{FRESH}</div><br><div class="gmail_quote"><div dir="ltr" '
        'class="gmail_attr">El mar, 24 nov 2026 a las 9:14, Deploybot (&lt;<a href="mailto:'
        'deploybot@sb.test">deploybot@sb.test</a>&gt;) escribió:<br></div><blockquote '
        'class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
        f'rgb(204,204,204);padding-left:1ex">{QUOTED[0]}<br><br>{QUOTED[2]}</blockquote></div>'
    ),
    "gmail-zh": (
        f'<div dir="ltr">{FRESH}</div><br><div class="gmail_quote"><div dir="ltr" '
        'class="gmail_attr">Deploybot &lt;<a href="mailto:deploybot@sb.test">deploybot@sb.test'
        "</a>&gt; 于2026年11月24日周二 09:14写道：<br></div><blockquote "  # noqa: RUF001
        f'class="gmail_quote">{QUOTED[0]}<br></blockquote></div>'
    ),
    "apple-pt": (
        f"<html><body><div>{FRESH}</div><div><br></div><div>Enviado do meu iPhone</div><div><br>"
        '<blockquote type="cite">Em 24 de nov. de 2026, à(s) 09:14, Deploybot &lt;'
        'deploybot@sb.test&gt; escreveu:<br><br></blockquote></div><blockquote type="cite">'
        f"<div>{QUOTED[0]}</div></blockquote></body></html>"
    ),
    "outlook-ja": (
        f'<div>{FRESH}</div><hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" '
        'style="font-size:11pt"><b>差出人:</b> Deploybot &lt;deploybot@sb.test&gt;<br>'
        "<b>送信日時:</b> 2026年11月24日 9:14<br><b>宛先:</b> Alice &lt;alice@example.com&gt;<br>"
        f"<b>件名:</b> Re: Deploy please</font><div>&nbsp;</div></div><div>{QUOTED[0]}</div>"
    ),
    "thunderbird-de": (
        f'<p>{FRESH}</p><div class="moz-cite-prefix">Am 24.11.26 um 09:14 schrieb Deploybot:'
        f'<br></div><blockquote type="cite">{QUOTED[0]}</blockquote>'
    ),
}
