"""Sample images: OCI layouts the project writes itself, read back by skopeo and by a registry."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile

import httpx
import pytest

from devtools.sandbox.oci import MANIFEST_MEDIA_TYPE, build_image, parse_reference

pytestmark = pytest.mark.e2e


def test_builds_are_reproducible_and_variants_differ(tmp_path):
    first = build_image(tmp_path / "a", "orders-api", "1.4.2", "ok")
    again = build_image(tmp_path / "b", "orders-api", "1.4.2", "ok")
    broken = build_image(tmp_path / "c", "orders-api", "1.4.2", "broken")
    other_tag = build_image(tmp_path / "d", "orders-api", "1.4.3", "ok")
    assert first.digest == again.digest
    assert len({first.digest, broken.digest, other_tag.digest}) == 3


def test_the_layout_is_a_valid_oci_image_naming_its_version(e2e_tools, tmp_path):
    image = build_image(tmp_path, "team/orders-api", "1.5.0-rc.1", "broken")
    raw = subprocess.run([e2e_tools["skopeo"], "inspect", "--raw", image.oci_ref],
                         capture_output=True, check=True, timeout=30).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == image.digest
    manifest = json.loads(raw)
    assert manifest["mediaType"] == MANIFEST_MEDIA_TYPE
    config = json.loads(subprocess.run([e2e_tools["skopeo"], "inspect", "--config", image.oci_ref],
                                       capture_output=True, check=True, timeout=30).stdout)
    assert "APP_VERSION=1.5.0-rc.1" in config["config"]["Env"]
    layer = image.layout_dir / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.read_bytes()))) as tar:
        version = json.load(tar.extractfile("app/version.json"))
    assert version == {"repository": "team/orders-api", "tag": "1.5.0-rc.1", "variant": "broken"}


def test_the_registry_serves_the_pushed_digest(registry_bridge, subscriber):
    rb = registry_bridge(subscriber.url)
    image = rb.push("orders-api:3.0.0")
    response = httpx.get(f"http://{rb.registry}/v2/orders-api/manifests/3.0.0",
                         headers={"Accept": MANIFEST_MEDIA_TYPE}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == image.digest


@pytest.mark.parametrize("ref", ["orders-api", "Orders:1.0", "orders-api:", "orders api:1", "a:b/c"])
def test_bad_references_are_refused_with_a_clear_error(ref):
    with pytest.raises(ValueError, match="REPOSITORY:TAG|invalid"):
        parse_reference(ref)
