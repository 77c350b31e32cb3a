"""The study page in a real browser: Playwright driving Debian's chromium (no browser download).

Each test loads a page from file://, checks what a person would look at (lanes, arrows, the
violation, the state panel), uses the scrubber and a filter, and asserts there were no console
errors and no network requests. Screenshots go to the test's tmp dir (``pytest --basetemp``
keeps them).
"""

from __future__ import annotations

import glob
import os
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


def test_figure8_page_chart_scrubber_filters(browser, tmp_path):
    from treadle.study.extract import study_trace

    data = study_trace(FIGURE8).data
    p = Page(browser, _page(tmp_path, FIGURE8, "figure8"))
    # the chart: a lane per node and client, an arrow per message
    assert p.lanes() == ["n1", "n2", "n3", "c1", "c2", "c3"]
    assert p.count("#chartsvg g.msg") == len(data["messages"])
    lost = sum(
        1 for m in data["messages"] if m["fate"].startswith("lost") or m["fate"] == "dropped"
    )
    assert lost > 0 and p.count("#chartsvg g.msg.lost") == lost
    assert p.count("#chartsvg rect.partition") == len(data["partitions"]) == 2
    assert p.count("#chartsvg rect.down") == len(data["down"])
    assert p.count("#chartsvg line.violation-line") == 1
    # hovering an arrow shows the whole message: the longest one, uncut
    longest = max(data["messages"], key=lambda m: len(m["text"]))
    assert len(longest["text"]) > 160  # longer than the terminal table's cut
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
    # the page opens at the violation: n1 has just become leader of term 6 and its log holds
    # term 3's entry at index 1, the committed index the verdict names (highlighted)
    assert "step 192" in p.page.inner_text("#stepline")
    assert "Leader Completeness fails here" in p.page.inner_text("#stepline")
    assert p.field("n1", "term") == "6"
    assert p.field("n1", "role") == "leader"
    hit = p.page.inner_text('.card[data-node="n1"] tr[data-field="log"] .chip.hit')
    assert hit.startswith("1 t3 ")
    assert "ref" in p.page.get_attribute('.card[data-node="n1"]', "class")
    p.page.screenshot(path=str(tmp_path / "figure8-violation.png"))
    # the earlier step: n2 commits index 3 (so index 1, from term 1) in term 4 by counting
    # replicas. The verdict lists it; clicking the link scrubs there.
    p.page.click('#verdict a.step[data-step="173"]')
    assert "step 173 /" in p.page.inner_text("#stepline")
    assert p.field("n2", "commit_index") == "3"
    assert p.field("n2", "term") == "4"
    chg = p.page.get_attribute('.card[data-node="n2"] tr[data-field="commit_index"]', "class")
    assert chg == "chg"  # it changed at this very step
    # keys n/p step through the run
    p.page.keyboard.press("n")
    assert "step 174 /" in p.page.inner_text("#stepline")
    p.page.keyboard.press("p")
    p.page.keyboard.press("p")
    assert "step 172 /" in p.page.inner_text("#stepline")
    # the slider
    p.scrub(35)
    assert "step 35 /" in p.page.inner_text("#stepline")
    assert p.field("n2", "role") == "leader"
    pending = int(p.page.inner_text("#npending"))
    flying = [
        m for m in data["messages"] if m["sent"] <= 35 and (m["taken"] is None or m["taken"] > 35)
    ]
    assert pending == len(flying)
    p.page.screenshot(path=str(tmp_path / "figure8-step35.png"))
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
    assert p.count('#rows .r.viol[data-step="192"]') == 1
    p.page.screenshot(path=str(tmp_path / "figure8-causal.png"))
    p.page.uncheck("#f-causal")
    # collapse heartbeats: AppendEntries without entries disappear from the chart
    heartbeats = sum(1 for m in data["messages"] if m["kind"] == "AppendEntries (no entries)")
    assert heartbeats > 0
    p.page.uncheck('#f-kinds input[data-kind="AppendEntries (no entries)"]')
    assert p.count("#chartsvg g.msg") == len(data["messages"]) - heartbeats
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
