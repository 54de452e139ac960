"""Private keys for signing: loaded from the environment or a 0600 file, validated, never printed.

A key is a 32-byte secp256k1 scalar written as 64 hex digits (optionally ``0x``-prefixed). The
loader returns a :class:`SigningKey` whose ``repr``/``str`` show only the derived public address, so
a key cannot leak through logs, exceptions or result files by accident.

Sources, in order: an explicit file path (config ``private_key_file``), the variable named by the
config (default ``ETHEREAL_PRIVATE_KEY``), the file named by ``ETHEREAL_PRIVATE_KEY_FILE``.
Files must be regular files readable only by their owner (mode ``0600`` or ``0400``).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account

from adapters.ethereal.common.constants import ENV_PRIVATE_KEY, ENV_PRIVATE_KEY_FILE

_HEX64 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
# secp256k1 group order: a valid private key is 1 <= k < N.
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class CredentialError(Exception):
    """A signing key is missing, unreadable, too widely readable or malformed.

    The message names the source (variable or file) and the problem, never the key itself.
    """


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A validated private key and its address. ``repr`` never shows the key.

    ``address`` is the checksummed 0x address; ``source`` says where the key came from
    (``"env:ETHEREAL_PRIVATE_KEY"`` or ``"file:/path"``).
    """

    address: str
    source: str
    _key: str = field(repr=False)

    def __repr__(self) -> str:
        return f"SigningKey(address={self.address}, source={self.source})"

    __str__ = __repr__

    def secret(self) -> str:
        """The 0x-prefixed hex key, for the signing functions only."""
        return self._key


def parse_private_key(text: str, source: str) -> SigningKey:
    """Validate ``text`` (64 hex digits, optional ``0x``, surrounding whitespace ignored).

    Raises :class:`CredentialError` naming ``source`` when the text is empty, not 64 hex digits, or
    not a valid secp256k1 scalar (0 or >= the group order).
    """
    value = text.strip()
    if not value:
        raise CredentialError(f"{source}: private key is empty")
    if not _HEX64.match(value):
        raise CredentialError(
            f"{source}: private key is malformed (expected 64 hex digits, optionally 0x-prefixed; "
            f"got {len(value)} characters)"
        )
    hexkey = value[2:] if value.startswith("0x") else value
    k = int(hexkey, 16)
    if not 0 < k < _SECP256K1_N:
        raise CredentialError(f"{source}: private key is not a valid secp256k1 key (out of range)")
    key = "0x" + hexkey.lower()
    return SigningKey(address=Account.from_key(key).address, source=source, _key=key)


def read_key_file(path: str | Path) -> SigningKey:
    """Load a key from ``path``; the file must exist, be a regular file and not be readable or
    writable by group/others (``chmod 600``). Raises :class:`CredentialError`."""
    p = Path(path).expanduser()
    source = f"file:{p}"
    try:
        st = p.stat()
    except FileNotFoundError:
        raise CredentialError(f"{source}: key file does not exist") from None
    except OSError as e:
        raise CredentialError(f"{source}: cannot stat key file ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise CredentialError(f"{source}: key path is not a regular file")
    if st.st_mode & 0o077:
        raise CredentialError(
            f"{source}: key file permissions are {stat.S_IMODE(st.st_mode):04o}; "
            "it must be readable by its owner only (chmod 600)"
        )
    try:
        text = p.read_text()
    except OSError as e:
        raise CredentialError(f"{source}: cannot read key file ({e.strerror})") from None
    return parse_private_key(text, source)


def load_signing_key(*, key_file: str | Path | None = None, env_var: str = ENV_PRIVATE_KEY,
                     environ: dict[str, str] | None = None) -> SigningKey:
    """Find and validate the signing key (see module docstring for the search order).

    Raises :class:`CredentialError` when no source is set or the key is malformed.
    """
    env = os.environ if environ is None else environ
    if key_file:
        return read_key_file(key_file)
    if env.get(env_var):
        return parse_private_key(env[env_var], f"env:{env_var}")
    if env.get(ENV_PRIVATE_KEY_FILE):
        return read_key_file(env[ENV_PRIVATE_KEY_FILE])
    raise CredentialError(
        f"no Ethereal signing key: set {env_var} (hex key) or {ENV_PRIVATE_KEY_FILE} "
        "(path to a chmod 600 file), or private_key_file in the execution client config"
    )
