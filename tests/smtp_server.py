"""A real SMTP server (aiosmtpd) on a free port in a thread, for the digest tests.

``Mailbox`` keeps what it accepted; ``refuse`` makes it answer the next
messages with a transient 451 (a busy or greylisting server).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP


@dataclass
class Mailbox:
    host: str = "127.0.0.1"
    port: int = 0
    refuse: int = 0  # answer this many DATA commands with 451
    refused: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            return "451 4.3.0 Try again later"
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    box = Mailbox()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(
            loop.create_server(lambda: SMTP(box, hostname="test.local"), "127.0.0.1", 0)
        )
        holder["server"] = server
        box.port = server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=run, name="test-smtp", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield box
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
