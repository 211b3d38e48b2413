// Formats a user code as it is typed: capitals, no spaces, a dash after the fourth
// letter (XXXX-XXXX). The server accepts any spacing and case, so this is only a help;
// the pages work the same without it.
(function () {
  "use strict";
  var ignore = /[\s\-\u2010\u2011\u2013]/g;
  function format(clean) {
    return clean.length > 4 ? clean.slice(0, 4) + "-" + clean.slice(4) : clean;
  }
  function reformat(el) {
    var caret = el.selectionStart === null ? el.value.length : el.selectionStart;
    // Count the significant characters before the caret, to put it back after them.
    var before = el.value.slice(0, caret).replace(ignore, "").length;
    var clean = el.value.replace(ignore, "").toUpperCase();
    var out = format(clean);
    if (out === el.value) {
      return;
    }
    el.value = out;
    var pos = before > 4 && clean.length > 4 ? before + 1 : before;
    if (document.activeElement === el) {
      el.setSelectionRange(pos, pos);
    }
  }
  function init() {
    var inputs = document.querySelectorAll("input[data-code]");
    for (var i = 0; i < inputs.length; i++) {
      (function (el) {
        el.addEventListener("input", function () { reformat(el); });
        if (el.value) {
          reformat(el);
        }
      })(inputs[i]);
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
