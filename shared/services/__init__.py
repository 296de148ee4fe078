"""Use cases: intake (plan, record, enqueue), rollout (advance a deployment), the history's
questions and manual rollback (`history`).
Services depend on ports only; `shared.bootstrap` gives them adapters."""
