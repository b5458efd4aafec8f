// lib.mjs: what the browser scenarios share: headless Debian Chromium driven by playwright-core
// (never a downloaded browser), bounded waits, screenshots, and failing loudly.
//
// Environment (set by tests/contract/browser.rs):
//   WFS_BROWSER_MODULES  the folder whose node_modules holds playwright-core
//   WFS_SCREENSHOTS      where screenshots go (under target/)
//   CHROMIUM             the browser (default /usr/bin/chromium)
import { createRequire } from "node:module";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(join(process.env.WFS_BROWSER_MODULES || ".", "package.json"));
const { chromium } = require("playwright-core");

/** Every wait is bounded by this, and the whole scenario by `OVERALL`. */
export const WAIT = 10_000;
const OVERALL = 90_000;

setTimeout(() => {
  console.error(`scenario still running after ${OVERALL} ms: giving up`);
  process.exit(2);
}, OVERALL).unref();

/**
 * Runs `scenario(context, problems)` in a fresh Chromium profile. Certificate errors are never
 * ignored wholesale (no `ignoreHTTPSErrors`); see `WFS_TRUST_SPKI` below.
 */
export async function run(scenario, options = {}) {
  const profile = mkdtempSync(join(tmpdir(), "wfs-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout: WAIT * 3,
    viewport: { width: 1000, height: 700 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // A TLS run trusts exactly the server's key (base64 SHA-256 of its SPKI), which the
      // test reads from the server's data directory: not "any certificate".
      ...(process.env.WFS_TRUST_SPKI ? [`--ignore-certificate-errors-spki-list=${process.env.WFS_TRUST_SPKI}`] : []),
      ...(options.args || []),
    ],
    env: { ...process.env, ...(options.env || {}) },
  });
  context.setDefaultTimeout(WAIT);
  const problems = [];
  context.on("weberror", (error) => problems.push(`page error: ${error.error().message}`));
  try {
    await scenario(context, problems);
  } finally {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
  if (problems.length) {
    throw new Error(problems.join("\n"));
  }
}

/**
 * A new page whose console errors count as problems, except failed requests whose URL matches
 * one of `expected` (a scenario that asks for an unknown city expects its 404).
 */
export async function page(context, problems, expected = []) {
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const url = message.location().url || "";
    if (message.text().startsWith("Failed to load resource") && expected.some((re) => re.test(url))) return;
    problems.push(`console: ${message.text()} (${url})`);
  });
  return page;
}

export async function screenshot(page, name) {
  const folder = process.env.WFS_SCREENSHOTS || "target/screenshots";
  mkdirSync(folder, { recursive: true });
  const path = join(folder, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

/** Signs in on a page that shows the login form. */
export async function signIn(page, username, password) {
  await page.locator("#login").waitFor({ state: "visible" });
  await page.fill("#login input[name=username]", username);
  await page.fill("#login input[name=password]", password);
  await page.click("#login button[type=submit]");
  await page.locator("#login").waitFor({ state: "hidden" });
}

/** Waits until the connection state says Connected. */
export async function connected(page) {
  await page.locator('#state[data-state="open"]').waitFor();
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Runs `main`, printing `ok: <name>` or the error and exiting 1. */
export function scenario(name, main) {
  main().then(
    () => {
      console.log(`ok: ${name}`);
      process.exit(0);
    },
    (error) => {
      console.error(`failed: ${name}: ${error.stack || error}`);
      process.exit(1);
    },
  );
}
