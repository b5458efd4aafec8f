// alert.js: the alert page. Signs in (or reuses this tab's token), shows the city's recent
// alerts (REST), then live ones (WebSocket). A reconnect asks for the alerts after the last
// one shown (`since=`), so none is missed while the connection was down.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("alerts");
  const state = document.getElementById("state");
  const heading = document.getElementById("city");
  const city = new URLSearchParams(location.search).get("city_uuid") || "";
  let lastId = null;
  const seen = new Set();

  const show = (alert, options) => {
    if (seen.has(alert.id)) return;
    seen.add(alert.id);
    if (lastId === null || alert.id > lastId) lastId = alert.id;
    WFS.append(list, alert.message, { kind: options.kind, when: alert.created_at, prepend: true });
  };

  fetch(`/api/v1/cities/${encodeURIComponent(city)}`)
    .then((response) => (response.ok ? response.json() : null))
    .then((found) => {
      if (found) {
        heading.textContent = `Alerts for ${found.name}`;
        document.title = `Weather Forecast Service Alert: ${found.name}`;
      }
    })
    .catch(() => {});

  document.getElementById("logout").addEventListener("click", () => {
    WFS.logout();
    location.reload();
  });

  WFS.withToken(document.getElementById("login"), async (token) => {
    document.getElementById("logout").hidden = false;
    // The recent alerts first; the socket then starts after the newest of them.
    try {
      const response = await fetch(`/api/v1/cities/${encodeURIComponent(city)}/alerts?limit=10`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (response.ok) {
        const page = await response.json();
        page.alerts.reverse().forEach((alert) => show(alert, { kind: "history" }));
      }
    } catch (_) {
      // The live connection below reports what is wrong.
    }
    WFS.connect({
      needsToken: true,
      state,
      url: () => {
        const params = { city_uuid: city, access_token: WFS.token() || token };
        if (lastId !== null) params.since = lastId;
        return WFS.socketUrl("/ws/v1/alert", params);
      },
      onMessage: (data) => {
        if (data.type === "alert" || (data.type === undefined && data.message)) {
          show(data, { kind: "alert" });
        } else if (data.type === "error") {
          WFS.append(list, data.message, { kind: "system", prepend: true });
        }
      },
      onStop: () => {},
    });
  });
});
