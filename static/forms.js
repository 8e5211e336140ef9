// Progressive enhancement of every form: a second press of a button while the first submission
// is on its way (a double click, an impatient Enter) sends nothing again. Without JavaScript the
// server still answers each submission on its own.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.method.toLowerCase() !== "post") { return; }
    if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
    form.setAttribute("data-sent", "1");
    // Should the answer never come (the page stays), the form works again after a while.
    setTimeout(function () { form.removeAttribute("data-sent"); }, 8000);
  });
  // Back to a page from the browser's cache: its forms can be sent again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    var sent = document.querySelectorAll("form[data-sent]");
    for (var i = 0; i < sent.length; i++) { sent[i].removeAttribute("data-sent"); }
  });
})();
