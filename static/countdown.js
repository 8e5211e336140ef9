// The mobile-code page's "a new code in N seconds" counts down (progressive enhancement: without
// JavaScript the server's number stands, and the server decides anyway). Not announced each
// second: the element is not a live region.
(function () {
  "use strict";
  var wait = document.getElementById("resend-wait");
  if (!wait) { return; }
  var left = parseInt(wait.getAttribute("data-seconds") || "0", 10);
  var one = wait.getAttribute("data-one") || "";
  var other = wait.getAttribute("data-other") || "";
  var timer = setInterval(function () {
    left -= 1;
    if (left <= 0) {
      clearInterval(timer);
      wait.parentNode.removeChild(wait);
      return;
    }
    wait.textContent = (left === 1 ? one : other).replace("{seconds}", String(left));
  }, 1000);
})();
