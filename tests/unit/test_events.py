"""Event parsing: the published samples in both schemas, every ignore/reject path, hostile input."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from shared.domain.events import Ignored, Rejected, parse_event, parse_time
from shared.domain.model import ImagePush

REF = Path(__file__).resolve().parents[1] / "fixtures" / "eventgrid"  # the published samples
DIGEST = "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5"


def sample(name: str) -> dict:
    return json.loads((REF / name).read_text())[0] if name.endswith("].json") else _load(name)


def _load(name: str):
    data = json.loads((REF / name).read_text())
    return data[0] if isinstance(data, list) else data


@pytest.fixture
def eg() -> dict:
    return copy.deepcopy(_load("acr-ImagePushed.eventgrid-schema.docs-azure-cn.json"))


@pytest.fixture
def ce() -> dict:
    return copy.deepcopy(_load("acr-ImagePushed.cloudevents.docs-learn.json"))


def test_event_grid_sample_parses_to_the_pushed_image(eg):
    push = parse_event(eg)
    assert isinstance(push, ImagePush)
    assert (push.registry, push.repository, push.tag, push.digest) == ("demo.azurecr.io", "aci-helloworld", "v1", DIGEST)
    assert push.image == f"demo.azurecr.io/aci-helloworld@{DIGEST}"
    assert push.event_id == "831e1650-001e-001b-66ab-eeb76e069631"
    assert push.event_source == eg["topic"]
    assert push.event_time == datetime(2018, 4, 25, 21, 39, 47, 654961, tzinfo=timezone.utc)
    assert push.schema == "eventgrid"
    assert push.media_type == "application/vnd.docker.distribution.manifest.v2+json"


def test_cloudevents_sample_parses_the_same(ce):
    push = parse_event(ce)
    assert isinstance(push, ImagePush)
    assert push.schema == "cloudevents"
    assert push.event_source == ce["source"]
    assert push.image == f"demo.azurecr.io/aci-helloworld@{DIGEST}"


def test_subscription_validation_is_ignored_with_its_code():
    result = parse_event(_load("eventgrid-SubscriptionValidationEvent.docs.json"))
    assert isinstance(result, Ignored)
    assert result.validation_code == "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    assert "validation" in result.reason
    assert "token" not in json.dumps(result.to_dict())  # the validation URL (with its token) is not kept


@pytest.mark.parametrize("media", [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])
def test_image_manifest_media_types_are_accepted(eg, media):
    eg["data"]["target"]["mediaType"] = media
    assert isinstance(parse_event(eg), ImagePush)


@pytest.mark.parametrize("mutate, fragment", [
    (lambda e: e.update(eventType="Microsoft.ContainerRegistry.ImageDeleted"), "not Microsoft.ContainerRegistry.ImagePushed"),
    (lambda e: e.update(eventType="Microsoft.ContainerRegistry.ChartPushed"), "ChartPushed"),
    (lambda e: e.update(eventType="Microsoft.Storage.BlobCreated"), "BlobCreated"),
    (lambda e: e["data"]["target"].pop("tag"), "without a tag"),
    (lambda e: e["data"]["target"].update(tag=""), "without a tag"),
    (lambda e: e["data"]["target"].update(tag="sha256-" + "ab" * 32 + ".sig"), "signature"),
    (lambda e: e["data"]["target"].update(tag="sha256-" + "ab" * 32 + ".att"), "attestation"),
    (lambda e: e["data"]["target"].update(tag="sha256-" + "ab" * 32 + ".sbom"), "SBOM"),
    (lambda e: e["data"]["target"].update(mediaType="application/vnd.oci.artifact.manifest.v1+json"), "not an image manifest"),
    (lambda e: e["data"]["target"].update(mediaType="application/vnd.cncf.helm.config.v1+json"), "not an image manifest"),
    (lambda e: e["data"]["target"].update(mediaType="application/vnd.oci.image.manifest.v1+json",
                                          artifactType="application/vnd.dev.cosign.artifact.sig.v1+json"), "artifactType"),
    (lambda e: e["data"]["target"].pop("mediaType"), "mediaType"),
])
def test_not_for_us_is_ignored_with_a_reason(eg, mutate, fragment):
    mutate(eg)
    result = parse_event(eg)
    assert isinstance(result, Ignored), result
    assert fragment in result.reason
    assert result.event_id == eg["id"]


@pytest.mark.parametrize("mutate, fragment", [
    (lambda e: e["data"]["target"].update(repository="Orders-API"), "repository"),
    (lambda e: e["data"]["target"].update(repository="orders//api"), "repository"),
    (lambda e: e["data"]["target"].update(repository="orders-"), "repository"),
    (lambda e: e["data"]["target"].update(repository="a" * 300), "repository"),
    (lambda e: e["data"]["target"].update(repository="../../etc"), "repository"),
    (lambda e: e["data"]["target"].update(tag="-leading-dash"), "tag"),
    (lambda e: e["data"]["target"].update(tag="x" * 129), "tag"),
    (lambda e: e["data"]["target"].update(tag="v1;rm -rf"), "tag"),
    (lambda e: e["data"]["target"].update(digest="sha256:" + "A" * 64), "digest"),
    (lambda e: e["data"]["target"].update(digest="sha512:" + "a" * 128), "digest"),
    (lambda e: e["data"]["target"].update(digest="sha256:abc"), "digest"),
    (lambda e: e["data"]["target"].pop("digest"), "digest"),
    (lambda e: e["data"]["request"].update(host="evil.example.com/path"), "host"),
    (lambda e: e["data"].pop("request"), "data.request"),
    (lambda e: e.update(data="not an object"), "data must be an object"),
    (lambda e: e.update(eventTime="yesterday"), "eventTime"),
    (lambda e: e.update(id=""), "id must be"),
    (lambda e: e.update(id=7), "id must be"),
    (lambda e: e.update(topic=12), "topic must be a string"),
    (lambda e: e["data"]["target"].update(tag=12), "tag must be a string"),
    (lambda e: e["data"]["target"].update(mediaType=["x"]), "mediaType must be a string"),
])
def test_malformed_is_rejected_with_a_reason(eg, mutate, fragment):
    mutate(eg)
    result = parse_event(eg)
    assert isinstance(result, Rejected), result
    assert fragment in result.reason


def test_valid_names_from_the_distribution_spec(eg):
    for repo in ("a", "team/orders-api", "a.b_c__d---e/f0", "x" * 200):
        eg["data"]["target"]["repository"] = repo
        assert isinstance(parse_event(eg), ImagePush), repo
    for tag in ("v1", "_x", "1.4.2-rc.1", "main-1234-abc1234", "A" * 128):
        eg["data"]["target"]["tag"] = tag
        assert isinstance(parse_event(eg), ImagePush), tag


def test_cloudevents_other_specversion_is_rejected(ce):
    ce["specversion"] = "0.3"
    assert isinstance(parse_event(ce), Rejected)


@pytest.mark.parametrize("raw", [None, 1, "x", [], [{}], {}, {"foo": 1}, {"eventType": None}])
def test_non_events_are_rejected(raw):
    assert isinstance(parse_event(raw), Rejected)


def test_huge_strings_are_clipped_in_the_record(eg):
    eg["data"]["target"]["tag"] = "x" * 1_000_000
    result = parse_event(eg)
    assert isinstance(result, Rejected)
    assert len(result.reason) < 400 and len(result.tag) <= 256


def test_time_falls_back_to_data_timestamp_and_handles_nanoseconds(eg):
    eg.pop("eventTime")
    push = parse_event(eg)
    assert push.event_time == datetime(2018, 4, 25, 21, 39, 47, 276585, tzinfo=timezone.utc)
    assert parse_time("2024-05-01T12:00:00") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert parse_time(12) is None and parse_time("2024-13-01T00:00:00Z") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_parse_never_raises_on_arbitrary_json(raw):
    result = parse_event(raw)
    assert isinstance(result, (ImagePush, Ignored, Rejected))


FIELDS = [("id",), ("eventType",), ("topic",), ("eventTime",), ("data",), ("data", "target"),
          ("data", "target", "tag"), ("data", "target", "digest"), ("data", "target", "repository"),
          ("data", "target", "mediaType"), ("data", "request"), ("data", "request", "host"),
          ("data", "actor"), ("data", "timestamp")]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS), json_values)
def test_parse_never_raises_when_any_field_is_junk(path, junk):
    event = copy.deepcopy(_load("acr-ImagePushed.eventgrid-schema.docs-azure-cn.json"))
    node = event
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            break
        node = node[key]
    else:
        node[path[-1]] = junk
    result = parse_event(event)
    assert isinstance(result, (ImagePush, Ignored, Rejected))
    if isinstance(result, ImagePush):  # whatever got through is valid
        assert result.digest.startswith("sha256:") and result.tag and result.repository
