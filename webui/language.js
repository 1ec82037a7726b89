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

  // Gradio's core module is already loaded; importing its URL again gives the same instance and its changeLocale.
  function gradioCore() {
    const url = performance.getEntriesByType("resource").map((entry) => entry.name)
      .find((name) => /\/assets\/core-[\w-]+\.js$/.test(name));
    return url ? import(url) : Promise.reject(new Error("Gradio's core module was not found among the page's scripts"));
  }

  const saved = savedLocale();
  const served = family(saved || navigator.language); // the language the server writes this page in
  let applied = !saved; // until the saved locale is in place, locale changes are ours, not the visitor's

  function applySaved() {
    gradioCore().then((core) => {
      core.changeLocale(saved);
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
}
