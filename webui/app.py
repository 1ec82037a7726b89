"""The page: build_app(ctx) assembles the tabs; main(argv) parses launch.py's options and serves it.

Only main() calls .launch(). Nothing here imports torch: every heavy step is an engine process.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from engine.__main__ import CACHE_ENV
from engine.serve.hosts import HostGuard, is_loopback
from webui.components.render import CSS
from webui.components.wiring import bind, quiet_loads
from webui.context import AppContext
from webui.i18n import i18n, language_head, scope_sentence, t
from webui.options import parse_args, port_in_use
from webui.tabs.chat import build_chat_tab
from webui.tabs.compare import build_compare_tab
from webui.tabs.evaluate import build_evaluate_tab
from webui.tabs.export import build_export_tab
from webui.tabs.runs.tab import build_runs_tab, redraw_runs
from webui.tabs.train.tab import build_train_tab

log = logging.getLogger(__name__)
# Gradio keeps every visit's session (each component's config, 0.35 MiB for this page: tests/unit/test_sessions.py)
# until the number of sessions passes this capacity; its default, 10,000, let the server grow by gigabytes. The
# oldest visit is forgotten first: a page that old reloads to go on.
SESSION_CAPACITY = 100
LAUNCH_LIMITS = {"state_session_capacity": SESSION_CAPACITY, "run_history": False}  # what a visit may leave behind


def build_app(ctx: AppContext) -> gr.Blocks:
    # Export zips are offered from their job folders as they are: Gradio copies any other file it sends into its
    # cache (WORKSPACE/.gradio), which it empties of day-old files every hour.
    gr.set_static_paths([ctx.workspace / "exports"])
    with gr.Blocks(title="PEFT Workbench", delete_cache=(3600, 86400)) as app:
        gr.Markdown(t("app.title"), elem_id="wb-title")
        with gr.Tabs() as tabs:  # in this order: RUNS_TAB is the Runs tab's position
            build_train_tab(ctx, app)
            runs = build_runs_tab(ctx, app)
            build_chat_tab(ctx, app)
            build_evaluate_tab(ctx, app)  # before Export: measure a tune, then ship it
            build_compare_tab(ctx, app)  # methods side by side, after measuring one
            build_export_tab(ctx, app)
        # The Runs tab's timer ticks only while the tab is shown; it is redrawn at once when shown.
        shown = tabs.select(runs_tab_shown, None, runs.timer)
        shown.then(bind(redraw_runs, ctx), runs.selected, [runs.table, runs.selected, runs.listed],
                   show_progress="hidden")
    quiet_loads(app)  # after every tab has wired its load events
    return app


RUNS_TAB = 1


def log_scroll_head() -> str:
    """The <script>s for the page's head that keep every log box at its newest line (webui/log_scroll.js) and let
    Enter apply a number typed in a slider's box (webui/slider_enter.js)."""
    return "".join(f"<script>({Path(__file__).with_name(name).read_text(encoding='utf-8')})();</script>"
                   for name in ("log_scroll.js", "slider_enter.js"))


def runs_tab_shown(event: gr.SelectData) -> gr.Timer:
    return gr.Timer(active=event.index == RUNS_TAB)


def exposure_warning(host: str, share: bool, auth: tuple[str, str] | None) -> str | None:
    """The warning printed when the page is reachable from other machines without a login."""
    if auth is not None or (is_loopback(host) and not share):
        return None
    return (f"warning: serving on {host}{' with --share' if share else ''} without --auth: anyone who can reach "
            "this address can train, read your runs and download models.")


def address_lines(local_url: str, share: bool) -> str:
    """What the terminal says once the page answers: its local address, as gradio says it, and how to get a public
    link with this product's own option (gradio's own line named `share=True` in `launch()`, which a person
    starting launch.py cannot set). With --share, gradio prints the public URL itself, or why there is none."""
    lines = [f"* Running on local URL:  {local_url}"]
    if not share:
        lines.append("* To create a public link, start it with `python launch.py --share` (and --auth USER:PASS).")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's requests to its own server, one INFO line each
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            print("error: --auth must be USER:PASS.", file=sys.stderr)
            return 2
        auth = (user, password)
    missing = [folder for folder in args.allow_path if not Path(folder).expanduser().is_dir()]
    if missing:
        print(f"error: --allow-path {missing[0]} is not a folder: name an existing folder.", file=sys.stderr)
        return 2
    if port_in_use(args.host, args.port):
        print(f"error: port {args.port} on {args.host} is already in use (is PEFT Workbench already running?): "
              "stop that server or choose another port with --port.", file=sys.stderr)
        return 2
    warning = exposure_warning(args.host, args.share, auth)
    if warning:
        print(warning, file=sys.stderr)
    ctx = AppContext.create(Path(args.workspace), allowed=[Path(folder) for folder in args.allow_path])
    # Uploads land in the workspace too, so nothing the page touches lies outside it.
    os.environ["GRADIO_TEMP_DIR"] = str(ctx.workspace / ".gradio")
    # Tokenized rows that later runs on the same data reuse (engine.data.tokcache), inherited by every engine process.
    os.environ.setdefault(CACHE_ENV, str(ctx.workspace / "cache"))
    ctx.jobs.clean_leftovers()
    app = build_app(ctx)
    ctx.jobs.tick()  # re-attach jobs left by a previous launch and start queued ones where a lane is free
    ctx.jobs.start()
    try:
        app.queue(default_concurrency_limit=8).launch(
            server_name=args.host, server_port=args.port, share=args.share, auth=auth,
            allowed_paths=[str(ctx.workspace)], i18n=i18n(), head=language_head() + log_scroll_head(), css=CSS,
            footer_links=["settings"], **LAUNCH_LIMITS, quiet=True, prevent_thread_lock=True,
            # gradio's own check that the page answers on localhost (a HEAD request with a 3-second timeout, made
            # before anything is cached) ended the server on a busy machine with "a shareable link must be created"
            _frontend=False,
            app_kwargs={"middleware": [Middleware(HostGuard, hosts=(args.host, *args.allow_host), share=args.share,
                                                  word=scope_sentence)]},  # a browser's refusal in its language
        )
        print(address_lines(f"{app.protocol}://{app.server_name}:{app.server_port}", args.share), flush=True)
        app.block_thread()  # until Ctrl+C, as launch() itself would have
    finally:
        ctx.jobs.shutdown()
        ctx.chat.stop()
        ctx.serve.stop()
    return 0
