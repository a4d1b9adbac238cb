"""The digest by e-mail: HTML with inline CSS, a text alternative, the XLSX on request.

Python's own ``email`` and ``smtplib`` build and send it. The HTML is a
Jinja2 template with autoescape (every CRM string is text; names in
``<bdi>``); layout is tables and inline styles, which common mail clients
keep. The Message-ID is derived from the slot, so a resend after a crash
mid-send carries the same one (docs/DIGESTS.md "Once per slot").
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from rop.digests.chat import summary_lines
from rop.digests.content import Digest
from rop.digests.delivery import DeliveryError
from rop.digests.numbers import change, period, show
from rop.digests.words import WORDS, word
from rop.report.export import report_file_name, report_to_xlsx

XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    folder = Path(__file__).parent / "templates"
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def subject(d: Digest) -> str:
    lang = d.language
    return f"{word('title', lang)}: {period(d.date_from, d.date_to, lang)}"


def render_html(d: Digest) -> str:
    lang = d.language
    figures = []
    for f in d.figures:
        ratio = f.change
        color = (
            "#6a737f" if ratio is None or ratio == 0 else ("#2e8b2e" if ratio > 0 else "#d0361b")
        )
        figures.append(
            {
                "label": f.label,
                "value": show(f.value, f.kind, lang, d.currency),
                "change": change(ratio, lang),
                "color": color,
            }
        )
    rows = [
        {
            "name": r.name,
            "department": r.department,
            "cells": [
                show(r.figures.get(k), kind, lang, d.currency) for k, _, kind in d.row_columns
            ],
        }
        for r in d.rows
    ]
    previous = period(*d.previous, lang) if d.previous else None
    return (
        _env()
        .get_template("digest_email.html")
        .render(
            lang=lang,
            w={k: word(k, lang) for k in WORDS},
            d=d,
            title=subject(d),
            heading=period(d.date_from, d.date_to, lang),
            previous=previous,
            figures=figures,
            rank=d.rank,
            rows=rows,
            row_labels=[label for _, label, _ in d.row_columns],
            attention=[a for a in d.attention if a.count],
            overdue=d.overdue,
            link=d.link,
            xlsx=d.subscription.xlsx,
        )
    )


def render_text(d: Digest) -> str:
    lang = d.language
    lines = summary_lines(d)
    if d.rows:
        lines.append("")
        lines.append(word("managers", lang) + ": " + " / ".join(lb for _, lb, _ in d.row_columns))
        for r in d.rows:
            values = " / ".join(show(r.figures.get(k), kind, lang, d.currency)
                                for k, _, kind in d.row_columns)  # fmt: skip
            lines.append(f"- {r.name}: {values}")
    if d.overdue:
        lines.append("")
        lines.append(word("overdue_list", lang) + ":")
        lines += [f"- {deal['title']}" + (f" <{deal['url']}>" if deal.get("url") else "")
                  for deal in d.overdue]  # fmt: skip
    if d.link:
        lines += ["", f"{word('open', lang)}: {d.link}"]
    lines += ["", "--", word("footer", lang)]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: str = "starttls"  # starttls | ssl | none
    user: str | None = None
    password: str | None = None
    sender: str = "rop-report@localhost"
    sender_name: str = "ROP Report"
    timeout: float = 20.0


def build_message(d: Digest, to: str, smtp: SmtpSettings, message_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject(d)
    msg["From"] = formataddr((smtp.sender_name, smtp.sender))
    msg["To"] = formataddr((d.reader_name, to))
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a digest
    msg.set_content(render_text(d))
    msg.add_alternative(render_html(d), subtype="html")
    if d.subscription.xlsx:
        data: Any = report_to_xlsx(d.report, lang=d.language)
        msg.add_attachment(
            data, maintype=XLSX[0], subtype=XLSX[1], filename=report_file_name(d.report, "xlsx")
        )
    return msg


def message_id(portal: str, sub_id: int, slot: str) -> str:
    """The same ID for every attempt at one slot."""
    safe = "".join(c if c.isalnum() else "." for c in f"{sub_id}.{slot}")
    host = "".join(c if c.isalnum() or c in ".-" else "-" for c in portal)
    return f"<rop-digest.{safe}@{host}>"


class MailSender:
    """SMTP delivery; 4xx answers and connection trouble are transient, 5xx final."""

    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp

    def send(self, msg: EmailMessage) -> None:
        s = self.smtp
        try:
            if s.security == "ssl":
                context = ssl.create_default_context()
                client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                                        context=context)  # fmt: skip
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with client:
                if s.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if s.user:
                    client.login(s.user, s.password or "")
                client.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            transient = all(400 <= c < 500 for c in codes)
            raise DeliveryError(
                f"SMTP refused the recipient: {exc.recipients}", transient=transient
            ) from None
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {text}", transient=400 <= exc.smtp_code < 500
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}", transient=True) from None
