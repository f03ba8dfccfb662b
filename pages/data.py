"""Data: what is cached, how fresh it is, where it has holes; refresh from a source; import a file."""

from datetime import datetime, timezone

import polars as pl
import streamlit as st

from lib import ui
from lib.collect import collector_status
from lib.refresh import refresh_many
from lib.schema import DATASETS, TIMEFRAMES
from lib.sources import SOURCES
from lib.sources.binance_archive import read_any
from lib.sources.files import KINDS, ImportFormatError


active = ui.active_store()
ui.data_banner(active)
st.title("Data")
active.store.verify()  # damaged files go to quarantine and their series are recounted

st.subheader("Cached datasets")
st.caption("One row per cached series. Times are UTC; gaps are missing bars, recorded and never filled.")
table = ui.status_frame(str(active.store.root), active.store.version())
if table.is_empty():
    st.info("Nothing is cached yet.")
else:
    st.dataframe(table, hide_index=True, width="stretch", key="status_table",
                 column_config={"rows": st.column_config.NumberColumn(format="%,d")})  # 73,266, not 73266
    with_gaps = [e for e in active.store.status() if e["gap_count"]]
    for entry in with_gaps:
        with st.expander(f"{entry['dataset']} {entry['exchange']} {entry['symbol']} {entry['timeframe']}: "
                         f"{entry['gap_count']} gaps (shown, never filled)"):
            st.dataframe(pl.DataFrame(entry["gaps"]), hide_index=True, width="stretch")
for name, beat in ui.real_store().heartbeats().items():
    st.caption(f":material/sensors: {name}: {collector_status(beat, datetime.now(timezone.utc))}")
for path in active.store.quarantined():
    st.error(f"Unreadable file moved to quarantine: `{path}`. The rest of the cache is used.")

if not ui.can_write():  # hosted-mode viewers: the write forms below are not for them
    st.info(ui.READ_ONLY_NOTE, icon=":material/lock:")
    st.stop()

store = ui.real_store()
left, right = st.columns(2)

with left, st.form("refresh_form"):
    st.subheader("Refresh from a source")
    source = st.selectbox("Source", [s for s in SOURCES if s != "demo"], key="refresh_source")
    dataset = st.selectbox("Dataset", list(DATASETS), key="refresh_dataset")
    timeframe = st.selectbox("Timeframe", list(TIMEFRAMES), index=list(TIMEFRAMES).index("1h"), key="refresh_tf")
    assets = st.multiselect("Assets", list(ui.settings().assets), default=list(ui.settings().assets))
    seconds = st.slider("Time limit (s)", 10, 600, 120, key="refresh_seconds")
    if st.form_submit_button("Refresh", type="primary"):
        bar = st.progress(0.0, text="starting")
        results = refresh_many(
            store, [(source, dataset, timeframe, None)], tuple(assets), seconds=seconds,
            progress=lambda label, rows: bar.progress(0.5, text=f"{label}: {rows} rows stored"),
        )
        bar.progress(1.0, text="done")
        for r in results:
            if r.error:
                st.error(f"{r.label}: {r.error} ({r.rows_added} rows kept)")
            else:
                st.success(f"{r.label}: {r.rows_added} new rows")

with right, st.form("import_form"):
    st.subheader("Import a file")
    limit = ui.settings().upload_limit_mb
    upload = st.file_uploader(f"CSV, Parquet or a Binance archive zip (up to {limit} MB)", type=["csv", "parquet", "zip"], key="upload")
    kind = st.selectbox("Kind", ("auto", *KINDS), key="import_kind")
    exchange = st.text_input("Exchange (blank: from the file name)", key="import_exchange", max_chars=40)
    symbol = st.text_input("Symbol (blank: from the file name)", key="import_symbol", max_chars=12)
    if st.form_submit_button("Import", type="primary") and upload is not None:
        if upload.size > limit * 2**20:
            st.error(f"{upload.name} is {upload.size / 2**20:.0f} MB; the limit is {limit} MB.")
        else:
            with ui.upload_folder() as folder:
                try:
                    imported = read_any(
                        ui.saved_upload(upload, folder), None if kind == "auto" else kind,
                        exchange.strip() or None, symbol.strip().upper() or None,
                    )
                    added = store.write(imported.dataset, imported.frame, source=f"upload:{upload.name}")
                except ImportFormatError as exc:
                    st.error(f"{upload.name} was not imported: {exc}")
                else:
                    st.success(f"{upload.name}: {imported.frame.height} rows read as {imported.dataset.name} "
                               f"({imported.layout}), {added} new rows stored.")
                    for note in imported.notes:
                        st.caption(note)
