# The README's two commands (make run, make test) and the helpers around them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SHARED := ../shared/data
BOOTSTRAP_SECONDS ?= 180

.PHONY: run test sample-data demo bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

# Fetch real data first when the cache is empty (bounded in time), then serve.
# Without network the fetch fails fast and the app shows the demo market, labelled as such.
run: $(VENV)/.installed
	-$(PY) -m lib refresh --default-set --if-empty --seconds $(BOOTSTRAP_SECONDS)
	$(PY) -m streamlit run app.py --server.port 8501

test: $(VENV)/.installed-test
	$(PY) -m pytest

# Import all of ../shared/data into the cache (or CASCADE_DATA_DIR), to run the app on real data.
# Order matters where two files hold the same series: the richer file goes last and wins.
sample-data: $(VENV)/.installed
	$(PY) -m lib import $(SHARED)/ohlcv/binance_spot_*_1h_ohlcv.parquet
	$(PY) -m lib import $(SHARED)/ohlcv/binance_spot_*USDT_1h.parquet $(SHARED)/ohlcv/binance_spot_*_1d.parquet \
		$(SHARED)/ohlcv/binance_usdm_*.parquet $(SHARED)/daily/*.csv $(SHARED)/liquidations/*.parquet \
		$(SHARED)/derivatives/binance_usdm_*_funding_rate.parquet $(SHARED)/derivatives/coinglass_open_interest_agg_1d.parquet \
		$(SHARED)/derivatives/coinglass_orderbook_depth_1pct_agg_1d.parquet $(SHARED)/derivatives/coinglass_funding_oi_weighted_1d.parquet
	$(PY) -m lib import --exchange binanceusdm-mark $(SHARED)/derivatives/binance_usdm_*_markprice_1h.parquet
	$(PY) -m lib status

demo: $(VENV)/.installed
	$(PY) -m lib demo

# Every bench/*_bench.py, then one table of figures against goals (BENCH_ARGS=--quick: smaller, minutes not an hour).
# Needs the test requirements (playwright, quantstats) and Debian chromium.
bench: $(VENV)/.installed-test
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
