"""Provider API keys are stored encrypted with LOYALTY_SECRET_KEY (Fernet: AES with an HMAC).

The variable may hold several comma-separated secrets: the first encrypts, any of them decrypts,
so a key can be rotated by putting the new one first and re-enabling the integrations.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SECRET_KEY_VARIABLE = "LOYALTY_SECRET_KEY"


class SecretKeyError(RuntimeError):
    pass


def _fernet(secret: str) -> Fernet:
    # Any long random string works; hashing gives Fernet the 32 bytes it needs.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


class SecretBox:
    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise SecretKeyError(
                f"{SECRET_KEY_VARIABLE} is not set: it encrypts the providers' API keys "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        self._keys = MultiFernet([_fernet(secret) for secret in secrets])

    def encrypt(self, plaintext: str) -> str:
        return self._keys.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._keys.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                f"a stored API key cannot be decrypted with {SECRET_KEY_VARIABLE}: "
                "was the key changed? Put the old secret after the new one, comma-separated"
            ) from None


def key_hint(api_key: str) -> str:
    """What may be shown of a key: its last four characters."""
    return "…" + api_key[-4:] if len(api_key) > 8 else "…"
