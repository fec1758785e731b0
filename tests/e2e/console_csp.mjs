// SPDX-License-Identifier: Apache-2.0
// The built console under its Content-Security-Policy, in a real headless Chromium: sign
// in, visit every page, and report every CSP violation the browser saw (none expected).
// Usage: FRONTEND=dir BASE_URL=… EMAIL=… PASSWORD=… node tests/e2e/console_csp.mjs
// Prints one JSON line: {"csp": header, "pages": [...], "violations": [...]}.
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const { FRONTEND, BASE_URL, EMAIL, PASSWORD } = process.env;
// playwright-core is the console's dev dependency: take it from frontend/node_modules.
const { chromium } = createRequire(join(FRONTEND, "package.json"))("playwright-core");
const PAGES = ["Models", "Playground", "Fine-tuning", "Batches", "Usage", "API keys",
  "Members", "Enterprise", "Overview"];

const context = await chromium.launchPersistentContext(
  mkdtempSync(join(tmpdir(), "potluck-csp-")), {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
const violations = [];
const visited = [];
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(30_000);
  await page.exposeFunction("reportViolation", (v) => violations.push(v));
  await page.addInitScript(() => document.addEventListener("securitypolicyviolation",
    (e) => window.reportViolation(`${e.violatedDirective} blocked ${e.blockedURI}`)));
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  const first = await page.goto(`${BASE_URL}/`);
  const csp = first.headers()["content-security-policy"] ?? null;
  await page.getByLabel("Email or username", { exact: true }).fill(EMAIL);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
  for (const label of PAGES) {
    await page.getByRole("navigation", { name: "Console" })
      .getByRole("link", { name: label, exact: true }).click();
    await page.getByRole("heading", { level: 1, name: label }).waitFor();
    await page.waitForLoadState("networkidle");
    visited.push(label);
  }
  // The invitations pages: a person's own, and a link's (an unknown token: it says so).
  await page.goto(`${BASE_URL}/invitations`);
  await page.getByRole("heading", { level: 1, name: "Invitations" }).waitFor();
  await page.waitForLoadState("networkidle");
  visited.push("Invitations");
  await page.goto(`${BASE_URL}/invitations?token=not-a-real-token`);
  await page.getByRole("heading", { level: 1, name: "This invitation link does not work" }).waitFor();
  await page.waitForLoadState("networkidle");
  visited.push("Invitation link");
  console.log(JSON.stringify({ csp, pages: visited, violations }));
} finally {
  await context.close();
}
