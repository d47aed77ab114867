/* Small helpers for the server-rendered pages. Everything works without this file;
   it only makes a few things smoother. */
(function () {
  "use strict";

  // Forms answer 422 (a value to fix), 409 (a conflict, like a port in use) or 429 (too
  // many wrong passwords) with the form again and the message beside the field: swap those
  // answers in like a 200, or the person presses a button and sees nothing happen. Other
  // errors stay unswapped.
  if (window.htmx) {
    window.htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "409|422|429", swap: true, error: false },
      { code: "[45]..", swap: false, error: true },
      { code: "...", swap: false },
    ];
  }

  // "Use this address" in the network scan: fill the wizard's fields in place instead of
  // reloading, so nothing the person already typed is lost.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-fill-address]");
    if (!link) return;
    var address = document.getElementById("id_address");
    if (!address) return;
    event.preventDefault();
    address.value = link.getAttribute("data-fill-address");
    var port = document.getElementById("id_port");
    if (port && link.getAttribute("data-fill-port")) port.value = link.getAttribute("data-fill-port");
    var name = document.getElementById("id_name");
    var focusTarget = name && !name.value ? name : document.getElementById("id_username") || address;
    address.scrollIntoView({ behavior: "smooth", block: "center" });
    focusTarget.focus({ preventScroll: true });
    var note = document.getElementById("address-filled");
    if (note) note.textContent = "Address filled in: " + address.value;
  });

  // "Copy" beside a value shown once (a new API token, an app's sign-in details): shown
  // only when the browser can copy, so without JavaScript the person selects the text by
  // hand. Also for values that arrive later in an htmx answer.
  function showCopyButtons(root) {
    if (!navigator.clipboard || !root.querySelectorAll) return;
    root.querySelectorAll("[data-copy]").forEach(function (button) { button.hidden = false; });
  }
  showCopyButtons(document);
  document.addEventListener("htmx:afterSwap", function (event) {
    showCopyButtons(event.detail.target && event.detail.target.isConnected ? event.detail.target : document);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var id = button.getAttribute("data-copy");
    var source = document.getElementById(id);
    var note = document.querySelector('[data-copied-for="' + id + '"]');
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(
      function () { if (note) note.textContent = "Copied."; },
      function () { if (note) note.textContent = "Could not copy: select the text and copy it by hand."; }
    );
  });

  // The deploy wizard: the highlight follows the chosen device (CSS :has() does the same
  // where the browser has it; this class is for the others).
  function markChosenDevice(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll("[data-device-option]").forEach(function (row) {
      var radio = row.querySelector("input[type=radio]");
      row.classList.toggle("selected", !!(radio && radio.checked));
    });
  }
  markChosenDevice(document);
  document.addEventListener("change", function (event) {
    if (event.target.closest && event.target.closest("[data-device-option]")) markChosenDevice(document);
  });
  document.addEventListener("htmx:afterSwap", function () { markChosenDevice(document); });

  // "Change address": jump back to the address field.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-focus]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-focus"));
    if (!field) return;
    event.preventDefault();
    field.scrollIntoView({ behavior: "smooth", block: "center" });
    field.focus({ preventScroll: true });
    if (field.select) field.select();
  });

  // When a live-updating part of a page finds the session has ended, the server answers
  // with the login page; go there instead of drawing it inside the dashboard.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.responseURL && xhr.responseURL.indexOf("/accounts/login/") !== -1) {
      event.detail.shouldSwap = false;
      window.location.href = xhr.responseURL;
    }
  });
})();

// "Menu" on a phone: opens and closes the main navigation (on wider screens the button is
// hidden and the navigation is always shown).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-menu-toggle]");
    if (!button) return;
    var header = button.closest(".site-header");
    var open = !header.classList.contains("menu-open");
    header.classList.toggle("menu-open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
})();
