// alert.mjs BASE_URL CITY_UUID: the alert page asks for credentials (none are built in), signs
// in, connects, and shows an alert published with `wfs alert` within a second. Then the server
// drops the connection and the page reconnects by itself; an unknown city is a 1008 whose
// reason is shown, with no reconnection.
//
// Environment: WFS_USER, WFS_PASSWORD (to sign in); WFS_BIN and WFS_DATA_DIR (for `wfs alert`).
import { spawnSync } from "node:child_process";
import { run, page as newPage, screenshot, signIn, connected, check, scenario } from "./lib.mjs";

const [base, city] = process.argv.slice(2);

function publish(message) {
  const started = performance.now();
  const result = spawnSync(process.env.WFS_BIN, [
    "alert", "--city-uuid", city, "--message", message,
    "--server", base, "--data-dir", process.env.WFS_DATA_DIR,
  ], { encoding: "utf8", timeout: 10_000 });
  check(result.status === 0, `wfs alert failed: ${result.stdout} ${result.stderr}`);
  return started;
}

scenario("alert", () =>
  run(async (context, problems) => {
    // The unknown city at the end: the page's REST look-ups for it are 404s, as they should be.
    const page = await newPage(context, problems, [/\/api\/v1\/cities\/0{8}-/]);
    await page.goto(`${base}/websocket/alert?city_uuid=${city}`);
    check((await page.title()).startsWith("Weather Forecast Service Alert"), `title: ${await page.title()}`);
    const source = await page.content();
    check(!/admin/i.test(await page.locator("#login").innerHTML()), "no user name is built in");
    check(!source.includes(process.env.WFS_PASSWORD), "no password in the page");
    await screenshot(page, "alert-login");
    await signIn(page, process.env.WFS_USER, process.env.WFS_PASSWORD);
    await connected(page);

    const message = `Hail storm is coming! ${Date.now()}`;
    const started = publish(message);
    await page.locator("#alerts li", { hasText: message }).waitFor({ timeout: 1000 });
    const shown = performance.now() - started;
    console.log(`alert shown ${shown.toFixed(0)} ms after \`wfs alert\` started`);
    check(shown < 1000, `the alert took ${shown} ms`);

    // The token is kept for the tab: a reload connects without asking again.
    await page.reload();
    await connected(page);
    check(await page.locator("#login").isHidden(), "signed in after a reload");
    check((await page.locator("#alerts li", { hasText: message }).count()) === 1, "recent alerts shown once");
    await screenshot(page, "alert");

    // An unknown city: closed with 1008; the reason is shown and nothing retries.
    const nowhere = "00000000-0000-0000-0000-000000000000";
    let sockets = 0;
    page.on("websocket", () => { sockets += 1; });
    await page.goto(`${base}/websocket/alert?city_uuid=${nowhere}`);
    await page.locator('#state[data-state="stopped"]', { hasText: "doesn't exist" }).waitFor();
    await page.waitForTimeout(1500);
    check(sockets === 1, `${sockets} connection attempts after a 1008`);
    await screenshot(page, "alert-1008");
  }),
);
