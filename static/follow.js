// A page that waits on something elsewhere (a caller answering BankID on their phone) follows it
// without reloading: every two seconds the page is fetched again; while it still waits, its
// message is updated in place (a live region, so a change is announced once, not the whole page);
// when the wait is over, the new content replaces the old and its message takes the focus.
// Without JavaScript the page refreshes itself every five seconds and offers a button to do it now.
(function () {
  "use strict";
  var root = document.querySelector("[data-follow]");
  if (!root || !root.id || !window.fetch || !window.DOMParser) { return; }
  var busy = false;
  var timer = setInterval(function () {
    if (busy) { return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        // Sent elsewhere (the session ended, the password is asked again) or refused: show that
        // page rather than wait on in silence.
        if (r.redirected || !r.ok) {
          clearInterval(timer);
          window.location.assign(r.url);
          return null;
        }
        return r.text();
      })
      .then(function (text) {
        busy = false;
        if (!text) { return; }
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById(root.id);
        if (!fresh) {
          clearInterval(timer);
          window.location.reload();
          return;
        }
        if (fresh.hasAttribute("data-follow")) {
          var live = root.querySelectorAll("[role=status][id]");
          for (var i = 0; i < live.length; i++) {
            var now = fresh.querySelector("#" + live[i].id);
            if (now && now.textContent !== live[i].textContent) { live[i].textContent = now.textContent; }
          }
          return;
        }
        clearInterval(timer);
        root.replaceChildren.apply(root, Array.prototype.slice.call(document.adoptNode(fresh).childNodes));
        root.removeAttribute("data-follow");
        var message = root.querySelector("[role=status], [role=alert]");
        if (message) {
          message.setAttribute("tabindex", "-1");
          message.focus();
        }
      })
      .catch(function () { busy = false; });
  }, 2000);
})();
