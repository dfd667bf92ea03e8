# Two commands on a fresh machine: `make run` (install + start the app), `make test` (install + run every test).
# Both install through scripts/setup.sh, as CI (.ci/run) and the Dockerfile do.
# PYTEST_ARGS (on the command line or in the environment) narrows the tests:
#   make test PYTEST_ARGS="-x -q tests/cli/test_cli.py"
.PHONY: run test walkthrough

PYTEST_ARGS ?=

run:
	scripts/setup.sh
	.venv/bin/python app.py

test:
	scripts/setup.sh --dev
	.venv/bin/python -m pytest $(PYTEST_ARGS)

walkthrough:
	scripts/setup.sh
	.venv/bin/python -m visualizer analyze "the dog likes food"
