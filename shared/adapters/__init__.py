"""Adapters: the only modules that import Azure SDKs or do network I/O."""
