// The hosted checkout follows its order: it asks /checkout/{id}/status, telling what it
// shows, and the answer comes once the order changed (paid, closed, another method chosen
// or its lines changed elsewhere) or after WAIT seconds; it reloads when the state or
// payment attempt differs. An answer that came early and unchanged (the server's watch
// was full) is asked again after a pause, as the page polled before. Stops on a final
// state. Our own script only (CSP).
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("checkout");
  if (!box || !box.hasAttribute("data-live")) return;
  var WAIT = 20;
  var state = box.getAttribute("data-state");
  var attempt = Number(box.getAttribute("data-attempt"));
  var url = box.getAttribute("data-status-url") + "&state=" + encodeURIComponent(state) +
    "&attempt=" + attempt + "&wait=" + WAIT;
  function ask() {
    var asked = Date.now();
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (now) {
        if (now && (now.state !== state || now.attempt !== attempt)) {
          window.location.reload();
        } else {
          // Answered unchanged well before its wait ended: the server did not wait (its
          // watch was full), so pause rather than ask again at once.
          setTimeout(ask, Date.now() - asked < WAIT * 500 ? 1500 : 0);
        }
      })
      .catch(function () { setTimeout(ask, 4000); });
  }
  ask();
});
