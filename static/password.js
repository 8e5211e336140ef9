// Live checks of the password rules as the user types (progressive enhancement: the server checks
// every rule again). Rules only the server can check stay neutral until submitted.
(function () {
  "use strict";
  var list = document.getElementById("password-rules");
  var pw = document.getElementById("password");
  var repeat = document.getElementById("repeat");
  if (!list || !pw || !repeat) { return; }
  var rules = JSON.parse(list.getAttribute("data-rules") || "[]");

  function classes(p) {
    var n = 0;
    if (/[A-ZÅÄÖ]/.test(p) || p !== p.toLowerCase()) { n++; }
    if (/[a-zåäö]/.test(p) || p !== p.toUpperCase()) { n++; }
    if (/[0-9]/.test(p)) { n++; }
    if (/[^0-9A-Za-zÅÄÖåäöÀ-ÿ]/.test(p)) { n++; }
    return n;
  }

  function check(rule, p, r) {
    switch (rule.kind) {
      case "min_length": return Array.from(p).length >= rule.n;
      case "classes": return classes(p) >= 3;
      case "no_personal_info":
        var lower = p.toLowerCase();
        return rule.tokens.every(function (t) { return lower.indexOf(t) < 0; });
      case "matches": return p.length > 0 && p === r;
      default: return null;
    }
  }

  var status = document.getElementById("password-status");
  var words = { ok: list.getAttribute("data-ok"), bad: list.getAttribute("data-bad") };
  var timer = null;

  // The rule's state in words too (not by colour and sign only), for screen readers.
  function mark(item, state) {
    item.classList.remove("ok", "bad", "unknown");
    item.classList.add(state);
    var text = item.querySelector(".rule-state");
    if (text) { text.textContent = words[state] ? " (" + words[state] + ")" : ""; }
  }

  // A short summary, announced politely once typing pauses (not on every key).
  function announce(met, checked) {
    if (!status) { return; }
    clearTimeout(timer);
    timer = setTimeout(function () {
      var form = status.getAttribute(met === 1 ? "data-one" : "data-other") || "";
      status.textContent = form.replace("{ok}", met).replace("{n}", checked);
    }, 1200);
  }

  function update() {
    var met = 0, checked = 0;
    rules.forEach(function (rule) {
      var item = list.querySelector('[data-rule="' + rule.kind + '"]');
      if (!item) { return; }
      var ok = check(rule, pw.value, repeat.value);
      if (ok === null || pw.value.length === 0) { mark(item, "unknown"); return; }
      checked++;
      if (ok) { met++; }
      mark(item, ok ? "ok" : "bad");
    });
    if (pw.value.length > 0) { announce(met, checked); }
  }
  // Only as the user types: on load the list shows what the server marked (after a refused
  // password the fields are empty, and clearing the marks would hide which rules were broken).
  pw.addEventListener("input", update);
  repeat.addEventListener("input", update);
})();
