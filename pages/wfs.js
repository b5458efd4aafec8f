// wfs.js: what the service's pages share — the session (access and refresh tokens, the access
// token refreshed before it expires, the sign-in form shown again when a refresh is refused),
// the WebSocket URL, and a connection that shows its state, reconnects with backoff, and stops
// for good on a 1008 rejection (whose reason it shows). Embedded in the binary (src/pages.rs);
// no CDN.
"use strict";

const WFS = (() => {
  const TOKEN_KEY = "wfs.access";
  const REFRESH_KEY = "wfs.refresh";

  /** ws:// or wss:// like the page, on the page's own host and port. */
  function socketUrl(path, params) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams(params || {}).toString();
    return `${scheme}//${location.host}${path}${query ? "?" + query : ""}`;
  }

  /** The claims of a JWT; {} when unreadable. */
  function claims(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(payload));
    } catch (_) {
      return {};
    }
  }

  /** The `exp` claim of a JWT, in ms; 0 when unreadable. */
  function expiry(token) {
    return (claims(token).exp || 0) * 1000;
  }

  /** How long before expiry a token is refreshed: a minute, or a third of a short lifetime. */
  function margin(token) {
    const { exp, iat } = claims(token);
    return Math.min(60000, Math.max(1000, ((exp - iat) * 1000) / 3 || 60000));
  }

  /** The access token kept for this browser tab, if it is still valid. */
  function token() {
    const kept = sessionStorage.getItem(TOKEN_KEY);
    if (kept && expiry(kept) > Date.now() + 1000) return kept;
    return null;
  }

  // The page's sign-in form and what to do once signed in (see `withToken`), the timer of the
  // next refresh, and what to stop when the session ends.
  let session = null;
  let refreshTimer = null;
  let refreshing = null;
  const onSignOut = new Set();

  function keep(pair) {
    sessionStorage.setItem(TOKEN_KEY, pair.access);
    if (pair.refresh) sessionStorage.setItem(REFRESH_KEY, pair.refresh);
    schedule();
  }

  /** Refreshes the access token a little before it expires, for as long as the page is open. */
  function schedule() {
    clearTimeout(refreshTimer);
    const access = sessionStorage.getItem(TOKEN_KEY);
    if (!access) return;
    const due = expiry(access) - margin(access) - Date.now();
    refreshTimer = setTimeout(refresh, Math.max(0, due));
  }

  /**
   * A new access token from the refresh token (which rotates). The new access token, or null:
   * on a refusal the session is over and the sign-in form shows again; when the server cannot
   * be reached, another try follows in a few seconds.
   */
  function refresh() {
    if (!refreshing) {
      refreshing = (async () => {
        const kept = sessionStorage.getItem(REFRESH_KEY);
        if (!kept) {
          signedOut("Your session ended: sign in again.");
          return null;
        }
        let response;
        try {
          response = await fetch("/api/jwt/refresh", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ refresh: kept }),
          });
        } catch (_) {
          response = null;
        }
        if (response && response.ok) {
          const pair = await response.json();
          keep(pair);
          return pair.access;
        }
        if (!response || response.status >= 500 || response.status === 429) {
          clearTimeout(refreshTimer);
          refreshTimer = setTimeout(refresh, 5000);
          return token();
        }
        signedOut("Your session ended: sign in again.");
        return null;
      })().finally(() => {
        refreshing = null;
      });
    }
    return refreshing;
  }

  /** Forgets the tokens, stops the page's connections and shows the sign-in form again. */
  function signedOut(reason) {
    clearTimeout(refreshTimer);
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(REFRESH_KEY);
    for (const stop of [...onSignOut]) stop(reason);
    if (session) {
      session.form.hidden = false;
      const error = session.form.querySelector(".error");
      if (error) error.textContent = reason;
    }
  }

  async function login(username, password) {
    const response = await fetch("/api/jwt/obtain", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    keep(body);
    return body.access;
  }

  /** Signs out: the refresh token is revoked on the server too (best effort). */
  function logout() {
    const kept = sessionStorage.getItem(REFRESH_KEY);
    if (kept) {
      fetch("/api/jwt/revoke", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refresh: kept }),
        keepalive: true,
      }).catch(() => {});
    }
    clearTimeout(refreshTimer);
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(REFRESH_KEY);
  }

  /**
   * Shows the login form in `form` until the user has a token, then calls `ready(token)`;
   * again after each new sign-in when a session ended (its refresh was refused).
   * The password is sent to /api/jwt/obtain only; the tokens are kept in sessionStorage
   * (this tab, until it closes), never in the URL of the page.
   */
  function withToken(form, ready) {
    session = { form, ready };
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
    });
    const existing = token();
    if (existing) {
      form.hidden = true;
      schedule();
      ready(existing);
      return;
    }
    if (sessionStorage.getItem(REFRESH_KEY)) {
      form.hidden = true;
      refresh().then((access) => {
        if (access) ready(access);
      });
      return;
    }
    form.hidden = false;
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
    const stop = (reason) => {
      stopped = true;
      onSignOut.delete(stop);
      if (socket) socket.close(1000);
      show(`Signed out: ${reason}`, "stopped");
      if (options.onStop) options.onStop(reason);
    };
    if (options.needsToken) onSignOut.add(stop);
    const open = async () => {
      if (stopped) return;
      // A token that expired while the connection was down (a sleeping laptop) is refreshed
      // first; when that is refused, the session is over and `stop` has run.
      if (options.needsToken && !token() && !(await refresh())) return;
      if (stopped) return;
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
        onSignOut.delete(stop);
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
