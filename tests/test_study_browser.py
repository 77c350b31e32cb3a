"""The study page in a real browser: Playwright driving Debian's chromium (no browser download).

Each test loads a page from file://, checks what a person would look at (lanes, arrows, the
violation, the state panel), uses the scrubber and a filter, and asserts there were no console
errors and no network requests. Screenshots go to the test's tmp dir (``pytest --basetemp``
keeps them).
"""

from __future__ import annotations

import glob
import os
import re
import shutil

import pytest

from treadle.cli import main

CHROMIUM = os.environ.get("TREADLE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HERE = os.path.dirname(os.path.abspath(__file__))
FIGURE8 = os.path.join(HERE, "..", "histories", "raft", "figure8-leader-completeness-seed94.json")
# a saved PBFT Agreement counterexample (their names carry the seed, which may change)
PBFT = (
    sorted(glob.glob(os.path.join(HERE, "..", "histories", "pbft", "*-agreement-*.json"))) or [""]
)[0]


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None


if _missing() and os.environ.get("CI"):
    raise RuntimeError(f"browser tests cannot run in CI: {_missing()}")
pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


class Page:
    """A loaded study page, with what it logged and fetched."""

    def __init__(self, browser, path: str):
        self.page = browser.new_page(viewport={"width": 1500, "height": 950})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = "file://" + os.path.abspath(path)
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=10_000)

    def lanes(self) -> list[str]:
        return self.page.eval_on_selector_all("#lanehead div", "els => els.map(e => e.textContent)")

    def count(self, selector: str) -> int:
        return self.page.eval_on_selector_all(selector, "els => els.length")

    def field(self, node: str, name: str) -> str:
        return self.page.inner_text(
            f'.card[data-node="{node}"] tr[data-field="{name}"] td:nth-child(2)'
        )

    def scrub(self, step: int) -> None:
        self.page.eval_on_selector(
            "#slider", "(s, v) => { s.value = v; s.dispatchEvent(new Event('input')); }", step
        )

    def clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.requests == [self.url], self.requests  # nothing but the page itself


def _page(tmp_path, trace: str, name: str) -> str:
    out = str(tmp_path / f"{name}.html")
    assert main(["show", trace, "--html", out]) == 0
    return out


def figure8_facts(data):
    """What the Figure 8 verdict is about, from its structured references (the saved trace is
    re-shrunk now and then: nothing here is hard-coded): the later leader, its term, the index
    it lacks, who committed it, in which term, and the step of that commit."""
    v = data["verdict"]
    d = v["details"]
    commit = next(
        r
        for r in v["related"]
        if r["lane"] == d["committed_by"] and r["text"].startswith("commit ")
    )
    return (
        v["step"],
        d["node"],
        d["term"],
        d["index"],
        d["committed_by"],
        d["committed_term"],
        commit["step"],
    )


def test_figure8_page_chart_scrubber_filters(browser, tmp_path):
    from treadle.study.extract import state_at, study_trace

    data = study_trace(FIGURE8).data
    vstep, leader, term, index, committer, cterm, commit_step = figure8_facts(data)
    p = Page(browser, _page(tmp_path, FIGURE8, "figure8"))
    # the chart: a lane per node and client, an arrow per message
    assert p.lanes() == [lane["id"] for lane in data["lanes"]]
    assert {"n1", "n2", "n3"} <= set(p.lanes()) and any(x.startswith("c") for x in p.lanes())
    assert p.count("#chartsvg g.msg") == len(data["messages"])
    lost = sum(
        1 for m in data["messages"] if m["fate"].startswith("lost") or m["fate"] == "dropped"
    )
    assert p.count("#chartsvg g.msg.lost") == lost
    assert p.count("#chartsvg rect.partition") == len(data["partitions"])
    assert p.count("#chartsvg rect.down") == len(data["down"])
    assert p.count("#chartsvg line.violation-line") == 1
    # each leader is labelled with its term, as the legend (built from this run) says
    texts = p.page.eval_on_selector_all("#chartsvg text", "els => els.map(e => e.textContent)")
    leaders = [e for e in data["events"] if e["type"] == "became-leader"]
    assert sorted(t for t in texts if re.fullmatch(r"L\d+", t)) == sorted(
        f"L{e['term']}" for e in leaders
    )
    assert f"labelled L{leaders[0]['term']}: term" in p.page.inner_text(".st-legend")
    # hovering an arrow shows the whole message: the longest one, uncut
    longest = max(data["messages"], key=lambda m: len(m["text"]))
    tips = p.page.eval_on_selector_all(
        "#chartsvg g.msg line[data-tip]", "els => els.map(e => e.dataset.tip)"
    )
    k = next(i for i, t in enumerate(tips) if longest["text"] in t)
    line = p.page.query_selector_all("#chartsvg g.msg line[data-tip]")[k]
    line.scroll_into_view_if_needed()
    box = line.bounding_box()
    p.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert longest["text"] in p.page.inner_text("#tipbox")
    # the replay command, with a copy button
    assert p.page.inner_text("#replaycmd") == f"treadle replay {FIGURE8}"
    p.page.click("#copy")
    p.page.wait_for_function("document.getElementById('copy').textContent !== 'copy'")
    assert p.page.inner_text("#copy") == "copied"
    # the page opens at the violation: the later leader has just been elected, and the entry
    # its log holds at the committed index the verdict names is highlighted
    assert f"step {vstep} /" in p.page.inner_text("#stepline")
    assert "Leader Completeness fails here" in p.page.inner_text("#stepline")
    assert p.field(leader, "term") == str(term)
    assert p.field(leader, "role") == "leader"
    hit = p.page.inner_text(f'.card[data-node="{leader}"] tr[data-field="log"] .chip.hit')
    assert hit.startswith(f"{index} t") and not hit.startswith(f"{index} t{cterm} ")
    assert "ref" in p.page.get_attribute(f'.card[data-node="{leader}"]', "class")
    p.page.screenshot(path=str(tmp_path / "figure8-violation.png"))
    # the earlier step: the other node commits up to the index in its later term by counting
    # replicas. The verdict lists it; clicking the link scrubs there.
    p.page.click(f'#verdict a.step[data-step="{commit_step}"]')
    assert f"step {commit_step} /" in p.page.inner_text("#stepline")
    assert int(p.field(committer, "commit_index")) >= index
    assert p.field(committer, "term") == str(cterm)
    row = f'.card[data-node="{committer}"] tr[data-field="commit_index"]'
    assert p.page.get_attribute(row, "class") == "chg"  # it changed at this very step
    # keys n/p step through the run
    p.page.keyboard.press("n")
    assert f"step {commit_step + 1} /" in p.page.inner_text("#stepline")
    p.page.keyboard.press("p")
    p.page.keyboard.press("p")
    assert f"step {commit_step - 1} /" in p.page.inner_text("#stepline")
    # the slider: state and pending messages as the data says
    mid = vstep // 2
    p.scrub(mid)
    assert f"step {mid} /" in p.page.inner_text("#stepline")
    st = state_at(data, mid)
    for node in ("n1", "n2", "n3"):
        if st[node].get("status") != "down":
            assert p.field(node, "role") == st[node]["role"]
            assert p.field(node, "term") == str(st[node]["term"])
    pending = int(p.page.inner_text("#npending"))
    flying = [
        m for m in data["messages"] if m["sent"] <= mid and (m["taken"] is None or m["taken"] > mid)
    ]
    assert pending == len(flying)
    p.page.screenshot(path=str(tmp_path / "figure8-middle.png"))
    # filters: hide n3's lane, then only the causal past of the violation
    rows_before = p.count("#rows .r")
    p.page.uncheck('#f-lanes input[data-lane="n3"]')
    assert "n3" not in p.lanes()
    assert p.count('.card[data-node="n3"]') == 0
    touching = sum(1 for m in data["messages"] if "n3" in (m["src"], m["dst"]))
    assert p.count("#chartsvg g.msg") == len(data["messages"]) - touching
    p.page.check('#f-lanes input[data-lane="n3"]')
    p.page.check("#f-causal")
    rows_causal = p.count("#rows .r")
    assert 0 < rows_causal < rows_before
    assert p.count(f'#rows .r.viol[data-step="{vstep}"]') == 1
    p.page.screenshot(path=str(tmp_path / "figure8-causal.png"))
    p.page.uncheck("#f-causal")
    # collapse heartbeats (or, if this run has none, the commonest kind)
    kinds = [m["kind"] for m in data["messages"]]
    kind = "AppendEntries (no entries)"
    if kind not in kinds:
        kind = max(set(kinds), key=kinds.count)
    p.page.uncheck(f'#f-kinds input[data-kind="{kind}"]')
    assert p.count("#chartsvg g.msg") == len(data["messages"]) - kinds.count(kind)
    p.clean()


def test_pbft_page_violation_and_state(browser, tmp_path):
    from treadle.study.extract import study_trace

    data = study_trace(PBFT).data
    v = data["verdict"]
    p = Page(browser, _page(tmp_path, PBFT, "pbft"))
    assert p.lanes()[:4] == ["n1", "n2", "n3", "n4"]
    assert f"step {v['step']} /" in p.page.inner_text("#stepline")
    # the replicas the verdict names are outlined, and their state is shown at the step
    for node in v["refs"]["nodes"]:
        assert "ref" in p.page.get_attribute(f'.card[data-node="{node}"]', "class")
    node = v["refs"]["nodes"][0]
    assert p.field(node, "view") == str(_state_at(data, v["step"])[node]["view"])
    # describe(): the sequence number the verdict names is the highlighted chip of its replicas
    for node in v["refs"]["nodes"]:
        hits = p.page.eval_on_selector_all(
            f'.card[data-node="{node}"] tr[data-field="seq"] .chip.hit',
            "els => els.map(e => e.textContent)",
        )
        assert [h.split(" ")[0] for h in hits] == [str(i) for i in v["refs"]["indexes"]], hits
    # the legend explains this run's marks (PBFT's kinds, not Raft's leaders), in their colours
    legend = p.page.inner_text(".st-legend")
    assert "leader" not in legend and "execute (" in legend
    colors = p.page.eval_on_selector_all(
        ".st-legend .mark-kind[data-kind]",
        "els => Object.fromEntries(els.map(e => [e.dataset.kind, e.querySelector('path').getAttribute('fill')]))",
    )
    drawn = p.page.eval_on_selector_all(
        "#chartsvg path.mark", "els => els.map(e => [e.dataset.kind, e.getAttribute('fill')])"
    )
    assert drawn and all(colors[kind] == fill for kind, fill in drawn), (colors, drawn[:5])
    texts = p.page.eval_on_selector_all("#chartsvg text", "els => els.map(e => e.textContent)")
    assert not [t for t in texts if re.fullmatch(r"L\d*", t)]  # no leader labels on PBFT
    p.page.uncheck('#f-lanes input[data-lane="n4"]')
    assert "n4" not in p.lanes()
    p.page.screenshot(path=str(tmp_path / "pbft-violation.png"))
    p.clean()


def test_history_protocol_view_and_lin_page(browser, tmp_path):
    """check --model raft --html on a recorded history draws the protocol view (lanes, marks,
    the verdict), and a trace whose verdict is linearizability carries the lin view, linked to
    the steps of its operations."""
    from treadle.runner import replay

    hist_path = str(tmp_path / "h.jsonl")
    from treadle import history as hist

    hist.write_jsonl(hist_path, replay(FIGURE8).run.history)
    out = str(tmp_path / "check.html")
    assert main(["check", hist_path, "--model", "raft", "--html", out]) == 1
    p = Page(browser, out)
    assert {"n1", "n2", "n3"} <= set(p.lanes())
    assert p.count("#chartsvg path.mark") > 0
    assert "Leader Completeness" in p.page.inner_text("#verdict")
    assert p.count("#lin") == 0  # the protocol view, not the linearizability legend
    p.page.screenshot(path=str(tmp_path / "check-raft.png"))
    p.clean()
    lin_trace = os.path.join(
        HERE, "..", "histories", "raft", "local-read-linearizability-seed0.json"
    )
    p = Page(browser, _page(tmp_path, lin_trace, "local-read"))
    assert p.count("#lin .tl .op") > 0  # the lin timeline
    assert p.count("#chartsvg rect.cop.ref") >= 1  # the operations it names, on the chart
    links = p.page.eval_on_selector_all("#lin a.step", "els => els.map(e => +e.dataset.step)")
    assert links
    p.page.click(f'#lin a.step[data-step="{links[-1]}"]')
    assert f"step {links[-1]} /" in p.page.inner_text("#stepline")
    p.page.screenshot(path=str(tmp_path / "local-read.png"))
    p.clean()


def _state_at(data, step):
    from treadle.study.extract import state_at

    return state_at(data, step)
