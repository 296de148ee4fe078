import pytest

from shared.settings import SETTINGS, Settings


def test_defaults_when_nothing_is_set():
    s = Settings.from_env({})
    assert s.arm_endpoint == "https://management.azure.com"
    assert s.arm_credential == "default"
    assert s.registries == ()
    assert s.discovery_resource_groups == ()
    assert s.retention_days == 90


def test_discovery_defaults_to_the_default_resource_group_and_can_be_turned_off():
    env = {"ACR_DEPLOY_RESOURCE_GROUP": "apps-rg"}
    assert Settings.from_env(env).discovery_resource_groups == ("apps-rg",)
    env["ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS"] = "-"
    assert Settings.from_env(env).discovery_resource_groups == ()
    env["ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS"] = " a , b ,"
    assert Settings.from_env(env).discovery_resource_groups == ("a", "b")


def test_broken_values_fail_loudly_with_the_setting_name():
    with pytest.raises(ValueError, match="ACR_DEPLOY_ARM_CREDENTIAL"):
        Settings.from_env({"ACR_DEPLOY_ARM_CREDENTIAL": "password"})
    with pytest.raises(ValueError, match="ACR_DEPLOY_DISCOVERY_TTL_SECONDS"):
        Settings.from_env({"ACR_DEPLOY_DISCOVERY_TTL_SECONDS": "soon"})
    for bad in ("0", "-1", "90d", "²", "99999999"):
        with pytest.raises(ValueError, match="ACR_DEPLOY_RETENTION_DAYS"):
            Settings.from_env({"ACR_DEPLOY_RETENTION_DAYS": bad})
    assert Settings.from_env({"ACR_DEPLOY_RETENTION_DAYS": " 30 "}).retention_days == 30


def test_every_setting_is_documented():
    for name, (_, description) in SETTINGS.items():
        assert description.strip(), name
