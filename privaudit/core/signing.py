"""Ed25519 keys for signing a run's manifest (the ``cryptography`` package): generation,
PEM loading with errors that name the file, and the key fingerprint reports print."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from privaudit.core.errors import ConfigError

__all__ = ["PRIVATE_KEY_NAME", "PUBLIC_KEY_NAME", "generate_keypair", "load_private_key",
           "load_public_key", "public_key_fingerprint"]

PRIVATE_KEY_NAME = "privaudit-ed25519.pem"
PUBLIC_KEY_NAME = "privaudit-ed25519.pub.pem"


def public_key_fingerprint(key: Ed25519PublicKey) -> str:
    """``sha256:<hex>`` of the raw 32-byte public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def generate_keypair(out_dir: Path | str, *, passphrase: bytes | None = None) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair as PEM into ``out_dir``: (private, public) paths.

    The private key (PKCS#8, encrypted when ``passphrase`` is given) is created with mode
    0600; existing key files are never overwritten.
    """
    out = Path(out_dir)
    private_path, public_path = out / PRIVATE_KEY_NAME, out / PUBLIC_KEY_NAME
    for existing in (private_path, public_path):
        if existing.exists():
            raise ConfigError(f"{existing} already exists; refusing to overwrite a key")
    out.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8, encryption)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    for path, data, mode in ((private_path, private_pem, 0o600), (public_path, public_pem, 0o644)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return private_path, public_path


def load_private_key(path: Path | str, *, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file; ConfigError naming the file otherwise."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=passphrase)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{path}: cannot read the private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: expected an Ed25519 private key; got {type(key).__name__}")
    return key


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file; ConfigError naming the file otherwise."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{path}: cannot read the public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: expected an Ed25519 public key; got {type(key).__name__}")
    return key
