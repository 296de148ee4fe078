"""Trust: the event's topic/source and request host must match a configured registry."""

import pytest

from shared.domain.trust import TrustedRegistry, trusted_registries, untrusted_reason

RID = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg"


def regs(*entries):
    return trusted_registries(entries)


def test_login_server_only_matches_the_acr_topic_by_registry_name():
    trusted = regs("myreg.azurecr.io")
    assert untrusted_reason(RID, "myreg.azurecr.io", trusted) is None
    assert untrusted_reason(RID.upper(), "MyReg.AzureCR.io", trusted) is None  # case-insensitive
    other = RID.replace("/myreg", "/otherreg")
    assert "not the registry resource" in untrusted_reason(other, "myreg.azurecr.io", trusted)
    assert "not a trusted registry" in untrusted_reason(RID, "otherreg.azurecr.io", trusted)
    assert untrusted_reason("", "myreg.azurecr.io", trusted) is not None  # no topic at all


def test_pinned_resource_id_must_equal_the_topic():
    trusted = regs(f"myreg.azurecr.io={RID}")
    assert untrusted_reason(RID, "myreg.azurecr.io", trusted) is None
    same_name_other_sub = RID.replace("/s1/", "/s2/")
    assert untrusted_reason(same_name_other_sub, "myreg.azurecr.io", trusted) is not None


def test_non_acr_hosts_compare_the_host_only():
    trusted = regs("127.0.0.1:5000")
    assert untrusted_reason("local-bridge", "127.0.0.1:5000", trusted) is None
    assert untrusted_reason("local-bridge", "127.0.0.1:5001", trusted) is not None


def test_nothing_configured_trusts_nothing():
    assert untrusted_reason(RID, "myreg.azurecr.io", ()) is not None


def test_entries_from_rules_and_settings_merge_and_bad_entries_fail_loudly():
    class Entry:
        login_server = "myreg.azurecr.io"
        resource_id = RID

    merged = trusted_registries(["myreg.azurecr.io", " ", Entry(), "MYREG.azurecr.io"])
    assert merged == (TrustedRegistry("myreg.azurecr.io"), TrustedRegistry("myreg.azurecr.io", RID.lower()))
    with pytest.raises(ValueError, match="bad/host"):
        trusted_registries(["bad/host"])
    with pytest.raises(ValueError, match="resource id"):
        trusted_registries(["myreg.azurecr.io=/not/a/registry"])
