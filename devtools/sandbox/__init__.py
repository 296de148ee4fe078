"""The local sandbox: Azurite, the Container Apps emulator, a real OCI registry, a registry→Event
Grid bridge and the function app under the dev host, all on loopback (docs/sandbox.md).

    python -m devtools.sandbox up|demo|status|down|push

Python API (tests, scripts): `Sandbox(dir=...).up()` -> endpoints dict, `.down()`, `.status()`;
`push(ref, variant, dir)`; `read_endpoints(dir)`.
"""

from devtools.sandbox.sandbox import Sandbox, SandboxError, read_endpoints

__all__ = ["Sandbox", "SandboxError", "read_endpoints"]
