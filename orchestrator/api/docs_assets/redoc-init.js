// Starts ReDoc on /redoc. A file of its own rather than an inline script, so the page runs
// under a Content-Security-Policy that allows scripts from this server only.
(function () {
  "use strict";
  var root = document.getElementById("redoc");
  // ReDoc's styles are <style> elements it inserts; the CSP admits them by this page's nonce.
  var options = { nonce: root.getAttribute("data-nonce") };
  Redoc.init(root.getAttribute("data-openapi-url"), options, root);
})();
