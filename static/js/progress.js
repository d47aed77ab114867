/* Live progress of a deployment: follow ws/deployments/<id>/ and swap in the fragments
   the server renders. If the socket cannot be used, htmx polls the same page every 2 s
   (the hx-trigger on #progress only fires while window.homelabLive is not true). */
(function () {
  "use strict";
  var section = document.querySelector("[data-progress-ws]");
  if (!section || !window.WebSocket) return;
  var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  var socket, done = false;
  try {
    socket = new WebSocket(scheme + window.location.host + section.getAttribute("data-progress-ws"));
  } catch (e) { return; }
  window.homelabLive = true;

  function fragment(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html.trim();
    return holder.content.firstElementChild;
  }
  function put(id, html, parent) {
    var node = fragment(html), old = document.getElementById(id);
    if (old) old.replaceWith(node); else if (parent) parent.appendChild(node);
    if (window.htmx) window.htmx.process(node);
  }
  socket.onmessage = function (event) {
    var msg = JSON.parse(event.data);
    if (msg.type === "step") {
      var empty = document.getElementById("no-steps");
      if (empty) empty.remove();
      put("step-" + msg.id, msg.html, document.getElementById("steps-list"));
    } else if (msg.type === "status") {
      put("deployment-status", msg.html);
    } else if (msg.type === "done") {
      done = true;
      put("progress", msg.html);
      if (msg.actions_html) put("deployment-actions", msg.actions_html);
    }
  };
  socket.onclose = function () { if (!done) window.homelabLive = false; };
  socket.onerror = function () { window.homelabLive = false; };
})();
