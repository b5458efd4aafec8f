// sse-alert.js: the alert page over Server-Sent Events. Signs in (or reuses this tab's token),
// then opens an EventSource on /sse/v1/alert. The browser reconnects by itself and sends
// Last-Event-ID, so the server replays what was missed; a refused stream (bad token, unknown
// city) is not retried by the browser, and the page says so.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("alerts");
  const state = document.getElementById("state");
  const heading = document.getElementById("city");
  const city = new URLSearchParams(location.search).get("city_uuid") || "";
  const seen = new Set();
  const show = (text, kind) => {
    state.textContent = text;
    state.dataset.state = kind;
  };

  fetch(`/api/v1/cities/${encodeURIComponent(city)}`)
    .then((response) => (response.ok ? response.json() : null))
    .then((found) => {
      if (found) {
        heading.textContent = `Alerts for ${found.name} (Server-Sent Events)`;
        document.title = `Weather Forecast Service Alert: ${found.name}`;
      }
    })
    .catch(() => {});

  document.getElementById("logout").addEventListener("click", () => {
    WFS.logout();
    location.reload();
  });

  WFS.withToken(document.getElementById("login"), (token) => {
    document.getElementById("logout").hidden = false;
    const query = new URLSearchParams({ city_uuid: city, access_token: token });
    show("Connecting…", "connecting");
    const source = new EventSource(`/sse/v1/alert?${query}`);
    source.onopen = () => show("Connected", "open");
    source.onmessage = (event) => {
      let alert;
      try {
        alert = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (alert.type === "error") {
        WFS.append(list, alert.message, { kind: "system", prepend: true });
        return;
      }
      if (alert.id !== undefined && seen.has(alert.id)) return;
      seen.add(alert.id);
      WFS.append(list, alert.message, { kind: "alert", when: alert.created_at, prepend: true });
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // A non-200 answer: the token or the city was refused; retrying cannot help.
        show("Closed by the server: the token or the city was refused. Sign in again or check the city.", "stopped");
      } else {
        show("Disconnected; reconnecting…", "closed");
      }
    };
  });
});
