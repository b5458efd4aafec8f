// wfs.js: what the service's pages share — the session token, the WebSocket URL, and a
// connection that shows its state, reconnects with backoff, and stops for good on a 1008
// rejection (whose reason it shows). Embedded in the binary (src/pages.rs); no CDN.
"use strict";

const WFS = (() => {
  const TOKEN_KEY = "wfs.access";

  /** ws:// or wss:// like the page, on the page's own host and port. */
  function socketUrl(path, params) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams(params || {}).toString();
    return `${scheme}//${location.host}${path}${query ? "?" + query : ""}`;
  }

  /** The `exp` claim of a JWT, in ms; 0 when unreadable. */
  function expiry(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(payload)).exp * 1000;
    } catch (_) {
      return 0;
    }
  }

  /** The access token kept for this browser tab, if it is still valid for a minute. */
  function token() {
    const kept = sessionStorage.getItem(TOKEN_KEY);
    if (kept && expiry(kept) > Date.now() + 60000) return kept;
    sessionStorage.removeItem(TOKEN_KEY);
    return null;
  }

  async function login(username, password) {
    const response = await fetch("/api/jwt/obtain", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    sessionStorage.setItem(TOKEN_KEY, body.access);
    return body.access;
  }

  function logout() {
    sessionStorage.removeItem(TOKEN_KEY);
  }

  /**
   * Shows the login form in `form` until the user has a token, then calls `ready(token)`.
   * The password is sent to /api/jwt/obtain only; the token is kept in sessionStorage
   * (this tab, until it closes), never in the URL of the page.
   */
  function withToken(form, ready) {
    const existing = token();
    if (existing) {
      form.hidden = true;
      ready(existing);
      return;
    }
    form.hidden = false;
    const error = form.querySelector(".error");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      try {
        const access = await login(form.username.value, form.password.value);
        form.password.value = "";
        form.hidden = true;
        ready(access);
      } catch (failure) {
        error.textContent = failure.message;
      }
    }, { once: false });
  }

  /**
   * A WebSocket that reconnects. `options`:
   * - `url()`: the URL to open (called before every attempt, so it can add `since=`);
   * - `onOpen(ws)`, `onMessage(json)`;
   * - `state`: the element that shows the state;
   * - `onStop(reason)`: a 1008 rejection, or no valid token: no more attempts.
   */
  function connect(options) {
    let attempt = 0;
    let socket = null;
    let stopped = false;
    const show = (text, kind) => {
      options.state.textContent = text;
      options.state.dataset.state = kind;
    };
    const open = () => {
      if (stopped) return;
      if (options.needsToken && !token()) {
        stopped = true;
        show("Signed out: the token expired. Sign in again.", "stopped");
        if (options.onStop) options.onStop("token expired");
        return;
      }
      show(attempt ? `Reconnecting (attempt ${attempt + 1})…` : "Connecting…", "connecting");
      socket = new WebSocket(options.url());
      socket.onopen = () => {
        attempt = 0;
        show("Connected", "open");
        if (options.onOpen) options.onOpen(socket);
      };
      socket.onmessage = (event) => {
        let data;
        try {
          data = JSON.parse(event.data);
        } catch (_) {
          return;
        }
        options.onMessage(data);
      };
      socket.onclose = (event) => {
        socket = null;
        if (stopped) return;
        if (event.code === 1008) {
          // Rejected for good (bad city, bad parameters): retrying cannot help.
          stopped = true;
          show(`Closed by the server: ${event.reason || "policy violation"} (1008)`, "stopped");
          if (options.onStop) options.onStop(event.reason);
          return;
        }
        // 0.5 s, 1 s, 2 s … up to 30 s, with jitter so that many pages do not return at once.
        const delay = Math.min(30000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
        attempt += 1;
        const why = event.code === 1006 ? "connection lost" : `closed with ${event.code}${event.reason ? ": " + event.reason : ""}`;
        show(`Disconnected (${why}); reconnecting in ${(delay / 1000).toFixed(1)} s`, "closed");
        setTimeout(open, delay);
      };
    };
    open();
    return {
      send(value) {
        if (socket && socket.readyState === WebSocket.OPEN) {
          socket.send(JSON.stringify(value));
          return true;
        }
        return false;
      },
      stop() {
        stopped = true;
        if (socket) socket.close(1000);
        show("Disconnected", "stopped");
      },
    };
  }

  /** A list item with a time, an optional author and a text, appended to `list`. */
  function append(list, text, options) {
    const item = document.createElement("li");
    if (options && options.kind) item.className = options.kind;
    const time = document.createElement("time");
    const when = options && options.when ? new Date(options.when) : new Date();
    time.dateTime = when.toISOString();
    time.textContent = when.toLocaleTimeString();
    item.append(time);
    if (options && options.author) {
      const author = document.createElement("strong");
      author.textContent = options.author;
      item.append(author);
    }
    const body = document.createElement("span");
    body.textContent = text;
    item.append(body);
    if (options && options.prepend) list.prepend(item);
    else list.append(item);
    return item;
  }

  return { socketUrl, token, login, logout, withToken, connect, append };
})();
