// chat.mjs BASE_URL CITY_UUID: two chat pages, signed in as two users, see each other's
// messages with the senders' names.
//
// Environment: WFS_USER/WFS_PASSWORD and WFS_USER2/WFS_PASSWORD2.
import { run, page as newPage, screenshot, signIn, connected, check, scenario } from "./lib.mjs";

const [base, city] = process.argv.slice(2);

scenario("chat", () =>
  run(async (context, problems) => {
    const one = await newPage(context, problems);
    const two = await newPage(context, problems);
    for (const [page, user, password] of [
      [one, process.env.WFS_USER, process.env.WFS_PASSWORD],
      [two, process.env.WFS_USER2, process.env.WFS_PASSWORD2],
    ]) {
      await page.goto(`${base}/websocket/chat?city_uuid=${city}`);
      check((await page.title()) === "Weather Forecast Service Chat", `title: ${await page.title()}`);
      await signIn(page, user, password);
      await connected(page);
      await page.locator("#messages li", { hasText: "Welcome in" }).waitFor();
    }
    const say = async (page, text) => {
      await page.fill("#send input[name=message]", text);
      await page.click("#send button[type=submit]");
    };
    await say(one, "Is it raining in Cairo?");
    await say(two, "Not a drop ☀");
    for (const page of [one, two]) {
      await page.locator("#messages li", { hasText: "Is it raining in Cairo?" })
        .filter({ hasText: process.env.WFS_USER }).waitFor();
      await page.locator("#messages li", { hasText: "Not a drop ☀" })
        .filter({ hasText: process.env.WFS_USER2 }).waitFor();
    }
    await screenshot(one, "chat-1");
    await screenshot(two, "chat-2");
  }),
);
