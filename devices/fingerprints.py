"""SSH host key fingerprints as OpenSSH prints them (SHA256:base64, no padding)."""

import base64
import hashlib


def fingerprint(key_base64: str) -> str:
    if not key_base64:
        return ""
    try:
        blob = base64.b64decode(key_base64)
    except ValueError:
        return ""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"
