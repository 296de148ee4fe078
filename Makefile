# Two commands set up a fresh machine: `make demo` (the local sandbox, end to end) and
# `make test` (the whole suite). Both install what they need first (idempotent).
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
NPMSTAMP:= node_modules/.installed
# checkov has ~90 exact pins of its own: it lives in a separate venv (requirements-infra.txt).
CKVSTAMP:= .venv-checkov/.installed

.PHONY: setup test demo bench soak clean sysdeps

# sysdeps first: on a bare Debian/Ubuntu, `python3 -m venv` itself needs python3-venv.
setup: sysdeps $(STAMP) $(NPMSTAMP) $(CKVSTAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements-dev.txt
	$(VPY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# Azurite, pinned in package.json (3.35.0: newest release that runs on Node 20).
$(NPMSTAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NPMSTAMP)

$(CKVSTAMP): requirements-infra.txt
	test -x .venv-checkov/bin/python || $(PY) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install -q -r requirements-infra.txt
	touch $(CKVSTAMP)

# Debian's docker-registry (a real OCI registry with push notifications) and skopeo (pushes
# without a Docker engine). Installed when missing and we are root; otherwise say so.
# shellcheck lints the azd hooks (tests/infra); python3-venv makes `python3 -m venv` work.
# chromium: the browser tests (tests/browser) drive Debian's build through Playwright, whose own
# browser download cannot be reached from the build machines.
SYSPKGS := docker-registry skopeo shellcheck chromium
sysdeps:
	@missing=""; for tool in $(SYSPKGS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	$(PY) -c "import ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null) \
	  || echo "warning: could not install$$missing; the sandbox will send events directly without a registry"; \
	else echo "note: missing$$missing (need root for apt-get); the sandbox will send events directly without a registry"; fi

test: setup
	$(VPY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(VPY) -m devtools.sandbox demo $(DEMO_ARGS)

# Many seeds of the invariant scenarios (tests/scenario/invariants.py); prints seeds, pushes, faults,
# kills and violations. SOAK_SEEDS=N, SOAK_FIRST_SEED=K to choose.
SOAK_SEEDS ?= 200
SOAK_FIRST_SEED ?= 1000
soak: setup
	ACR_DEPLOY_SOAK_SEEDS=$(SOAK_SEEDS) ACR_DEPLOY_SOAK_FIRST_SEED=$(SOAK_FIRST_SEED) \
	  $(VPY) -m pytest tests/scenario/test_invariants.py -q -p no:randomly $(PYTEST_ARGS)

bench: setup
	$(VPY) -m benchmarks

clean:
	rm -rf $(VENV) .venv-checkov node_modules .sandbox .pytest_cache .test-output
