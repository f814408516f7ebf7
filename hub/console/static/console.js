// Keeps the live part of a console page (the element with data-live="SECONDS") up to
// date without reloading: every few seconds it asks the same URL for that part only
// (header X-Console-Part: live) and swaps it in. It waits while the tab is hidden or
// while someone is using a control inside the part, and stops when the session ends.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  if (!live) {
    return;
  }
  var every = (Number(live.getAttribute("data-live")) || 5) * 1000;

  function busy() {
    var active = document.activeElement;
    return document.hidden || (active && active !== document.body && live.contains(active));
  }

  function refresh() {
    if (busy()) {
      setTimeout(refresh, every);
      return;
    }
    fetch(window.location.href, {
      headers: { "X-Console-Part": "live" },
      credentials: "same-origin",
      redirect: "manual",
    })
      .then(function (answer) {
        if (answer.type === "opaqueredirect") {
          return null; // signed out: the next full page load asks to sign in
        }
        if (!answer.ok) {
          setTimeout(refresh, every * 2);
          return null;
        }
        return answer.text();
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        live.innerHTML = html;
        live.setAttribute("data-refreshed", new Date().toISOString());
        setTimeout(refresh, every);
      })
      .catch(function () {
        setTimeout(refresh, every * 2);
      });
  }

  setTimeout(refresh, every);
})();

// The page of a one-click acknowledgement link submits its form by itself: a person
// who clicked the link in a notification acknowledges at once, while link previews
// and mail scanners, which fetch the page without running scripts, change nothing.
(function () {
  "use strict";
  var form = document.querySelector("form[data-auto-submit]");
  if (form) {
    form.submit();
  }
})();
