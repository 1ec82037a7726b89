// The interface language a visitor chooses in the footer's Settings, kept for the whole page and for later visits.
//
// Gradio's Settings only switches the front end's locale (svelte-i18n, which mirrors it in <html lang>) for the
// current page: labels already drawn stay as they were, the server keeps writing in the browser's language, and
// a reload forgets the choice. So: a change of <html lang> to the other language is saved in a cookie (which
// webui.i18n.language() reads on every request) and the page reloads; on load the saved locale is applied
// through Gradio's own changeLocale before the components are drawn. This file is one function expression;
// webui.i18n.language_head() calls it with the cookie's name inside a <script> of the page's head.
(cookieName) => {
  const YEAR_S = 365 * 24 * 3600;

  function savedLocale() {
    const entry = document.cookie.split("; ").find((part) => part.startsWith(cookieName + "="));
    return entry ? decodeURIComponent(entry.slice(cookieName.length + 1)) : null;
  }

  function saveLocale(code) {
    document.cookie = `${cookieName}=${encodeURIComponent(code)}; path=/; max-age=${YEAR_S}; SameSite=Lax`;
  }

  // The workbench's languages: Chinese for any zh-* locale, English for every other one (as the server decides).
  const family = (code) => ((code || "").toLowerCase().startsWith("zh") ? "zh" : "en");

  // Importing Gradio's core module by its URL gives the instance the page uses, and its changeLocale. This script
  // runs in the head, possibly before the browser has even requested that module (a slow or busy machine): look
  // for it among the page's resources until it appears.
  function gradioCore(waitMs = 30000) {
    const deadline = Date.now() + waitMs;
    return new Promise((resolve, reject) => {
      const look = () => {
        const url = performance.getEntriesByType("resource").map((entry) => entry.name)
          .find((name) => /\/assets\/core-[\w-]+\.js$/.test(name));
        if (url) resolve(import(url));
        else if (Date.now() > deadline) reject(new Error("Gradio's core module was not found among the page's scripts"));
        else setTimeout(look, 50);
      };
      look();
    });
  }

  const saved = savedLocale();
  const served = family(saved || navigator.language); // the language the server writes this page in
  let applied = !saved; // until the saved locale is in place, locale changes are ours, not the visitor's

  // Gradio's tab buttons drawn before the saved locale was applied can keep their first label (a race seen on busy
  // machines): give every tab whose text is an English label the saved language's text for the same key.
  function relabelTabs() {
    const tables = window.gradio_config?.i18n_translations || {};
    const english = tables.en || {};
    const chosen = tables[family(saved)] || {};
    for (const button of document.querySelectorAll(".tab-wrapper button")) {
      const key = Object.keys(english).find((k) => k.startsWith("tab.") && english[k] === button.textContent.trim());
      if (key && chosen[key] && chosen[key] !== button.textContent.trim()) button.textContent = chosen[key];
    }
  }

  function applySaved() {
    gradioCore().then((core) => {
      core.changeLocale(saved);
      for (const delay of [0, 300, 1000, 3000]) setTimeout(relabelTabs, delay);
      applied = applied || document.documentElement.lang === saved; // already in place: no change will be seen
    }).catch((error) => {
      applied = true;
      console.error("The saved interface language could not be applied:", error);
    });
  }

  new MutationObserver(() => {
    const code = document.documentElement.lang;
    if (!applied) {
      if (code === saved) applied = true;
      else applySaved(); // gradio set the browser's locale after ours: set ours again
      return;
    }
    if (family(code) !== served) {
      saveLocale(code);
      // draw everything, and ask the server for everything, in the chosen language (Settings closed, as
      // gradio's own theme switch leaves it)
      const url = new URL(window.location.href);
      url.searchParams.delete("view");
      window.location.replace(url.toString());
    } else if (saved && code !== saved) {
      saveLocale(code); // another variant of the same language (zh-CN, zh-TW): remembered, nothing to redraw
    }
  }).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });

  if (saved) applySaved();

  // Gradio's Settings offers every language it knows (33); the workbench is translated into two. The options
  // of its Language list other than these are hidden whenever the list is drawn.
  const OFFERED = new Set(["English", "简体中文"]);
  new MutationObserver(() => {
    for (const input of document.querySelectorAll("input[aria-label='Language']")) {
      let box = input.parentElement;
      for (let up = 0; box && up < 8 && !box.querySelector("[role=option]"); up++) box = box.parentElement;
      for (const option of box ? box.querySelectorAll("[role=option]") : []) {
        const hide = !OFFERED.has(option.textContent.replace("✓", "").trim()); // a ✓ marks the chosen one
        if (hide !== (option.style.display === "none")) option.style.display = hide ? "none" : "";
      }
    }
  }).observe(document.body || document.documentElement, { childList: true, subtree: true });
}
