// The hosted checkout follows its order: it asks /checkout/{id}/status every few
// seconds and reloads when the order's state or payment attempt moved (paid, closed,
// another method chosen elsewhere). Stops on a final state. Our own script only (CSP).
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("checkout");
  if (!box || !box.hasAttribute("data-live")) return;
  var url = box.getAttribute("data-status-url");
  var state = box.getAttribute("data-state");
  var attempt = Number(box.getAttribute("data-attempt"));
  function ask() {
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (now) {
        if (now && (now.state !== state || now.attempt !== attempt)) {
          window.location.reload();
        } else {
          setTimeout(ask, 1500);
        }
      })
      .catch(function () { setTimeout(ask, 4000); });
  }
  setTimeout(ask, 1500);
});
