// sse.mjs PAGES_BASE WFS_BASE CITY_UUID: alerts over Server-Sent Events in Chromium.
// 1. The old service's deployment: a page served from another origin (PAGES_BASE, allowed by
//    `--allowed-origins`) obtains a token from wfs and opens EventSource on wfs across origins;
//    an alert published with `wfs alert` shows on it (CORS, preflight included).
// 2. wfs's own `/sse/alert` page (title `Weather Forecast Service Alert`) signs in and shows an
//    alert as it arrives.
//
// Environment: WFS_USER, WFS_PASSWORD; WFS_BIN and WFS_DATA_DIR (for `wfs alert`).
import { spawnSync } from "node:child_process";
import { run, page as newPage, screenshot, signIn, connected, check, scenario } from "./lib.mjs";

const [pages, base, city] = process.argv.slice(2);

function publish(message) {
  const result = spawnSync(process.env.WFS_BIN, [
    "alert", "--city-uuid", city, "--message", message,
    "--server", base, "--data-dir", process.env.WFS_DATA_DIR,
  ], { encoding: "utf8", timeout: 10_000 });
  check(result.status === 0, `wfs alert failed: ${result.stdout} ${result.stderr}`);
}

scenario("sse", () =>
  run(async (context, problems) => {
    const old = await newPage(context, problems);
    const query = new URLSearchParams({
      server: base, city_uuid: city, user: process.env.WFS_USER, password: process.env.WFS_PASSWORD,
    });
    await old.goto(`${pages}/old-alert?${query}`);
    await connected(old);
    const first = `Hail storm is coming! ${Date.now()}`;
    publish(first);
    await old.locator("#alerts li", { hasText: first }).waitFor();
    await screenshot(old, "sse-cross-origin");

    const page = await newPage(context, problems);
    await page.goto(`${base}/sse/alert?city_uuid=${city}`);
    check((await page.title()).startsWith("Weather Forecast Service Alert"), `title: ${await page.title()}`);
    await signIn(page, process.env.WFS_USER, process.env.WFS_PASSWORD);
    await connected(page);
    const second = `Dust storm ${Date.now()}`;
    publish(second);
    await page.locator("#alerts li", { hasText: second }).waitFor();
    // The cross-origin page got it too.
    await old.locator("#alerts li", { hasText: second }).waitFor();
    await screenshot(page, "sse-page");
  }),
);
