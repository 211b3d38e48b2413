// Keeps Link device disabled until the person ticks "I am in front of this device and
// I started this" (a request from another network). Only a help: the server refuses
// the approval without the tick, and the page works the same without this script.
(function () {
  "use strict";
  function init() {
    var ticks = document.querySelectorAll("input[data-enables]");
    for (var i = 0; i < ticks.length; i++) {
      (function (tick) {
        var button = document.getElementById(tick.getAttribute("data-enables"));
        if (!button) {
          return;
        }
        var update = function () { button.disabled = !tick.checked; };
        tick.addEventListener("change", update);
        update();
      })(ticks[i]);
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
