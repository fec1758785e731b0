// SPDX-License-Identifier: Apache-2.0
// Buying an enterprise licence in a real headless Chromium: from a customer's console to the
// vendor's store and back. The operator reads the installation id on the Enterprise page and
// follows the store link; the buyer signs in with the link the store mails, starts a free
// trial for that installation and downloads it; the console refuses a damaged copy with the
// verifier's own reason, installs the file and switches sso on. Then the buyer pays for a
// plan on Stripe Checkout (the test's fake), the licence appears in the account, and pasted
// into the console it switches compliance on.
// Usage: CONSOLE_URL=… ADMIN=… PASSWORD=… BUYER=… MAIL_DIR=… ARTIFACTS=dir node e2e/store.e2e.mjs
// (the console's own store link leads to the store). Screenshots and steps.json land in
// $ARTIFACTS; exits non-zero on the first failure.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CONSOLE = process.env.CONSOLE_URL;
const ADMIN = process.env.ADMIN ?? "admin";
const PASSWORD = process.env.PASSWORD;
const BUYER = process.env.BUYER ?? "buyer@acme-e2e.test";
const MAIL_DIR = process.env.MAIL_DIR;
const ARTIFACTS = process.env.ARTIFACTS ?? "store-artifacts";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
assert.ok(CONSOLE && PASSWORD && MAIL_DIR, "set CONSOLE_URL, PASSWORD and MAIL_DIR");
mkdirSync(ARTIFACTS, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), "potluck-chromium-"));
const files = mkdtempSync(join(tmpdir(), "potluck-licences-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM, headless: true, acceptDownloads: true,
  viewport: { width: 1280, height: 800 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const steps = [];
let page;

async function step(name, body) {
  const began = Date.now();
  process.stdout.write(`- ${name} … `);
  await body();
  steps.push({ name, seconds: (Date.now() - began) / 1000 });
  console.log(`ok (${((Date.now() - began) / 1000).toFixed(1)} s)`);
}

async function shot(name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** The newest sign-in link the store mailed to `to` (Django's file mail backend). */
function mailedLink(to) {
  const messages = readdirSync(MAIL_DIR).map((f) => join(MAIL_DIR, f))
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs)
    .flatMap((f) => readFileSync(f, "utf8").split(/^-{79}$/m))
    .filter((m) => m.includes(`To: ${to}`) && m.includes("/store/sign-in/"));
  assert.ok(messages.length, `a sign-in email to ${to}`);
  return messages.at(-1).match(/https?:\/\/\S+\/store\/sign-in\/\S+/)[0];
}

/** The licence with one payload field changed and the signature kept: "altered". */
function altered(text) {
  const lines = text.trim().split("\n");
  const envelope = JSON.parse(Buffer.from(lines.slice(1, -1).join(""), "base64").toString());
  envelope.payload.seats += 1000;
  const body = Buffer.from(JSON.stringify(envelope)).toString("base64");
  return [lines[0], ...body.match(/.{1,64}/g), lines.at(-1)].join("\n") + "\n";
}

async function download(link, path) {
  const [file] = await Promise.all([page.waitForEvent("download"), link.click()]);
  await file.saveAs(path);
  return readFileSync(path, "utf8");
}

async function enterprisePage() {
  await page.goto(`${CONSOLE}/enterprise`);
  await page.getByRole("heading", { level: 1, name: "Enterprise" }).waitFor();
  await page.getByTestId("installation-id").waitFor();
}

async function apiFeatures() {
  return page.evaluate(async () => (await (await fetch("/api/extensions")).json())
    .features.map((f) => f.key));
}

let failed = false;
let installationId;
try {
  page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(30_000);
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(String(error)));

  await step("console: sign in as the operator", async () => {
    await page.goto(`${CONSOLE}/`);
    await page.getByLabel("Email or username", { exact: true }).fill(ADMIN);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("navigation", { name: "Console" }).waitFor();
  });

  await step("console: the installation id and the store link", async () => {
    await enterprisePage();
    installationId = (await page.getByTestId("installation-id").textContent()).trim();
    assert.match(installationId, /^inst_[a-z2-7]{26}$/);
    await page.getByText("No licence is installed").waitFor();
    const link = page.getByRole("link", { name: "Buy a licence or start a free trial" });
    const href = await link.getAttribute("href");
    assert.ok(href.includes(`installation_id=${installationId}`) && href.includes("seats=1"), href);
    await shot("01-console-no-licence");
    await link.click();
    await page.getByRole("heading", { level: 1, name: "Potluck Enterprise" }).waitFor();
    await page.getByText(`For installation ${installationId}`).waitFor();
    await shot("02-store-plans");
  });

  await step("store: sign in with the mailed link", async () => {
    await page.getByLabel("Work email").fill(BUYER);
    await page.getByRole("button", { name: "Email me a sign-in link" }).click();
    await page.getByRole("heading", { name: "Check your email" }).waitFor();
    await page.goto(mailedLink(BUYER));
    await page.getByText(`Sign in to the Potluck store as ${BUYER}?`).waitFor();
    await shot("03-store-sign-in");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { level: 1, name: "Your licences" }).waitFor();
  });

  let trial;
  await step("store: a free trial for this installation, downloaded", async () => {
    const form = page.getByRole("region", { name: "Free trial" });
    assert.equal(await form.getByLabel(/Installation id/).inputValue(), installationId);
    await form.getByLabel("Licensed to (your company)").fill("Acme Corp");
    await form.getByRole("button", { name: "Start the free trial" }).click();
    await page.getByRole("status").filter({ hasText: "is ready" }).waitFor();
    await shot("04-store-trial");
    trial = await download(page.getByRole("link", { name: /^Download lic-/ }).first(),
      join(files, "trial.license"));
    assert.match(trial, /^-----BEGIN POTLUCK LICENSE-----/);
  });

  await step("console: an altered licence is refused with the reason", async () => {
    await enterprisePage();
    await page.getByLabel("or upload the file").setInputFiles({
      name: "altered.license", mimeType: "text/plain", buffer: Buffer.from(altered(trial)) });
    await page.getByRole("button", { name: "Install licence" }).click();
    const refused = page.getByTestId("licence-refused");
    await refused.waitFor();
    assert.equal((await refused.textContent()).trim(), "Not installed: the signature does not "
      + "match the issuer's key: the licence was altered, or not issued for Potluck");
    await shot("05-console-refused");
  });

  await step("console: the trial installed by upload switches sso on", async () => {
    await page.getByLabel("or upload the file").setInputFiles(join(files, "trial.license"));
    await page.getByRole("button", { name: "Install licence" }).click();
    await page.getByTestId("licence-installed").waitFor();
    const features = page.getByRole("list", { name: "Licensed features" });
    await features.locator('[data-feature="sso"]').filter({ hasText: ": on" }).waitFor();
    await page.getByText("1 used of 5 (adding members stops at 6)").waitFor();
    assert.ok((await apiFeatures()).includes("sso"), "sso is switched on");
    await page.getByRole("region", { name: "Licensed features" })
      .getByText("Single sign-on (OIDC, SAML)").waitFor();
    await shot("06-console-trial-installed");
  });

  let bought;
  await step("store: buy Business and pay on Stripe Checkout", async () => {
    await page.getByRole("link", { name: "Upgrade or renew in the store" }).click();
    await page.getByRole("link", { name: "Continue to your account" }).click();
    const form = page.getByRole("region", { name: "Buy" });
    await form.getByLabel("Plan, seats and term").selectOption({
      label: "Business: up to 50 seats, 999.00 USD per month" });
    await form.getByLabel("Licensed to (your company)").fill("Acme Corp");
    assert.equal(await form.getByLabel(/Installation id/).inputValue(), installationId);
    await form.getByRole("button", { name: "Pay with Stripe" }).click();
    await page.getByRole("heading", { name: "Pay 999.00 USD per month" }).waitFor();
    await shot("07-checkout");
    await page.getByRole("button", { name: "Pay" }).click();
    // The return page sends the buyer to the account; the webhooks issued the licence.
    await page.getByRole("heading", { level: 1, name: "Your licences" }).waitFor();
    const row = page.getByRole("row").filter({ hasText: "Business" });
    await row.waitFor();
    await shot("08-store-purchase");
    bought = await download(row.getByRole("link", { name: /^Download lic-/ }),
      join(files, "business.license"));
  });

  await step("console: the purchase pasted switches compliance on", async () => {
    await enterprisePage();
    await page.getByLabel("Paste the licence").fill(bought);
    await page.getByRole("button", { name: "Install licence" }).click();
    await page.getByTestId("licence-installed").waitFor();
    const features = page.getByRole("list", { name: "Licensed features" });
    for (const key of ["sso", "billing", "credits", "compliance"]) {
      await features.locator(`[data-feature="${key}"]`).filter({ hasText: ": on" }).waitFor();
    }
    assert.ok((await apiFeatures()).includes("compliance"), "compliance is switched on");
    await shot("09-console-purchase-installed");
  });

  assert.deepEqual(pageErrors, [], "no uncaught errors in the pages");
} catch (error) {
  failed = true;
  console.log("FAILED");
  console.error(error);
  if (page) await page.screenshot({ path: join(ARTIFACTS, "failure.png"), fullPage: true }).catch(() => {});
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  rmSync(files, { recursive: true, force: true });
  writeFileSync(join(ARTIFACTS, "steps.json"), JSON.stringify(steps, null, 2));
}
process.exit(failed ? 1 : 0);
