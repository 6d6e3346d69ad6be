"""Encryption stages: age through pyrage, OpenPGP through the system gpg, both streamed."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

from lifeboat.errors import (
    DecryptionKeyError,
    EncryptionError,
    IntegrityError,
    LifeboatError,
    ToolError,
    UsageError,
)
from lifeboat.pipeline.checksum import Readable, Writable


class Recipient(NamedTuple):
    """Who can decrypt: an age public key, or a gpg encryption key fingerprint."""

    type: str
    id: str


class Encryptor(Protocol):
    method: Literal["age", "gpg"]
    suffix: str

    def recipients(self) -> list[Recipient]: ...

    def encrypt(self, source: Readable, sink: Writable) -> None: ...


class Decryptor(Protocol):
    method: str

    def check_can_decrypt(self, recipients: list[Recipient]) -> None:
        """Raise DecryptionKeyError unless this key opens data sent to recipients."""
        ...

    def decrypt(self, source: Readable, sink: Writable) -> None: ...


# --- age -------------------------------------------------------------------------------


class AgeEncryptor:
    method: Literal["age", "gpg"] = "age"
    suffix = ".age"

    def __init__(self, recipients: list[str]) -> None:
        from pyrage import x25519

        self._names = list(recipients)
        try:
            self._recipients = [x25519.Recipient.from_str(r) for r in recipients]
        except Exception as exc:
            raise EncryptionError(f"invalid age recipient: {exc}") from None

    def recipients(self) -> list[Recipient]:
        return [Recipient("age", name) for name in self._names]

    def encrypt(self, source: Readable, sink: Writable) -> None:
        import pyrage

        reader = _ReadFailure(source)
        try:
            pyrage.encrypt_io(reader, sink, self._recipients)
        except pyrage.EncryptError as exc:
            # pyrage wraps what the reader raised: a failing pg_dump is not an age problem
            if isinstance(reader.error, LifeboatError):
                raise reader.error from None
            raise EncryptionError(f"age encryption failed: {exc}") from None


class _ReadFailure:
    """A reader that remembers what its source raised, for the error to name the cause."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self.error: BaseException | None = None

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._source.read(size)
        except BaseException as exc:
            self.error = exc
            raise


def generate_age_identity() -> tuple[str, str]:
    """A new (secret identity, public recipient) pair in age's text forms."""
    from pyrage import x25519

    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def write_identity(path: Path, force: bool = False) -> str:
    """Write an age identity file in age-keygen's format (mode 0600); returns the public key."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists: refusing to overwrite a key (use --force)")
    secret, public = generate_age_identity()
    stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
    text = f"# created: {stamp}\n# public key: {public}\n{secret}\n"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    return public


def read_age_identities(path: Path) -> list[object]:
    from pyrage import x25519

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DecryptionKeyError(f"age identity file {path} not found") from None
    except OSError as exc:
        raise DecryptionKeyError(f"cannot read age identity file {path}: {exc.strerror}") from None
    identities = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(x25519.Identity.from_str(line))
        except Exception:
            raise DecryptionKeyError(
                f"age identity file {path} holds a line that is not an age secret key"
            ) from None
    if not identities:
        raise DecryptionKeyError(f"age identity file {path} holds no AGE-SECRET-KEY line")
    return identities


class AgeDecryptor:
    method = "age"

    def __init__(self, identity_file: Path | None) -> None:
        if identity_file is None:
            raise DecryptionKeyError(
                "this needs the private key: set encryption.age_identity_file in the config"
            )
        self.identity_file = identity_file
        self._identities = read_age_identities(identity_file)

    def public_keys(self) -> list[str]:
        return [str(i.to_public()) for i in self._identities]  # type: ignore[attr-defined]

    def check_can_decrypt(self, recipients: list[Recipient]) -> None:
        wanted = {r.id for r in recipients if r.type == "age"}
        if not wanted & set(self.public_keys()):
            raise DecryptionKeyError(
                f"the key in {self.identity_file} ({', '.join(self.public_keys())}) "
                "is not one this "
                f"backup was encrypted to ({', '.join(sorted(wanted)) or 'no age recipient'})"
            )

    def decrypt(self, source: Readable, sink: Writable) -> None:
        import pyrage

        try:
            pyrage.decrypt_io(source, sink, self._identities)
        except pyrage.DecryptError as exc:
            text = str(exc)
            if "No matching keys" in text:
                raise DecryptionKeyError(
                    f"the key in {self.identity_file} cannot decrypt this backup"
                ) from None
            raise IntegrityError(
                f"age decryption failed, the object is corrupted: {text}"
            ) from None
        except OSError as exc:
            if exc.errno is not None:
                raise  # from our own source or sink, not from the ciphertext
            # pyrage reports a failed chunk authentication as a bare OSError
            raise IntegrityError(f"age decryption failed, the object is corrupted: {exc}") from None


# --- gpg -------------------------------------------------------------------------------


def _gpg_binary() -> str:
    import shutil  # gpg only: age users (and every wal-push) skip loading it

    path = shutil.which("gpg")
    if path is None:
        raise ToolError("gpg is not installed (Debian: apt-get install gnupg)")
    return path


def _gpg_base(homedir: Path | None) -> list[str]:
    command = [_gpg_binary(), "--batch", "--no-tty", "--quiet"]
    if homedir is not None:
        command += ["--homedir", str(homedir)]
    return command


def _gpg_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C")
    return env


def gpg_encryption_fingerprints(
    homedir: Path | None, query: str, *, secret: bool = False
) -> list[str]:
    """Fingerprints of the keys able to encrypt (pub or sub with capability e) matching query."""
    listing = "--list-secret-keys" if secret else "--list-keys"
    command = [*_gpg_base(homedir), "--with-colons", "--fixed-list-mode", listing]
    if query:
        command += ["--", query]
    import subprocess

    result = subprocess.run(command, capture_output=True, text=True, env=_gpg_env(), check=False)
    if result.returncode != 0:
        return []
    fingerprints: list[str] = []
    can_encrypt = False
    for line in result.stdout.splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sub", "sec", "ssb"):
            can_encrypt = "e" in (fields[11] if len(fields) > 11 else "")
        elif fields[0] == "fpr" and can_encrypt:
            fingerprints.append(fields[9])
            can_encrypt = False
    return fingerprints


class GpgEncryptor:
    method: Literal["age", "gpg"] = "gpg"
    suffix = ".gpg"

    def __init__(self, recipients: list[str], homedir: Path | None) -> None:
        self._names = list(recipients)
        self._homedir = homedir
        self._fingerprints: list[str] = []
        for name in recipients:
            found = gpg_encryption_fingerprints(homedir, name)
            if not found:
                where = f" in {homedir}" if homedir else ""
                raise EncryptionError(f"gpg has no usable public key for {name!r}{where}")
            self._fingerprints += found

    def recipients(self) -> list[Recipient]:
        return [Recipient("gpg", fpr) for fpr in self._fingerprints]

    def encrypt(self, source: Readable, sink: Writable) -> None:
        command = [
            *_gpg_base(self._homedir),
            "--trust-model",
            "always",
            "--compress-algo",
            "none",  # the data is zstd already
            "--encrypt",
        ]
        for name in self._names:
            command += ["--recipient", name]
        from lifeboat.pipeline.stream import filter_through

        result = filter_through(command, source, sink, env=_gpg_env())
        if result.returncode != 0:
            raise EncryptionError(f"gpg encryption failed: {result.stderr.last_line()}")


class GpgDecryptor:
    method = "gpg"

    def __init__(self, homedir: Path | None) -> None:
        self._homedir = homedir

    def check_can_decrypt(self, recipients: list[Recipient]) -> None:
        wanted = {r.id for r in recipients if r.type == "gpg"}
        available = set(gpg_encryption_fingerprints(self._homedir, "", secret=True))
        if not wanted & available:
            where = f" {self._homedir}" if self._homedir else ""
            raise DecryptionKeyError(
                f"the gpg keyring{where} has no secret key for this backup "
                f"(encrypted to {', '.join(sorted(wanted))})"
            )

    def decrypt(self, source: Readable, sink: Writable) -> None:
        command = [*_gpg_base(self._homedir), "--decrypt"]
        from lifeboat.pipeline.stream import filter_through

        result = filter_through(command, source, sink, env=_gpg_env())
        if result.returncode != 0:
            text = result.stderr.text
            if "No secret key" in text or "secret key not available" in text:
                raise DecryptionKeyError("gpg has no secret key to decrypt this backup")
            raise IntegrityError(
                f"gpg decryption failed, the object is corrupted: {result.stderr.last_line()}"
            )


def make_encryptor(
    age_recipients: list[str], gpg_recipients: list[str], gpg_homedir: Path | None
) -> Encryptor:
    if age_recipients:
        return AgeEncryptor(age_recipients)
    return GpgEncryptor(gpg_recipients, gpg_homedir)


def make_decryptor(
    method: str, age_identity_file: Path | None, gpg_homedir: Path | None
) -> Decryptor:
    if method == "age":
        return AgeDecryptor(age_identity_file)
    if method == "gpg":
        return GpgDecryptor(gpg_homedir)
    raise EncryptionError(f"unknown encryption method {method!r} in a manifest")
