"""The email channel: a plain-text message over SMTP (STARTTLS, TLS from the start, or
neither), with a login when the channel has a username."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from lifeboat.config.model import NotificationConfig
from lifeboat.notify.event import Event
from lifeboat.notify.http import DeliveryError, tls_context

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def message(channel: NotificationConfig, event: Event) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = f"[lifeboat] {event.summary}"[:200]
    mail["From"] = str(channel.sender)
    mail["To"] = ", ".join(channel.recipients)
    mail["Date"] = formatdate(event.time.timestamp(), localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain="lifeboat")
    mail["X-Lifeboat-Event"] = event.kind
    mail.set_content(event.text())
    return mail


def password(channel: NotificationConfig) -> str | None:
    if channel.password is not None:
        return channel.password.get_secret_value()
    if channel.password_file is None:
        return None
    try:
        return channel.password_file.read_text().rstrip("\r\n")
    except OSError as exc:
        raise DeliveryError(
            f"cannot read password_file {channel.password_file}: {exc.strerror}", permanent=True
        ) from None


def send(channel: NotificationConfig, event: Event, timeout: float) -> None:
    host = str(channel.smtp_host)
    port = channel.smtp_port or DEFAULT_PORTS[channel.security]
    at = f"{host}:{port}"
    secret = password(channel)
    try:
        smtp: smtplib.SMTP
        if channel.security == "tls":
            smtp = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=tls_context(channel.ca_file)
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if channel.security == "starttls":
                smtp.starttls(context=tls_context(channel.ca_file))
            if channel.username:
                smtp.login(channel.username, secret or "")
            smtp.send_message(message(channel, event))
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(
            f"SMTP server {at} refused the login of {channel.username}: {_said(exc)}",
            permanent=True,
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryError(f"SMTP server {at}: {exc}", permanent=True) from None
    except smtplib.SMTPRecipientsRefused as exc:
        refused = ", ".join(sorted(exc.recipients))
        raise DeliveryError(
            f"SMTP server {at} refused the recipients {refused}", permanent=True
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"SMTP server {at} answered {_said(exc)}", permanent=exc.smtp_code >= 500
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryError(
            f"SMTP server {at}: TLS certificate not trusted ({exc.verify_message}); "
            "set ca_file for a private CA",
            permanent=True,
        ) from None
    except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
        raise DeliveryError(f"SMTP server {at}: {exc or 'no answer'}") from None
    except (smtplib.SMTPException, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DeliveryError(f"cannot send through SMTP server {at}: {why}") from None


def _said(exc: smtplib.SMTPResponseException) -> str:
    text = (
        exc.smtp_error.decode(errors="replace")
        if isinstance(exc.smtp_error, bytes)
        else str(exc.smtp_error)
    )
    return f"{exc.smtp_code} {text}".strip()
