// Puts the page's own address (main[data-here]) in the address bar: without a
// banner's ?done= code once the banner is shown, so a reload does not claim again
// what may no longer be true, and the page's address rather than the action URL a
// form posted to, so a reload or the refresh below asks for the page, not the action.
(function () {
  "use strict";
  var main = document.querySelector("main[data-here]");
  var here = main && main.getAttribute("data-here");
  if (here && here !== window.location.pathname + window.location.search) {
    window.history.replaceState(null, "", here + window.location.hash);
  }
})();

// Keeps the live part of a console page (the element with data-live="SECONDS") up to
// date without reloading: every few seconds it asks the same URL for that part only
// (header X-Console-Part: live) and swaps it in. The part is all that can change (an
// incident's state and buttons, the tab counts), so nothing shown goes stale. It waits
// while the tab is hidden or while someone is using a control inside the part, keeps
// what was typed in its text boxes, and stops when the session ends.
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

  // What is typed in the part's text boxes, by id, to put back after a swap.
  function typed() {
    var kept = {};
    live.querySelectorAll("textarea[id], input[type=text][id]").forEach(function (box) {
      kept[box.id] = box.value;
    });
    return kept;
  }

  function retype(kept) {
    Object.keys(kept).forEach(function (id) {
      var box = document.getElementById(id);
      if (box && live.contains(box) && kept[id]) {
        box.value = kept[id];
      }
    });
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
        var kept = typed();
        live.innerHTML = html;
        retype(kept);
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
