"""Exports, each checked for its format: OTLP/JSON against OpenTelemetry's message definitions,
ShiViz's regex and vector clocks against happens-before, Chrome trace events' flows, Jepsen EDN
read back by treadle's own EDN reader with the same linearizability verdict."""

from __future__ import annotations

import base64
import copy
import json
import os
import re

import pytest

from treadle.cli import main

HERE = os.path.dirname(os.path.abspath(__file__))
FIGURE8 = os.path.join(HERE, "..", "histories", "raft", "figure8-leader-completeness-seed94.json")
LOCAL_READ = os.path.join(HERE, "..", "histories", "raft", "local-read-linearizability-seed0.json")


@pytest.fixture(scope="module")
def data():
    from treadle.study.extract import study_trace

    return study_trace(FIGURE8).data


def _export(tmp_path, fmt: str, trace: str = FIGURE8) -> str:
    out = tmp_path / f"x.{fmt}"
    assert main(["show", trace, "--format", fmt, "-o", str(out)]) == 0
    return out.read_text()


def test_otlp_parses_as_an_export_trace_service_request(tmp_path, data):
    pytest.importorskip("opentelemetry.proto", reason="opentelemetry-proto is in the test extra")
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    doc = json.loads(_export(tmp_path, "otlp"))
    # OTLP/JSON writes ids as hex; protobuf's JSON mapping wants base64: convert to parse
    conv = copy.deepcopy(doc)
    for rs in conv["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if sp.get(k):
                        sp[k] = base64.b64encode(bytes.fromhex(sp[k])).decode()
                for ln in sp.get("links", []):
                    for k in ("traceId", "spanId"):
                        ln[k] = base64.b64encode(bytes.fromhex(ln[k])).decode()
    req = json_format.ParseDict(conv, ExportTraceServiceRequest())
    spans = [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert all(len(s.trace_id) == 16 and len(s.span_id) == 8 for s in spans)
    ids = {s.span_id for s in spans}
    assert len(ids) == len(spans)  # unique span ids
    # a span per step (and one start span per lane, and the root)
    n_steps = data["meta"]["steps"]
    assert len(spans) == n_steps + len(data["lanes"]) + 1
    # every delivered message links its receiving step to the step that sent it
    delivered = [m for m in data["messages"] if m["fate"] in ("delivered", "duplicated")]
    links = [ln for s in spans for ln in s.links]
    assert len(links) >= len(delivered) and all(ln.span_id in ids for ln in links)
    services = {
        a.value.string_value
        for rs in req.resource_spans
        for a in rs.resource.attributes
        if a.key == "service.name"
    }
    assert {lane["id"] for lane in data["lanes"]} <= services
    errors = [s for s in spans if s.status.code == 2]
    assert any("Leader Completeness" in s.status.message for s in errors)
    for s in spans:
        assert s.start_time_unix_nano < s.end_time_unix_nano


def test_shiviz_log_has_the_regex_and_consistent_vector_clocks(tmp_path, data):
    text = _export(tmp_path, "shiviz")
    lines = text.split("\n")
    regex = lines[0]
    assert lines[1] == ""  # the multiple-executions delimiter: none
    pyre = re.compile(regex.replace("(?<", "(?P<"))
    body = "\n".join(lines[2:])
    events = [m.groupdict() for m in pyre.finditer(body)]
    assert len(events) == data["meta"]["steps"] + len(data["lanes"])
    last: dict[str, dict[str, int]] = {}
    for ev in events:
        vc = json.loads(ev["clock"])
        host = ev["host"]
        assert host in vc  # ShiViz needs the host in its own clock
        prev = last.get(host, {})
        assert vc[host] == prev.get(host, 0) + 1  # one tick per event
        assert all(vc.get(k, 0) >= v for k, v in prev.items())  # clocks only grow
        last[host] = vc
    # a delivery's clock dominates the sender's at the send (happens-before)
    from treadle.study.exports import vector_clocks

    vcs = {(u["step"], u["lane"]): vc for u, vc in vector_clocks(copy.deepcopy(data))}
    for m in data["messages"]:
        if m["fate"] == "delivered" and m.get("dup_of") is None:
            send, recv = vcs[(m["sent"], m["src"])], vcs[(m["taken"], m["dst"])]
            assert all(recv.get(k, 0) >= v for k, v in send.items())


def test_perfetto_trace_events_with_flows(tmp_path, data):
    doc = json.loads(_export(tmp_path, "perfetto"))
    evs = doc["traceEvents"]
    names = {e["args"]["name"] for e in evs if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {lane["id"] for lane in data["lanes"]} <= names
    slices = [e for e in evs if e["ph"] == "X"]
    assert len(slices) == data["meta"]["steps"] + len(data["lanes"])
    starts = {e["id"]: e for e in evs if e["ph"] == "s"}
    ends = {e["id"]: e for e in evs if e["ph"] == "f"}
    assert starts and set(starts) == set(ends)

    def inside(e):  # a flow point binds to the slice that encloses it on its thread
        return any(
            s["tid"] == e["tid"] and s["ts"] <= e["ts"] <= s["ts"] + s["dur"] for s in slices
        )

    for i, s in starts.items():
        f = ends[i]
        assert s["cat"] == f["cat"] and f["bp"] == "e" and s["ts"] < f["ts"]
        assert inside(s) and inside(f)


def test_edn_reads_back_with_the_same_verdict(tmp_path):
    from treadle.checkers.linearizability import check_history

    from treadle.codecs import read_history
    from treadle.runner import replay

    text = _export(tmp_path, "edn", LOCAL_READ)
    assert text.startswith("{:index 0, ")
    path = tmp_path / "h.edn"
    path.write_text(text)
    events = read_history(str(path), "edn")
    client = [
        e
        for e in replay(LOCAL_READ).run.history
        if e["type"] in ("invoke", "ok", "fail", "info") and "process" in e
    ]
    assert [(e["type"], e["f"], e["value"]) for e in events] == [
        (e["type"], e["f"], e["value"]) for e in client
    ]
    a = check_history(events, "kv")
    b = check_history(client, "kv")
    assert a.verdict == b.verdict == "violation"


def test_jsonl_is_the_history(tmp_path):
    from treadle import history as hist
    from treadle.trace import load_trace

    text = _export(tmp_path, "jsonl")
    events = [json.loads(x) for x in text.splitlines()]
    assert hist.digest(events) == load_trace(FIGURE8).history_sha256


def test_exports_are_reproducible(tmp_path):
    a = _export(tmp_path, "otlp")
    b = _export(tmp_path, "otlp")
    assert a == b
