"""Study a counterexample: a self-contained HTML page per trace (:func:`write_page`), exports to
the viewers people use (:mod:`treadle.study.exports`), and the terminal view's filters."""

from __future__ import annotations

from treadle.history import atomic_write


def trace_page(path: str) -> str:
    """The study page of the trace at ``path``, as HTML text."""
    from treadle.study.extract import study_trace
    from treadle.study.page import render_page

    st = study_trace(path)
    return render_page(st.data, st.run.violation)


def write_page(trace_path: str, out: str) -> str:
    """Replay ``trace_path`` and write its study page to ``out``; returns ``out``."""
    atomic_write(out, trace_page(trace_path))
    return out


def page_beside(trace_path: str) -> tuple[str | None, str | None]:
    """Write the study page beside a trace just saved (``x.json`` -> ``x.html``): (the page's
    path, None), or (None, why it could not be drawn). Never raises: exploration's verdict
    matters more than its page."""
    import os

    out = os.path.splitext(trace_path)[0] + ".html"
    try:
        write_page(trace_path, out)
    except Exception as e:  # noqa: BLE001 - reported, never fatal
        return None, f"no study page for {trace_path}: {type(e).__name__}: {e}"
    return out, None
