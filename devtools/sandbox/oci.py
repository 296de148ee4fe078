"""Sample images built by the project itself, as OCI image layouts, and pushed with skopeo.

No Docker engine: an image is one tiny gzip'd tar layer (a file naming the repository, tag and
variant), an OCI image config and an OCI manifest, written to `<dir>/{oci-layout,index.json,blobs/}`
(the OCI image-layout spec). The build is deterministic (fixed mtimes, gzip without a timestamp),
so the same repo:tag:variant always has the same digest; that lets the sandbox tell the Container
Apps emulator how an image behaves (by digest) before it is pushed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"

# What a variant means to the emulator (how a revision running that image answers). "ok" serves
# 200; "broken" answers 500 on every path (smoke checks fail); "unhealthy" never becomes healthy
# (the revision fails to provision); "slow" answers after 1.5 s (latency limits fail).
VARIANTS: dict[str, dict] = {
    "ok": {},
    "broken": {"status": 500},
    "unhealthy": {"unhealthy": True},
    "slow": {"latency_ms": 1500},
    # Passes its smoke checks (the first requests answer well), then fails a share of its traffic under
    # load: only the canary analysis of its request metrics catches it.
    "flaky": {"fail_after": 5, "fail_share": 0.4},
}

_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_EPOCH = 1700000000  # fixed mtime: reproducible layers


@dataclass(frozen=True)
class SampleImage:
    repository: str
    tag: str
    variant: str
    layout_dir: Path
    digest: str  # the manifest digest: what the registry, the event and the revision carry
    size: int  # manifest size in bytes

    @property
    def oci_ref(self) -> str:
        return f"oci:{self.layout_dir}:{self.tag}"


def parse_reference(ref: str) -> tuple[str, str]:
    """'orders-api:1.4.2' -> ('orders-api', '1.4.2'); clear error for anything else."""
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag or not repo:
        raise ValueError(f"expected REPOSITORY:TAG (e.g. orders-api:1.4.2), got {ref!r}")
    if not _REPO.match(repo):
        raise ValueError(f"invalid repository name {repo!r} (lowercase letters, digits, . _ - /)")
    if not _TAG.match(tag):
        raise ValueError(f"invalid tag {tag!r} (letters, digits, . _ -; at most 128 characters)")
    return repo, tag


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """(uncompressed tar, gzip'd tar), both byte-for-byte reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in sorted({str(Path(p).parent) for p in files} - {"."}):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _EPOCH
            tar.addfile(info)
        for path, content in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(content), 0o644, _EPOCH
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=6) as stream:
        stream.write(tar_bytes)
    return tar_bytes, gz.getvalue()


def build_image(images_dir: str | Path, repository: str, tag: str, variant: str = "ok") -> SampleImage:
    """Write an OCI layout for repository:tag under images_dir/<repository>/<tag>/ (replacing it)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown image variant {variant!r}; choose from {', '.join(VARIANTS)}")
    parse_reference(f"{repository}:{tag}")  # validates both parts
    layout = Path(images_dir) / repository / tag
    if layout.exists():
        shutil.rmtree(layout)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = _sha256(data)
        (blobs / digest.split(":", 1)[1]).write_bytes(data)
        return digest

    version = {"repository": repository, "tag": tag, "variant": variant}
    tar_bytes, layer = _layer({
        "app/version.json": (json.dumps(version, sort_keys=True) + "\n").encode(),
        "app/VERSION": f"{tag}\n".encode(),
    })
    layer_digest = put(layer)
    config = {
        "created": "2023-11-14T22:13:20Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": [f"APP_VERSION={tag}", f"APP_VARIANT={variant}"],
            "Cmd": ["/app/serve"],
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {
                "org.opencontainers.image.title": repository,
                "org.opencontainers.image.version": tag,
                "dev.acr-deploy.sandbox.variant": variant,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [_sha256(tar_bytes)]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "acr-deploy sandbox"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = put(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": len(layer)}],
        "annotations": {"org.opencontainers.image.version": tag},
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = put(manifest_bytes)
    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE, "digest": manifest_digest, "size": len(manifest_bytes),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }
    (layout / "index.json").write_text(json.dumps(index, indent=1))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return SampleImage(repository, tag, variant, layout, manifest_digest, len(manifest_bytes))


class PushError(RuntimeError):
    pass


def skopeo_push(image: SampleImage, registry: str, skopeo: str = "skopeo", timeout_s: float = 60.0) -> str:
    """`skopeo copy oci:DIR:TAG docker://REGISTRY/REPO:TAG` (plain HTTP, loopback). Returns its output.
    --insecure-policy: the sandbox pushes its own images and must not depend on /etc/containers."""
    args = [
        skopeo, "--insecure-policy", "copy", "--quiet",
        "--dest-tls-verify=false", "--retry-times", "2",
        image.oci_ref, f"docker://{registry}/{image.repository}:{image.tag}",
    ]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PushError(f"skopeo copy did not finish within {timeout_s:.0f}s") from exc
    if done.returncode != 0:
        raise PushError(f"skopeo copy failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")
    return done.stdout
