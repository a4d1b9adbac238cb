"""The drill-down CSV streams: records read a chunk at a time from one statement,
each chunk written and sent, and the file is the same, byte for byte, as the
whole-list CSV (rop.report.export_csv.drill_to_csv over drill(limit=None), which
the command line still writes).

A generated demo portal with a deal titled as a formula and one with bidi
controls, on DuckDB and PostgreSQL; and a memory check that fails when the
export builds the whole list (the old route held every record, the whole CSV
text and its bytes at once).
"""

from __future__ import annotations

import json
import tracemalloc
from datetime import date
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from rop.bitrix.snapshot import load_snapshot
from rop.cli import cli
from rop.config import Settings
from rop.report import drill as drill_module
from rop.report.drill import drill, drill_chunks
from rop.report.export_csv import drill_csv_parts, drill_to_csv
from rop.report.export_safe import content_disposition
from rop.report.filter import ReportFilter
from rop.store import open_store
from rop.web import create_app
from tests.conftest import ENGINES, store_target
from tests.web_client import page_client

FORMULA = '=HYPERLINK("http://evil.example/?x","click")'
BIDI = "Сделка \u202eлаг\u202c \u2067שלום\u2069"
FROM, TO = "2026-01-01", "2026-12-31"
PERIOD = {"period": "custom", "from": FROM, "to": TO}
FIGURES = ["deals_new", "calls_total"]


def demo_portal(folder: Path, deals: int) -> Path:
    from rop.demo.generator import generate

    generate(str(folder), seed=7, deals=deals, months=6)
    path = folder / "crm.deal.list.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    rows[0]["TITLE"] = FORMULA
    rows[1]["TITLE"] = BIDI
    rows[2]["TITLE"] = "-2+3"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=ENGINES)
def target(request, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("stream")
    where = store_target(request.param, folder, request)
    with open_store(where) as store:
        load_snapshot(store, demo_portal(folder / "portal", 400))
    return where


def test_chunks_give_the_whole_list_csv_byte_for_byte(target):
    flt = ReportFilter(date.fromisoformat(FROM), date.fromisoformat(TO))
    with open_store(target) as store:
        for figure in FIGURES:
            whole = drill(store, flt, figure, limit=None)
            assert len(whole["records"]) > 20
            for lang in ("ru", "en"):
                head, chunks = drill_chunks(store, flt, figure, chunk=7)
                streamed = "".join(drill_csv_parts(head, chunks, lang))
                assert streamed == drill_to_csv(whole, lang)
    titles = drill_to_csv(whole, "ru")  # calls: the last figure
    assert titles.startswith("\ufeff")


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_web_download_equals_the_cli_file(target, tmp_path, monkeypatch, lang):
    # Chunks of 7 records: many chunks, and a formula and bidi title inside them.
    monkeypatch.setattr(drill_module, "EXPORT_CHUNK", 7)
    store = open_store(target)
    try:
        web = page_client(create_app(Settings(db=target), store), raise_server_exceptions=False)
        for figure in FIGURES:
            out = tmp_path / f"{figure}-{lang}.csv"
            result = CliRunner().invoke(cli, ["drill", "--db", target, "--from", FROM, "--to", TO,
                "--figure", figure, "--format", "csv", "--lang", lang, "--out", str(out)])  # fmt: skip
            assert result.exit_code == 0, result.output
            got = web.get("/drill.csv", params={**PERIOD, "figure": figure, "lang": lang})
            assert got.status_code == 200
            assert got.content == out.read_bytes()
            assert got.headers["content-type"] == "text/csv; charset=utf-8"
            name = f"rop-drill-{figure}-{FROM}-{TO}.csv"
            assert got.headers["content-disposition"] == content_disposition(name)
        text = web.get("/drill.csv", params={**PERIOD, "figure": "deals_new", "lang": lang}).text
        assert "'" + FORMULA.replace('"', '""') in text
        assert BIDI in text
        assert "'-2+3" in text
    finally:
        store.close()


def test_bad_filter_and_sort_are_refused_before_the_file_starts(target):
    store = open_store(target)
    try:
        web = page_client(create_app(Settings(db=target), store), raise_server_exceptions=False)
        bad_sort = web.get("/drill.csv", params={**PERIOD, "figure": "deals_new", "sort": "nope"})
        assert bad_sort.status_code == 400
        assert "nope" in bad_sort.text
        unknown = web.get("/drill.csv", params={**PERIOD, "figure": "no_such_figure"})
        assert unknown.status_code == 400
        stranger = web.get("/drill.csv", params={**PERIOD, "figure": "deals_new", "user": "999999"})
        assert 400 <= stranger.status_code < 500
    finally:
        store.close()


def test_xlsx_past_its_bound_is_refused_with_a_pointer_to_csv(target, monkeypatch):
    from rop.web import drill_view

    monkeypatch.setattr(drill_view, "XLSX_MAX_RECORDS", 10)
    store = open_store(target)
    try:
        web = page_client(create_app(Settings(db=target), store), raise_server_exceptions=False)
        got = web.get("/drill.xlsx", params={**PERIOD, "figure": "calls_total", "lang": "en"})
        assert got.status_code == 400
        assert "CSV" in got.text and "more than 10" in got.text
        small = web.get("/drill.xlsx", params={**PERIOD, "figure": "deals_won", "user": "30"})
        assert small.status_code in (200, 400)
    finally:
        store.close()


def test_the_export_holds_a_chunk_not_the_whole_list(tmp_path, monkeypatch):
    """Python's peak memory while a 10,000-call CSV streams through a real server
    stays far under the file's size; the whole-list export held the records,
    the CSV text and its bytes together (several times the file)."""
    from rop.web import serve_in_thread

    monkeypatch.setattr(drill_module, "EXPORT_CHUNK", 50)
    db = str(tmp_path / "big.duckdb")
    with open_store(db) as s:
        load_snapshot(s, demo_portal(tmp_path / "portal", 5000))
    store = open_store(db)
    # No cache, so no warm-up building the report beside the export meanwhile.
    srv = serve_in_thread(create_app(Settings(db=db), store, cache_size=0))
    params = {**PERIOD, "figure": "calls_total"}
    try:
        # Plain bytes: the gzip middleware's window (256 KiB) is not the export's.
        plain = {"accept-encoding": "identity"}
        with httpx.Client(base_url=srv.url, timeout=120, headers=plain) as client:
            # Warm: the first request loads the options, templates and modules.
            small = client.get("/drill.csv", params={**params, "user": "30"})
            assert small.status_code == 200
            tracemalloc.start()
            try:
                size = 0
                with client.stream("GET", "/drill.csv", params=params) as got:
                    assert got.status_code == 200
                    for part in got.iter_bytes():
                        size += len(part)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        srv.stop()
        store.close()
    assert size > 1_500_000  # ~10,000 calls: far more than a chunk (50 records)
    # Streamed: ~0.5 MB whatever the length (a chunk, the csv module's buffer, the
    # request's own reads). Whole: the records, the text and its bytes, ~15x the file.
    assert peak < size, f"peak {peak} bytes for a {size}-byte file"
