"""Local CA and server certificate for the emulator.

The SDK's bearer-token policy refuses plain HTTP, so everything the emulator serves is HTTPS. The CA is kept in
the TLS directory and reused on restart, so a client that already trusts ``ca.pem`` keeps working after the
emulator restarts with ``--state``.
"""
from __future__ import annotations

import os
import ssl
from pathlib import Path

import trustme

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"  # private: only this emulator signs with it; never a real trust anchor


class EmulatorTLS:
    """Loads or creates the CA under ``tls_dir`` and builds one server context for every port.

    One leaf certificate (SANs ``localhost`` and ``127.0.0.1``) covers the ARM port and all revision/app/label
    ports, because TLS certificates do not depend on the port number.
    """

    def __init__(self, tls_dir: str | os.PathLike):
        self.dir = Path(tls_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        ca_path, key_path = self.dir / CA_FILE, self.dir / CA_KEY_FILE
        if ca_path.exists() and key_path.exists():
            self.ca = trustme.CA.from_pem(ca_path.read_bytes(), key_path.read_bytes())
        else:
            self.ca = trustme.CA(organization_name="acr-deploy ACA emulator")
            key_path.write_bytes(self.ca.private_key_pem.bytes())
            os.chmod(key_path, 0o600)
            # Write the public CA last: its presence tells other processes the directory is ready.
            tmp = ca_path.with_suffix(".tmp")
            tmp.write_bytes(self.ca.cert_pem.bytes())
            os.replace(tmp, ca_path)
        self.ca_path = str(ca_path)
        self._leaf = self.ca.issue_cert("localhost", "127.0.0.1", common_name="localhost")

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._leaf.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting only the emulator CA (for the control client and tests)."""
        return ssl.create_default_context(cafile=self.ca_path)
