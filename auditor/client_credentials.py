"""The app registration's client secret or certificate, in the form MSAL's confidential client
takes (`client_credential`).

Apart from `auth` because it handles the secret material itself (a secret, or a PEM or PFX
certificate file) and is the only code that needs `cryptography`.
"""

from __future__ import annotations

from pathlib import Path

from auditor.errors import AuthError
from auditor.logs import register_secret
from auditor.settings import Settings


def client_credential(settings: Settings) -> str | dict[str, str]:
    """The secret, or the certificate (PFX path, or PEM key, thumbprint and certificate)."""
    creds = settings.credentials
    if settings.auth_method == "client-secret":
        if creds.client_secret is None:
            raise AuthError(
                "auth.method is client-secret but AZURE_CLIENT_SECRET is not set.",
                hint="Set AZURE_CLIENT_SECRET in the environment (never in auditor.toml).",
            )
        register_secret(creds.client_secret.value)
        return creds.client_secret.value
    path = creds.certificate_path
    if path is None or not path.is_file():
        raise AuthError(
            "auth.method is client-certificate but AZURE_CLIENT_CERTIFICATE_PATH does not name "
            "a readable file.",
            hint="Set AZURE_CLIENT_CERTIFICATE_PATH to a PEM (key and certificate) or PFX file.",
        )
    password = creds.certificate_password.value if creds.certificate_password else None
    register_secret(password)
    if path.suffix.lower() in (".pfx", ".p12"):
        pfx: dict[str, str] = {"private_key_pfx_path": str(path)}
        if password:
            pfx["passphrase"] = password
        return pfx
    return _pem_credential(path, password)


def _pem_credential(path: Path, password: str | None) -> dict[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    data = path.read_bytes()
    try:
        cert = x509.load_pem_x509_certificate(data)
        key = serialization.load_pem_private_key(
            data, password=password.encode() if password else None
        )
    except ValueError as exc:
        raise AuthError(
            f"{path} does not hold a PEM certificate and its private key: {exc}",
            hint="Give one PEM file with both, or a PFX file and its password in "
            "AZURE_CLIENT_CERTIFICATE_PASSWORD.",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AuthError(
            f"{path} holds a {type(key).__name__.removeprefix('_')} key; Microsoft Entra ID signs "
            "client assertions with RSA (RS256) only.",
            hint="Create the app registration's certificate with an RSA key (2048 bits or more).",
        )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "private_key": key_pem,
        # Entra identifies the certificate by its SHA-1 thumbprint (x5t).
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),  # noqa: S303
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }
