// Starts Swagger UI on /docs. A file of its own rather than an inline script, so the page
// runs under a Content-Security-Policy that allows scripts from this server only.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    domNode: root,
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // the default asks validator.swagger.io: nothing leaves this server
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
