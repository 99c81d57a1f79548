# Vigil — the two commands a fresh machine needs: `make run` and `make test`.
.PHONY: run test lint bench venv clean

VENV := .venv/bin

venv:
	@tools/bootstrap.sh

# Run the ward monitor on the built-in demo ward.  Without a display it runs
# offscreen for 20 s and saves a screenshot to out/ward.png instead.
run: venv
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		$(VENV)/vigil run --demo; \
	else \
		echo "No display found: running offscreen for 20 s; screenshot in out/ward.png"; \
		$(VENV)/vigil run --demo --headless --seconds 20 --screenshot out/ward.png --stats-json out/run-stats.json; \
	fi

test: venv
	QT_QPA_PLATFORM=offscreen $(VENV)/python -m pytest -q

lint: venv
	$(VENV)/ruff check . && $(VENV)/ruff format --check .

bench: venv
	QT_QPA_PLATFORM=offscreen $(VENV)/python bench/render.py

clean:
	rm -rf .venv out build dist .pytest_cache .ruff_cache
