// The browser's own BarcodeDetector where it exists; typing always works.
(function () {
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  var button = document.getElementById("scan-button"), video = document.getElementById("scan-video");
  if (!button || !video) return;
  button.hidden = false;
  button.addEventListener("click", async function () {
    var detector = new BarcodeDetector({formats: ["qr_code", "code_128", "data_matrix"]});
    var stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}});
    video.srcObject = stream; video.classList.add("scanning"); await video.play();
    var target = document.activeElement && document.activeElement.tagName === "INPUT" ? document.activeElement : document.getElementById("id_scanned_bag");
    (async function look() {
      var codes = await detector.detect(video);
      if (codes.length) { target.value = codes[0].rawValue; stream.getTracks().forEach(function (t) { t.stop(); }); video.classList.remove("scanning"); return; }
      requestAnimationFrame(look);
    })();
  });
})();
