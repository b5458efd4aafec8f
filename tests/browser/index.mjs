// index.mjs BASE_URL: the index lists the cities with links to their alert pages and links the
// AsyncAPI docs, the OpenAPI docs and the raw contract; the OpenAPI UI renders offline.
import { run, page as newPage, screenshot, check, scenario } from "./lib.mjs";

const base = process.argv[2];

scenario("index", () =>
  run(async (context, problems) => {
    const page = await newPage(context, problems);
    // Nothing may come from another site: the browser has no network but this server anyway.
    const foreign = [];
    page.on("request", (request) => {
      if (!request.url().startsWith(base) && !request.url().startsWith("data:")) foreign.push(request.url());
    });
    await page.goto(base + "/");
    check((await page.title()) === "Weather Forecast Service API", `title: ${await page.title()}`);
    const cities = await page.locator("#cities a[href^='/websocket/alert?city_uuid=']").allTextContents();
    check(cities.join(",") === "Cairo,Istanbul,Mexico City,Sao Paulo,Sydney,Tokyo", `cities: ${cities}`);
    for (const href of ["/docs", "/api/docs/", "/asyncapi.yaml"]) {
      check((await page.locator(`header a[href='${href}']`).count()) === 1, `no link to ${href}`);
    }
    await screenshot(page, "index");
    await page.click("#cities a:text('Tokyo')");
    await page.waitForURL(/\/websocket\/alert\?city_uuid=/);
    await page.locator("#login").waitFor();

    await page.goto(base + "/api/docs/");
    await page.locator(".swagger-ui .opblock-summary-path", { hasText: "/api/v1/cities/{uuid}/alerts" }).first().waitFor();
    await screenshot(page, "openapi-ui");
    check(foreign.length === 0, `requests to other sites: ${foreign}`);
  }),
);
