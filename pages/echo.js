// echo.js: the echo page. On open it sends {"message":"Hello WebSocket!"}; replies are listed.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const log = document.getElementById("log");
  const form = document.getElementById("send");
  const connection = WFS.connect({
    url: () => WFS.socketUrl("/ws/v1/echo"),
    state: document.getElementById("state"),
    onOpen: (socket) => {
      const hello = { message: "Hello WebSocket!" };
      socket.send(JSON.stringify(hello));
      WFS.append(log, `Sent: ${hello.message}`, { kind: "system" });
    },
    onMessage: (data) => {
      WFS.append(log, `Received: ${data.message}`, { kind: "reply" });
    },
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const message = form.message.value;
    if (connection.send({ message })) {
      WFS.append(log, `Sent: ${message}`, { kind: "system" });
      form.message.value = "";
    }
  });
});
