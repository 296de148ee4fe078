"""acr-deploy core: pure domain (`shared.domain`), ports (`shared.ports`), adapters
(`shared.adapters`), services (`shared.services`) and the composition root (`shared.bootstrap`)."""

__version__ = "0.1.0"
