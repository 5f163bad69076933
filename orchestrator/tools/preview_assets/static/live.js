// Live reload for `stepmail preview serve`: when the server says the journeys or templates
// changed, fetch this page again and swap its <main> in (the mail frames load anew).
// No reload of the page itself: the scroll position and the browser history stay.
(function () {
  "use strict";
  var shown = document.body.dataset.version;
  var status = document.getElementById("live-status");
  var busy = false;
  var again = false;

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(window.location.href, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html");
        var main = next.querySelector("main");
        if (main) {
          document.querySelector("main").replaceWith(document.importNode(main, true));
          document.title = next.title;
          shown = next.body.dataset.version;
          document.body.dataset.version = shown;
          document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
        }
      })
      .catch(function () { /* the server is restarting: the next event tries again */ })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  if (!window.EventSource) {
    return;
  }
  var source = new EventSource("/events");
  source.addEventListener("version", function (event) {
    if (status) {
      status.textContent = "live";
      status.className = "live";
    }
    if (event.data !== shown) {
      refresh();
    }
  });
  source.addEventListener("error", function () {
    if (status) {
      status.textContent = "reconnecting";
      status.className = "live off";
    }
  });
})();
