/* Live progress of a job: follow ws/jobs/<id>/ and swap in the fragments the server
   renders (steps and items by id, the status line, the whole section when done). If the
   socket cannot be used, htmx polls the same page every 2 s (the hx-trigger on #job only
   fires while window.homelabLive is not true). */
(function () {
  "use strict";
  var section = document.querySelector("[data-job-ws]");
  if (!section || !window.WebSocket) return;
  var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  var socket, done = false;
  try {
    socket = new WebSocket(scheme + window.location.host + section.getAttribute("data-job-ws"));
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
      put("step-" + msg.id, msg.html, document.getElementById("job-steps"));
    } else if (msg.type === "item") {
      var wrap = document.getElementById("job-items-wrap");
      if (wrap) wrap.hidden = false;
      put("item-" + msg.id, msg.html, document.getElementById("job-items"));
    } else if (msg.type === "status") {
      put("job-status", msg.html);
    } else if (msg.type === "done") {
      done = true;
      put("job", msg.html);
    }
  };
  socket.onclose = function () { if (!done) window.homelabLive = false; };
  socket.onerror = function () { window.homelabLive = false; };
})();
