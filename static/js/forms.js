// After a failed submit the page comes back with an error summary at the top of the form: move focus
// there, so a screen reader reads it and a phone shows it, and let each link focus its field (not only
// scroll to it, which would leave the keyboard where it was).
(function () {
  function focusSummary() {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) {
      // What the errors are about (e.g. the likely duplicates on enrolment) stays in view above them.
      var context = document.querySelector("[data-error-context]");
      (context || summary).scrollIntoView({ block: "start" });
      summary.focus({ preventScroll: true });
    }
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-error-summary] a[href^='#']");
    if (!link) return;
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (!field) return;
    event.preventDefault();
    var label = document.querySelector("label[for='" + field.id + "']") || field;
    label.scrollIntoView({ block: "center" });
    field.focus({ preventScroll: true });
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusSummary);
  } else {
    focusSummary();
  }
})();

// A "Print" button (the discharge sheet): the page's own print CSS does the rest. No inline handlers under the CSP.
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("[data-print]") : null;
  if (button) {
    window.print();
  }
});
