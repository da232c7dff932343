"""E-mail providers: SendGrid through its SDK when SENDGRID_API_KEY is set, else a sandbox."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Protocol

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail


@dataclasses.dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str


class ProviderError(Exception):
    """The provider refused or failed; the consumer retries with backoff."""


class EmailProvider(Protocol):
    name: str

    async def send(self, message: EmailMessage) -> str:
        """Send the message; return the provider's message id."""
        ...


class SandboxEmailProvider:
    """Sends nothing: the message is recorded as delivered in the delivery log."""

    name = "sandbox"

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> str:
        self.sent.append(message)
        return f"sandbox-{uuid.uuid4()}"


class SendGridEmailProvider:
    """SendGrid v3 mail/send through the official SDK (blocking, so run in a thread)."""

    name = "sendgrid"

    def __init__(self, api_key: str, sender: str, host: str = "https://api.sendgrid.com") -> None:
        self.client = SendGridAPIClient(api_key=api_key, host=host)
        self.sender = sender

    def _send(self, message: EmailMessage) -> str:
        mail = Mail(
            from_email=self.sender,
            to_emails=message.to,
            subject=message.subject,
            plain_text_content=message.text,
        )
        try:
            response = self.client.send(mail)
        except HTTPError as exc:
            raise ProviderError(f"SendGrid answered {exc.status_code}: {exc.body!r}") from exc
        except OSError as exc:
            raise ProviderError(f"SendGrid unreachable: {exc}") from exc
        return str(response.headers.get("X-Message-Id", ""))

    async def send(self, message: EmailMessage) -> str:
        return await asyncio.to_thread(self._send, message)
