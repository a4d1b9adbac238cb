"""Secrets at rest: OAuth tokens and application tokens are Fernet-encrypted
(AES-128-CBC + HMAC-SHA256, ``cryptography``) with a key from the settings, so a
copy of the store file alone reveals none of them.

Keys: any strings (a Fernet key or a passphrase); each is stretched to a
Fernet key with HKDF-SHA256. The first key encrypts; every key decrypts, so a
key is rotated by putting the new one first and running ``Vault.rotate`` on
the stored values (the app does it when a token is written again).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class VaultError(ValueError):
    """A stored secret cannot be read with the configured keys."""


def derive_key(secret: str, purpose: str) -> bytes:
    """32 bytes for ``purpose`` from ``secret`` (HKDF-SHA256, no salt: keys are secrets)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(secret.encode("utf-8"))


class Vault:
    def __init__(self, secrets: Sequence[str]) -> None:
        keys = [s for s in (x.strip() for x in secrets) if s]
        if not keys:
            raise ValueError("the vault needs at least one key")
        self._fernet = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(derive_key(k, "rop-vault"))) for k in keys]
        )

    def seal(self, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def unseal(self, sealed: str | None) -> str | None:
        if sealed is None or sealed == "":
            return None
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise VaultError(
                "a stored token cannot be decrypted: ROP_APP_SECRET_KEY changed "
                "(put the old key after the new one, comma-separated)"
            ) from None

    def rotate(self, sealed: str | None) -> str | None:
        """The same secret under the first key."""
        if sealed is None or sealed == "":
            return None
        try:
            return self._fernet.rotate(sealed.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise VaultError("a stored token cannot be decrypted with any key") from None
