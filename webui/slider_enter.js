// Enter in a slider's number box applies the typed number at once: gradio's slider takes a typed number only when
// its box loses focus (its release event, which the Train tab's dataset inspection listens to), and Enter did
// nothing until the visitor clicked elsewhere. So Enter leaves the box, as Tab does. This file is one function
// expression; webui.app's page head calls it inside a <script>.
() => {
  document.addEventListener("keydown", (event) => {
    const box = event.target;
    if (event.key === "Enter" && box instanceof HTMLInputElement && box.type === "number"
        && box.closest(".head")?.parentElement?.querySelector("input[type=range]")) {
      event.preventDefault();
      box.blur();
    }
  }, true);
}
