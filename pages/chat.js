// chat.js: the chat page. Signs in (or reuses this tab's token), joins the room of the city
// chosen (`?city_uuid=` or the list), shows every member's messages with their names.
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const list = document.getElementById("messages");
  const room = document.getElementById("room");
  const form = document.getElementById("send");
  const state = document.getElementById("state");
  const wanted = new URLSearchParams(location.search).get("city_uuid");

  try {
    const cities = await (await fetch("/api/v1/cities")).json();
    for (const city of cities) {
      const option = new Option(city.name, city.uuid);
      room.append(option);
    }
  } catch (_) {
    // Without the list, the room in the URL is still joined.
  }
  if (wanted) {
    if (![...room.options].some((option) => option.value.toLowerCase() === wanted.toLowerCase())) {
      room.append(new Option(wanted, wanted));
    }
    room.value = [...room.options].find((o) => o.value.toLowerCase() === wanted.toLowerCase()).value;
  }

  document.getElementById("logout").addEventListener("click", () => {
    WFS.logout();
    location.reload();
  });

  let connection = null;
  const join = (token) => {
    if (connection) connection.stop();
    list.replaceChildren();
    const url = new URL(location.href);
    url.searchParams.set("city_uuid", room.value);
    history.replaceState(null, "", url);
    connection = WFS.connect({
      needsToken: true,
      state,
      url: () => WFS.socketUrl("/ws/v1/chat", { city_uuid: room.value, access_token: WFS.token() || token }),
      onMessage: (data) => {
        if (data.type === "chat") {
          WFS.append(list, data.message, { kind: "chat", author: data.user, when: data.sent_at });
        } else {
          WFS.append(list, data.message, { kind: "system" });
        }
      },
    });
  };

  room.addEventListener("change", () => {
    const token = WFS.token();
    if (token) join(token);
  });
  // Called again after a new sign-in when the session ended.
  WFS.withToken(document.getElementById("login"), (token) => {
    document.getElementById("logout").hidden = false;
    join(token);
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (connection && connection.send({ message: form.message.value })) {
      form.message.value = "";
    }
  });
});
