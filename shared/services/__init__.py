"""Use cases: intake (plan, record, enqueue), rollout (advance a deployment), the history API.
Services depend on ports only; `shared.bootstrap` gives them adapters."""
