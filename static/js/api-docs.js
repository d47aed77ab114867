/* Starts the vendored Swagger UI on /api/v1/docs. A static file, so the page needs no
   inline script. The settings come from the page (a JSON script tag the server wrote);
   requests made with "Try it out" carry the CSRF token, since the browser signs in with
   its session. */
(function () {
  "use strict";

  function start() {
    var settings = JSON.parse(document.getElementById("swagger-settings").textContent);
    var csrfToken = document.body.getAttribute("data-csrf-token");
    settings.dom_id = "#swagger-ui";
    settings.presets = [window.SwaggerUIBundle.presets.apis];
    settings.layout = "BaseLayout";
    settings.requestInterceptor = function (request) {
      if (csrfToken) request.headers["X-CSRFToken"] = csrfToken;
      return request;
    };
    window.SwaggerUIBundle(settings);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
