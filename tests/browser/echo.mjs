// echo.mjs BASE_URL [SCREENSHOT_NAME]: the echo page connects (ws:// or wss:// like the page),
// sends {"message":"Hello WebSocket!"} and shows the server's reply; a typed message comes back.
import { run, page as newPage, screenshot, connected, check, scenario } from "./lib.mjs";

const base = process.argv[2];
const name = process.argv[3] || "echo";

scenario(name, () =>
  run(async (context, problems) => {
    const page = await newPage(context, problems);
    await page.goto(`${base}/websocket/echo`);
    check((await page.title()) === "Echo WebSocket Application", `title: ${await page.title()}`);
    await connected(page);
    await page.locator("#log li", { hasText: "Received: Hello WebSocket!" }).waitFor();
    await page.fill("#send input[name=message]", "Zürich ☔");
    await page.click("#send button[type=submit]");
    await page.locator("#log li", { hasText: "Received: Zürich ☔" }).waitFor();
    const scheme = await page.evaluate(() => WFS.socketUrl("/ws/v1/echo").split(":")[0]);
    check(scheme === (base.startsWith("https:") ? "wss" : "ws"), `socket scheme ${scheme} for ${base}`);
    await screenshot(page, name);
  }),
);
