"""The email channel against a real SMTP server (aiosmtpd) on loopback: STARTTLS and TLS
with a certificate made for the test, AUTH LOGIN and PLAIN, and plain SMTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.notify.deliver import send
from lifeboat.notify.http import DeliveryError
from tests.servers.receivers import Certificate, self_signed_certificate, smtp_receiver

from .notify_helpers import SECRET, channel, failure, no_wait


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed_certificate(tmp_path_factory.mktemp("smtp-tls"))


def mail_channel(port: int, **fields: object) -> dict[str, object]:
    return {
        "type": "email",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "sender": "lifeboat@db.example",
        "recipients": ["dba@example.com", "oncall@example.com"],
        **fields,
    }


def test_starttls_with_a_login(certificate: Certificate) -> None:
    with smtp_receiver("starttls", certificate, login=("lifeboat", SECRET)) as server:
        fields = mail_channel(
            server.port, username="lifeboat", password=SECRET, ca_file=str(certificate.cert_file)
        )
        send("mail", channel(**fields), failure())
    [mail] = server.messages
    assert server.logins == ["PLAIN:lifeboat"]
    assert mail["From"] == "lifeboat@db.example"
    assert mail["To"] == "dba@example.com, oncall@example.com"
    assert mail["Subject"] == "[lifeboat] backup of wms failed: connection refused"
    text = mail.get_content().replace("\r\n", "\n")  # SMTP lines end in CRLF
    assert text.startswith("backup of wms failed: connection refused\n")
    assert "error: connection refused\n" in text and "source: wms\n" in text


def test_auth_login_when_the_server_offers_no_plain(certificate: Certificate) -> None:
    with smtp_receiver(
        "starttls", certificate, login=("lifeboat", SECRET), refuse_mechanisms=("PLAIN",)
    ) as server:
        fields = mail_channel(
            server.port, username="lifeboat", password=SECRET, ca_file=str(certificate.cert_file)
        )
        send("mail", channel(**fields), failure())
    assert server.logins == ["LOGIN:lifeboat"]
    assert len(server.messages) == 1


def test_a_password_from_a_file(certificate: Certificate, tmp_path: Path) -> None:
    secret_file = tmp_path / "smtp-password"
    secret_file.write_text(SECRET + "\n")
    with smtp_receiver("starttls", certificate, login=("lifeboat", SECRET)) as server:
        fields = mail_channel(
            server.port,
            username="lifeboat",
            password_file=str(secret_file),
            ca_file=str(certificate.cert_file),
        )
        send("mail", channel(**fields), failure())
    assert len(server.messages) == 1


def test_tls_from_the_start(certificate: Certificate) -> None:
    with smtp_receiver("tls", certificate, login=("lifeboat", SECRET)) as server:
        fields = mail_channel(
            server.port,
            security="tls",
            username="lifeboat",
            password=SECRET,
            ca_file=str(certificate.cert_file),
        )
        send("mail", channel(**fields), failure())
    assert len(server.messages) == 1
    assert server.logins == ["PLAIN:lifeboat"]


def test_plain_smtp_without_a_login() -> None:
    with smtp_receiver("none") as server:
        send("mail", channel(**mail_channel(server.port, security="none")), failure())
    assert server.messages[0]["X-Lifeboat-Event"] == "backup_failed"


def test_a_wrong_password_is_one_line_without_it(certificate: Certificate) -> None:
    with smtp_receiver("starttls", certificate, login=("lifeboat", "the-right-one")) as server:
        fields = mail_channel(
            server.port,
            username="lifeboat",
            password=SECRET,
            ca_file=str(certificate.cert_file),
            retries=3,
        )
        with pytest.raises(DeliveryError) as caught:
            send("mail", channel(**fields), failure(), no_wait)
    assert caught.value.permanent  # not retried
    assert caught.value.message.startswith(
        "notification channel 'mail' (email): not delivered after 1 attempt: "
        f"SMTP server 127.0.0.1:{server.port} refused the login of lifeboat: 535"
    )
    assert SECRET not in caught.value.message
    assert not server.messages


def test_an_untrusted_certificate_is_refused(certificate: Certificate) -> None:
    with smtp_receiver("starttls", certificate) as server, pytest.raises(DeliveryError) as caught:
        send("mail", channel(**mail_channel(server.port)), failure(), no_wait)
    assert "TLS certificate not trusted" in caught.value.message
    assert caught.value.message.endswith("set ca_file for a private CA")
    assert not server.messages
