// A polled region (data-pause-while-focused) is not refreshed while keyboard focus is inside it: a refresh must
// not take a keyboard user's place away. This replaces hx-trigger filters ("[!…contains(document.activeElement)]"),
// which htmx runs through eval, and eval is what the Content-Security-Policy forbids.
document.addEventListener("htmx:beforeRequest", function (event) {
  var region = event.detail && event.detail.elt;
  if (region && region.hasAttribute && region.hasAttribute("data-pause-while-focused")
      && region.contains(document.activeElement) && document.activeElement !== document.body) {
    event.preventDefault();
  }
});
