"""acr-deploy core: pure domain (`shared.domain`), ports (`shared.ports`), adapters
(`shared.adapters`), services (`shared.services`), the composition root (`shared.bootstrap`) and the
edges `function_app.py` calls (`shared.entrypoints`, `shared.http_api`)."""

__version__ = "0.1.0"
