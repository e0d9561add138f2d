# The two commands: `make demo` runs the embedded demo, `make test` runs every check. Both set up a fresh machine.
.PHONY: demo test bootstrap lint typecheck pytest bench clean

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/campuswatch models fetch --config config/demo.yaml
	.venv/bin/campuswatch demo

test: bootstrap
	@scripts/services.sh
	.venv/bin/campuswatch models fetch --models-dir .cache/models
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .
	.venv/bin/python -m pytest

bench: bootstrap
	@scripts/services.sh
	.venv/bin/python benchmarks/fleet_import.py
	.venv/bin/python benchmarks/ingest_fleet.py
	.venv/bin/python benchmarks/detect_pipeline.py
	.venv/bin/python benchmarks/tour_plan.py
	.venv/bin/campuswatch models fetch --models-dir .cache/models
	.venv/bin/python benchmarks/alarm_latency.py

clean:
	rm -rf .venv .cache data .mypy_cache .ruff_cache .pytest_cache
