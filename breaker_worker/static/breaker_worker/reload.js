// Reloads a breaker's page while a probe it asked for is pending (the element with
// data-tb-reload="SECONDS" is there only then), unless the operator has started to edit the
// form: a reload would throw their input away. A file, not an inline script, so that a
// Content-Security-Policy of script-src 'self' allows it.
"use strict";
(() => {
  const pending = document.querySelector("[data-tb-reload]");
  if (!pending) {
    return;
  }
  let edited = false;
  const stop = () => {
    edited = true;
    const note = document.querySelector(".tb-reload-note");
    if (note) {
      note.textContent = "Not reloading while you edit this page: save it, or reload it to see the result.";
    }
  };
  document.addEventListener("input", stop, { once: true });
  document.addEventListener("change", stop, { once: true });
  window.setTimeout(() => {
    if (!edited) {
      window.location.reload();
    }
  }, Number(pending.dataset.tbReload) * 1000);
})();
