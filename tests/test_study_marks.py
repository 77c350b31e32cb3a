"""The study page's legend explains the protocol marks of the run it shows (treadle/study/marks.py):
a PBFT page lists PBFT's event kinds, never Raft's "became leader of term 6"."""

from __future__ import annotations

import os
import re

from treadle.cli import main
from treadle.study.marks import DEFAULT_COLOR, color_of, legend_html, protocol_marks

HISTORIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "histories")
FIGURE8 = os.path.join(HISTORIES, "raft", "figure8-leader-completeness-seed94.json")
PBFT = os.path.join(HISTORIES, "pbft", "weak-quorum-agreement-seed2.json")


def legend_of(page: str) -> str:
    start = page.index("<span class='marks'>")
    return page[start : page.index("</span></span>", start)]


def page_and_data(tmp_path, trace: str):
    from treadle.study.extract import study_trace

    out = tmp_path / "page.html"
    assert main(["show", trace, "--html", str(out)]) == 0
    return out.read_text(), study_trace(trace).data


def recorded_kinds(data) -> set[str]:
    return {
        e["type"]
        for e in data["events"]
        if "process" not in e and e["type"] not in ("crash", "restart", "partition", "heal")
    }


def test_a_pbft_page_explains_pbft_marks_not_raft_ones(tmp_path):
    page, data = page_and_data(tmp_path, PBFT)
    legend = legend_of(page)
    kinds = set(re.findall(r"data-kind='([^']+)'", legend))
    assert kinds == recorded_kinds(data) and "execute" in kinds
    assert "leader" not in legend and "term" not in legend
    assert "leader of term" not in page


def test_a_raft_page_names_its_leader_label_from_the_run(tmp_path):
    page, data = page_and_data(tmp_path, FIGURE8)
    legend = legend_of(page)
    first_leader = next(e for e in data["events"] if e["type"] == "became-leader")
    leaders = sum(e["type"] == "became-leader" for e in data["events"])
    term = first_leader["term"]
    assert f"became-leader ({leaders}, labelled L{term}: term {term})" in legend
    assert set(re.findall(r"data-kind='([^']+)'", legend)) == recorded_kinds(data)


def test_marks_are_the_run_s_own_kinds_most_frequent_first():
    events = [
        {"index": 0, "process": "c1", "type": "invoke", "f": "write", "value": 1},
        {"index": 1, "node": "n1", "type": "opened-breaker", "upstream": "db"},
        {"index": 2, "node": "n1", "type": "crash"},
        {"index": 3, "node": "n2", "type": "opened-breaker", "upstream": "cache"},
        {"index": 4, "node": "n2", "type": "became-leader", "term": 7},
        {"index": 5, "process": "c1", "type": "ok", "f": "write", "value": 1},
    ]
    marks = protocol_marks(events)
    assert [(m["type"], m["count"]) for m in marks] == [("opened-breaker", 2), ("became-leader", 1)]
    assert marks[0]["example"] == 'opened-breaker upstream="db"' and marks[0]["label"] is None
    assert (marks[1]["label"], marks[1]["field"], marks[1]["example_label"]) == ("L", "term", "L7")
    # a kind no reference system records gets a colour of its own, the same one every time
    assert color_of("opened-breaker") == protocol_marks(events)[0]["color"]
    assert len({color_of(k) for k in ("a", "b", "c", "d", "e", "f", "g", "h", "i")}) > 1
    legend = legend_html(marks)
    assert "opened-breaker (2)" in legend and "labelled L7: term 7" in legend
    assert legend_html([]) == "<span class='marks'>no protocol events recorded</span>"
    many = protocol_marks([{"node": "n1", "type": f"kind-{i}"} for i in range(14)])
    assert "4 more kinds (4 events)" in legend_html(many) and DEFAULT_COLOR in legend_html(many)


def test_legend_text_is_escaped():
    legend = legend_html(protocol_marks([{"node": "n1", "type": "<b>x</b>", "v": "'q'"}]))
    assert "<b>x</b>" not in legend and "&lt;b&gt;x&lt;/b&gt;" in legend
