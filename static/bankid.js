// Progressive enhancement of the BankID page: the QR code animates every second and the status
// updates every two seconds without reloading. Without JavaScript the page refreshes itself
// every five seconds.
(function () {
  "use strict";
  var root = document.getElementById("bankid-flow");
  if (!root) { return; }
  var id = root.getAttribute("data-flow");
  var csrf = root.getAttribute("data-csrf");
  var qr = document.getElementById("bankid-qr");
  var message = document.getElementById("bankid-message");
  var leaving = false;
  var done = false;

  // With JavaScript the frames come one a second from the server (without it, an animated image
  // of the next five seconds stands in between reloads).
  function turn() {
    if (!done) { qr.src = "/bankid/" + id + "/qr.svg?t=" + Date.now(); }
  }
  if (qr) {
    turn();
    setInterval(turn, 1000);
  }

  function poll() {
    fetch("/bankid/" + id + "/status", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.ok) { return r.json(); }
        // The server failed: the page itself says so (a status poll that only failed would leave
        // the page waiting for ever). The order is gone from this browser (404): most often
        // another tab took it (the app sent the user back to a new tab, which logged in), so
        // this one goes to the start page rather than to "not found".
        done = true;
        leaving = true;
        window.location.assign(r.status === 404 ? "/" : "/bankid/" + id);
        return null;
      })
      .then(function (s) {
        if (!s) { return; }
        message.textContent = s.message;
        if (qr) { qr.hidden = !s.qr; }
        if (s.state !== "pending") {
          done = true;
          leaving = true;
          window.location.assign("/bankid/" + id);
        }
      })
      .catch(function () { /* try again at the next tick */ });
  }
  setInterval(function () { if (!done) { poll(); } }, 2000);

  var open = document.getElementById("bankid-open");
  if (open) { open.addEventListener("click", function () { leaving = true; setTimeout(function () { leaving = false; }, 3000); }); }
  var cancel = document.getElementById("bankid-cancel-form");
  if (cancel) { cancel.addEventListener("submit", function () { leaving = true; }); }

  // Abandoning the page cancels the order, unless the page is back within seconds (a reload, or
  // Back and Forward, which look the same from here): the server waits to see it poll again.
  window.addEventListener("pagehide", function () {
    if (leaving || done) { return; }
    var body = new URLSearchParams();
    body.set("csrf", csrf);
    body.set("left", "1");
    navigator.sendBeacon("/bankid/" + id + "/cancel", body);
  });
})();
