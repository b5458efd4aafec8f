// session.mjs BASE_URL CITY_UUID: a chat page keeps its session past the access token's
// lifetime (the server runs with a few seconds of it) by refreshing the token before it
// expires; when the refresh token is revoked, the next refresh is refused and the page shows
// the sign-in form again; signing in again reconnects.
//
// Environment: WFS_USER, WFS_PASSWORD.
import { run, page as newPage, screenshot, signIn, connected, check, scenario, WAIT } from "./lib.mjs";

const [base, city] = process.argv.slice(2);

const kept = (page, key) => page.evaluate((key) => sessionStorage.getItem(key), key);

/** Waits until the tab's access token is not `before` any more; answers the new one. */
async function renewed(page, before) {
  await page.waitForFunction((before) => {
    const now = sessionStorage.getItem("wfs.access");
    return now && now !== before;
  }, before, { timeout: WAIT });
  return kept(page, "wfs.access");
}

async function post(page, path, body) {
  return page.evaluate(async ([path, body]) => {
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return response.status;
  }, [path, body]);
}

scenario("session", () =>
  run(async (context, problems) => {
    // The refused refresh at the end and the expired token's verify are 401s on purpose; the
    // browser logs them.
    const page = await newPage(context, problems, [/\/api\/jwt\/(refresh|verify)$/]);
    await page.goto(`${base}/websocket/chat?city_uuid=${city}`);
    await signIn(page, process.env.WFS_USER, process.env.WFS_PASSWORD);
    await connected(page);
    const first = await kept(page, "wfs.access");

    // Two refreshes, with the page left alone: each new access token is valid and the first
    // one has expired by then, yet the page is still connected and can chat.
    const second = await renewed(page, first);
    const third = await renewed(page, second);
    check((await post(page, "/api/jwt/verify", { token: third })) === 200, "the refreshed token verifies");
    check((await post(page, "/api/jwt/verify", { token: first })) === 401, "the first token has expired");
    await connected(page);
    await page.fill("#send input[name=message]", "still here");
    await page.click("#send button[type=submit]");
    await page.locator("#messages li", { hasText: "still here" }).waitFor();
    // A reload after the first token expired goes on without asking for the password.
    await page.reload();
    await connected(page);
    check(await page.locator("#login").isHidden(), "no sign-in form after a reload");
    await screenshot(page, "session-refreshed");

    // Revoked elsewhere (another tab signing out, an operator): the next refresh is refused,
    // and the page asks to sign in again instead of stopping.
    const refresh = await kept(page, "wfs.refresh");
    check((await post(page, "/api/jwt/revoke", { refresh })) === 200, "revoked");
    await page.locator("#login").waitFor({ state: "visible", timeout: WAIT });
    await page.locator("#login .error", { hasText: "sign in again" }).waitFor();
    await page.locator('#state[data-state="stopped"]', { hasText: "Signed out" }).waitFor();
    await screenshot(page, "session-ended");

    await signIn(page, process.env.WFS_USER, process.env.WFS_PASSWORD);
    await connected(page);
    await page.locator("#messages li", { hasText: "Welcome in" }).waitFor();
  }),
);
