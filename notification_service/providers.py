"""E-mail providers (SendGrid or a sandbox) and SMS providers (Twilio or a sandbox)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Protocol

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client as TwilioClient


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


@dataclasses.dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164
    text: str


class SmsProvider(Protocol):
    name: str

    async def send(self, message: SmsMessage) -> str:
        """Send the message; return the provider's message id."""
        ...


class SandboxSmsProvider:
    """Sends nothing: the message is recorded as delivered in the delivery log."""

    name = "sandbox"

    def __init__(self) -> None:
        self.sent: list[SmsMessage] = []

    async def send(self, message: SmsMessage) -> str:
        self.sent.append(message)
        return f"sandbox-sms-{uuid.uuid4()}"


class TwilioSmsProvider:
    """Twilio's Messages resource through the official SDK (blocking, so run in a thread)."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_base: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.client = TwilioClient(
            account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout_s)
        )
        if api_base:
            # Requests go to the Api domain's base_url + /2010-04-01/...; an edge or region
            # (TWILIO_EDGE, TWILIO_REGION) would rewrite that host, so none with a base.
            self.client.api.base_url = api_base
            self.client.edge = None
            self.client.region = None
        self.from_number = from_number

    def _send(self, message: SmsMessage) -> str:
        try:
            sent = self.client.messages.create(
                to=message.to, from_=self.from_number, body=message.text
            )
        except TwilioRestException as exc:
            raise ProviderError(
                f"Twilio answered {exc.status} (code {exc.code}): {exc.msg}"
            ) from exc
        except TwilioServiceException as exc:
            # Newer APIs answer RFC 9457 problem details.
            detail = exc.detail or exc.title
            raise ProviderError(
                f"Twilio answered {exc.status} (code {exc.code}): {detail}"
            ) from exc
        except OSError as exc:  # requests' connection errors and timeouts are OSErrors
            raise ProviderError(f"Twilio unreachable: {exc}") from exc
        return str(sent.sid)

    async def send(self, message: SmsMessage) -> str:
        return await asyncio.to_thread(self._send, message)
