# Two commands on a fresh machine: `make run` (install + start the app), `make test` (install + run every test).
.PHONY: run test walkthrough bench

run:
	scripts/setup.sh
	.venv/bin/python app.py

test:
	scripts/setup.sh --dev
	.venv/bin/python -m pytest

walkthrough:
	scripts/setup.sh
	.venv/bin/python -m visualizer analyze "the dog likes food"
