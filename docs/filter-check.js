// Drives the filter box of docs/index.html in headless Chromium and checks what it hides.
// Not part of the test suite (it needs Node, playwright-core and a Chromium); run it by hand
// after changing codegen/src/docs/templates/search.js. See docs/README.md ("The filter box").
//
//   NODE_PATH=/tmp/pw/node_modules node docs/filter-check.js [PAGE.html]
//
// Exits 1 with a list of what failed, 0 with a line per term when everything holds.
const path = require("path");
const { chromium } = require("playwright-core");

const page_file = path.resolve(process.argv[2] || path.join(__dirname, "index.html"));
// A term, the item ids that must be shown, and ids that must be hidden (v1 contract).
const TERMS = [
  ["city_uuid", ["channel-alert", "channel-chat", "message-alert"], ["channel-echo", "message-echo"]],
  ["welcome", ["channel-chat", "operation-sendchatwelcome", "message-chatwelcome"],
    ["channel-echo", "operation-receivechat", "message-alert"]],
  ["CITY_UUID", ["channel-alert"], ["channel-echo"]],
  ["no-such-text-anywhere", [], ["channel-chat", "messages"]],
];

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
  const page = await browser.newPage();
  const failures = [];
  page.on("pageerror", (error) => failures.push(`script error: ${error}`));
  await page.goto("file://" + page_file);

  // What the page looks like now, judged from the DOM (not from the script's own bookkeeping).
  const look = (term) => page.evaluate((term) => {
    const visible = (el) => !!el && el.getClientRects().length > 0;
    const q = term.trim().toLowerCase();
    const problems = [];
    const items = [...document.querySelectorAll("[data-search]")];
    for (const el of items) {
      const should = q === "" || el.textContent.toLowerCase().includes(q);
      if (visible(el) !== should) problems.push(`${el.id}: ${should ? "hidden" : "shown"} for "${term}"`);
    }
    for (const a of document.querySelectorAll(".toc li > a")) {
      const target = document.getElementById(a.getAttribute("href").slice(1));
      if (visible(a) !== visible(target)) problems.push(`contents entry ${a.getAttribute("href")} ${visible(a) ? "shown" : "hidden"}, its target not`);
    }
    for (const tr of document.querySelectorAll("#glance tbody tr")) {
      const target = document.getElementById(tr.querySelector("a").getAttribute("href").slice(1));
      if (visible(tr) !== visible(target)) problems.push(`at-a-glance row ${target.id} out of step`);
    }
    for (const section of document.querySelectorAll("main > section")) {
      const inner = [...section.querySelectorAll("[data-search], #glance tbody tr")];
      if (inner.length && visible(section) !== inner.some(visible)) problems.push(`section ${section.id} out of step`);
    }
    if (q !== "" && visible(document.getElementById("info"))) problems.push("overview shown while filtering");
    if (q === "" && document.querySelectorAll("[hidden], tr.hit").length) problems.push("not everything restored");
    const status = (document.querySelector(".filter-status") || { textContent: "(no status line)" }).textContent;
    return { problems, status, hits: document.querySelectorAll("tr.hit").length, shown: items.filter(visible).map((el) => el.id), ids: items.map((el) => el.id), has: Object.fromEntries([...document.querySelectorAll("[id]")].map((el) => [el.id, visible(el)])) };
  }, term);

  const check = async (term, show, hide) => {
    const state = await look(term);
    failures.push(...state.problems);
    for (const id of show) if (!state.has[id]) failures.push(`"${term}": ${id} should be shown`);
    for (const id of hide) if (state.has[id]) failures.push(`"${term}": ${id} should be hidden`);
    console.log(`"${term}": ${state.shown.length} of ${state.ids.length} items shown, ${state.hits} rows highlighted, status "${state.status}"`);
    return state;
  };

  await check("", [], []);
  for (const [term, show, hide] of TERMS) {
    await page.fill("#search input", term);
    const state = await check(term, show, hide);
    if (show.length === 0 && !/nothing/i.test(state.status)) failures.push(`"${term}": no "nothing" status`);
    await page.fill("#search input", "");
    await check("", [], []);
  }
  // Escape in the box clears it too.
  await page.fill("#search input", "welcome");
  await page.press("#search input", "Escape");
  await check("", [], []);

  await browser.close();
  if (failures.length) {
    console.error("FAILED:\n  " + failures.join("\n  "));
    process.exit(1);
  }
  console.log("filter check passed");
})();
