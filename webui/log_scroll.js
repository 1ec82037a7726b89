// Every log box of the page (class wb-log: the Train tab's, the Runs tab's, the Export tab's) follows its newest
// line, unless the visitor has scrolled up to read: then it stays where they are until they scroll back down.
//
// Gradio's own Textbox autoscroll did not follow these logs, whose whole value is replaced on each poll: in
// Chromium the Train tab's log stayed at scrollTop 0 while it grew from 1 to 42 lines. So a light check, twice a
// second, scrolls a box whose text has changed when it was at its bottom before the change. This file is one
// function expression; webui.app's page head calls it inside a <script>.
() => {
  const seen = new WeakMap(); // box -> {length, atBottom} at the last check
  setInterval(() => {
    for (const box of document.querySelectorAll(".wb-log textarea")) {
      const last = seen.get(box);
      if (last && box.value.length !== last.length && last.atBottom) {
        box.scrollTop = box.scrollHeight;
      }
      const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 8;
      seen.set(box, {length: box.value.length, atBottom});
    }
  }, 500);
}
