// Stepmail console: small conveniences on top of pages that work without JavaScript.
// Served from 'self' under the console's CSP: no inline handlers, no eval, no other origin.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Forms that change something for good ask first (pause, end, suppress, lift).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }

  // Filters apply as soon as they change (the Show button stays for keyboards and no-JS).
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }

  // A button is pressed once: a second click while the page loads would post twice.
  for (const form of document.querySelectorAll("form[method='post']")) {
    form.addEventListener("submit", (event) => {
      if (event.defaultPrevented) {
        return;
      }
      for (const button of form.querySelectorAll("button[type='submit']")) {
        button.setAttribute("aria-disabled", "true");
        button.classList.add("busy");
      }
      if (form.dataset.sent) {
        event.preventDefault();
      }
      form.dataset.sent = "1";
    });
  }

  // The notice after an action is announced, and focus goes to it for keyboard users.
  const notice = document.getElementById("notice");
  if (notice) {
    notice.setAttribute("tabindex", "-1");
    notice.focus();
  }
});
