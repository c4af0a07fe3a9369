# Two entry points for a fresh machine: `make run` (the app) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test test-fast lint browser bench clean i18n

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.app-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.app-installed $@

## run: set up .venv and serve the app (digits is the default dataset)
run: $(VENV)/.app-installed
	$(BIN)/python -m streamlit run app.py --server.port $(PORT) -- --dataset digits

## browser: the system Chromium for the browser tests (Debian's package; Playwright downloads nothing), and a CJK font so
## Chinese pages render legibly in screenshots (fonts-noto-cjk)
browser:
	@if [ -x "$(CHROMIUM)" ] && fc-list :lang=zh 2>/dev/null | grep -q .; then echo "chromium: $(CHROMIUM)"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; fi

## test: set up .venv and the browser, then lint and run every test (core, pages, browser)
test: $(VENV)/.dev-installed browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile

## test-fast: skip the slow and browser tests while developing
test-fast: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m "not slow and not e2e"

## i18n: extract every _("…") into locales/messages.pot, update the Chinese catalog, compile it (.mo is committed:
## Community Cloud installs only requirements.txt). Translate new entries in locales/zh_CN/LC_MESSAGES/messages.po.
i18n: $(VENV)/.dev-installed
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --omit-header -w 120 -o locales/messages.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -l zh_CN --no-fuzzy-matching --ignore-obsolete -w 120
	$(BIN)/pybabel compile -d locales -l zh_CN --statistics

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/train_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache
