"""A throwaway CA and a server certificate for 127.0.0.1/localhost, made per test session with `trustme`.

Azurite accepts bearer tokens only over HTTPS, and the Azure SDKs refuse a token credential on an
http:// URL, so the identity-path tests need TLS that Python trusts without touching the system store.
`TestTLS.create(dir)` writes the server's certificate chain and key (what `azurite --cert/--key` reads)
and the CA alone as a bundle for `REQUESTS_CA_BUNDLE`. That variable replaces requests' default bundle
instead of adding to it; harmless here, since the tests make HTTPS requests to local servers only.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class TestTLS:
    """PEM files of one session's CA and server certificate (all under `directory`)."""

    __test__ = False  # a helper, not a test class pytest should collect

    directory: Path
    ca_bundle: Path  # the CA certificate only: the REQUESTS_CA_BUNDLE value
    cert: Path  # server certificate followed by its chain, for `azurite --cert`
    key: Path  # the server certificate's private key (unencrypted PKCS#8), for `azurite --key`

    @classmethod
    def create(cls, directory: Path) -> TestTLS:
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="runkeeper-strava-sync tests")
        server = ca.issue_cert(*HOSTS)
        tls = cls(directory, directory / "ca.pem", directory / "server-cert.pem", directory / "server-key.pem")
        ca.cert_pem.write_to_path(str(tls.ca_bundle))
        with open(tls.cert, "wb") as out:
            for blob in server.cert_chain_pems:
                out.write(blob.bytes())
        server.private_key_pem.write_to_path(str(tls.key))
        tls.key.chmod(0o600)
        return tls

    def client_context(self) -> ssl.SSLContext:
        """An SSL context trusting only this CA, for tests speaking HTTPS without requests."""
        return ssl.create_default_context(cafile=str(self.ca_bundle))
