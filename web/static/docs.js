// Starts Swagger UI on /docs (web/docs.py): no inline script, so the page keeps a strict CSP.
"use strict";
window.addEventListener("load", () => {
  const box = document.getElementById("swagger-ui");
  // eslint-disable-next-line no-undef
  SwaggerUIBundle({ url: box.dataset.openapiUrl, dom_id: "#swagger-ui", deepLinking: true });
});
