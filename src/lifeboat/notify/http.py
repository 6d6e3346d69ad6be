"""HTTP delivery for the webhook, Slack and ping channels: urllib (no extra dependency),
a time limit per attempt, failures as DeliveryError lines that name the host but never
the URL (a webhook's path is its secret)."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from lifeboat import __version__
from lifeboat.errors import LifeboatError
from lifeboat.util.redact import hide_credentials, redact

USER_AGENT = f"lifeboat/{__version__}"
# answers that another attempt cannot change: the request is wrong, not the moment
_RETRYABLE_4XX = {408, 425, 429}


class DeliveryError(LifeboatError):
    """A notification could not be delivered; permanent: trying again cannot help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(hide_credentials(redact(message)))
        self.permanent = permanent


def where(url: str) -> str:
    """The host and port of url: what a message may say about it."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's trusted CAs, or those of ca_file (a private CA)."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def request(
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    timeout: float,
    ca_file: Path | None = None,
) -> None:
    """POST body to url (GET when body is None); returns on a 2xx answer. Raises
    DeliveryError."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError(f"not an http(s) URL ({where(url)})", permanent=True)
    sent = urllib.request.Request(
        url,
        data=body,
        headers={"User-Agent": USER_AGENT, **headers},
        method="GET" if body is None else "POST",
    )
    context = tls_context(ca_file) if url.lower().startswith("https:") else None
    try:
        with urllib.request.urlopen(sent, timeout=timeout, context=context) as answer:
            answer.read(65536)
    except urllib.error.HTTPError as exc:
        code = exc.code
        raise DeliveryError(
            f"{where(url)} answered HTTP {code} {exc.reason}",
            permanent=400 <= code < 500 and code not in _RETRYABLE_4XX,
        ) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise DeliveryError(f"{where(url)} did not answer within {timeout:g}s") from None
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise DeliveryError(
                f"{where(url)}: TLS certificate not trusted ({reason.verify_message}); "
                "set ca_file for a private CA",
                permanent=True,
            ) from None
        raise DeliveryError(f"cannot reach {where(url)}: {_reason_text(reason)}") from None
    except TimeoutError:
        raise DeliveryError(f"{where(url)} did not answer within {timeout:g}s") from None
    except OSError as exc:
        raise DeliveryError(f"cannot reach {where(url)}: {_reason_text(exc)}") from None


def _reason_text(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)
