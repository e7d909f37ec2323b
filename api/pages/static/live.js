// Pages that follow something still moving (a settlement run) mark a block with
// data-refresh-seconds; the page reloads itself while that mark is present.
document.addEventListener("DOMContentLoaded", function () {
  var live = document.querySelector("[data-refresh-seconds]");
  if (!live) return;
  var seconds = Number(live.getAttribute("data-refresh-seconds")) || 5;
  setTimeout(function () { window.location.reload(); }, seconds * 1000);
});
