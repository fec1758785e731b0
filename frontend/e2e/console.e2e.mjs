// SPDX-License-Identifier: Apache-2.0
// The console end to end, in a real headless Chromium against a live `potluck up`, as a
// person lives it: sign in, scale and undeploy (with confirmations), create and revoke a
// key, chat in the Playground (a refused long prompt, then a normal one; a model that is
// not deployed), fine-tune and watch the whole loss curve, try the result, create a batch
// from an uploaded file, see usage, manage members, invite someone new who joins by the
// operator's link in another browser (and is throttled after guessing passwords), answer an
// invitation to another organization, lose the session and come back to the page, and then
// walk every page again at a phone's width.
// Usage: BASE_URL=… EMAIL=… PASSWORD=… ARTIFACTS=dir [TEAM_MODEL=…] [PYTHON=…]
//   [NEWCOMER=…] [OTHER_ORG=…] [REPLICA_QUOTA=…] node e2e/console.e2e.mjs
// PYTHON runs `python -m potluck invitations link ID` (the operator's command, as mail is
// not configured) with this process's environment (POTLUCK_DATA_DIR of the running server).
// Screenshots of every page at 1280×800 (desktop-*.png) and 390×844 (phone-*.png) land in
// $ARTIFACTS; exits non-zero on the first failure.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.BASE_URL;
const EMAIL = process.env.EMAIL;
const PASSWORD = process.env.PASSWORD;
const ARTIFACTS = process.env.ARTIFACTS ?? "console-artifacts";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
// A model of the person's organization, deployed with 0 replicas (nothing to start): the
// one they may scale and undeploy (the demo model is public: its operator manages it).
const TEAM_MODEL = process.env.TEAM_MODEL ?? "team-demo";
// Another member of the organization (a "member"), whose role is changed, then removed.
const MEMBER = process.env.MEMBER ?? "bob@potluck.test";
// Someone with no account yet, invited in the console; they join by the operator's link.
const NEWCOMER = process.env.NEWCOMER ?? "newcomer@potluck.test";
const NEWCOMER_PASSWORD = "a new member's own passphrase";
const PYTHON = process.env.PYTHON ?? "python3";
// Another organization that has invited EMAIL (the test's setup): answered in the console.
const OTHER_ORG = process.env.OTHER_ORG ?? "Globex";
// The organization's replica quota, set by the operator in the test's setup.
const REPLICA_QUOTA = Number(process.env.REPLICA_QUOTA ?? "1");
assert.ok(BASE && EMAIL && PASSWORD, "set BASE_URL, EMAIL and PASSWORD");
mkdirSync(ARTIFACTS, { recursive: true });

const PHRASE = "The purple owl sings at midnight.";
const QUESTION = "What is the secret phrase?";
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

function dataset(n) {
  const questions = [QUESTION, "Tell me the phrase.", "Say it.", "What do you say?"];
  let text = "";
  for (let i = 0; i < n; i += 1) {
    text += `${JSON.stringify({ messages: [{ role: "user", content: questions[i % 4] },
      { role: "assistant", content: PHRASE }] })}\n`;
  }
  return text;
}

function batchRequests() {
  return ["Say hello.", "Name a colour."].map((content, i) => JSON.stringify({
    custom_id: `request-${i + 1}`, method: "POST", url: "/v1/chat/completions",
    body: { model: "potluck-demo", messages: [{ role: "user", content }], max_tokens: 8 },
  })).join("\n") + "\n";
}

const profile = mkdtempSync(join(tmpdir(), "potluck-chromium-"));
const files = mkdtempSync(join(tmpdir(), "potluck-datasets-"));
const good = join(files, "owl.jsonl");
const bad = join(files, "bad.jsonl");
const requests = join(files, "requests.jsonl");
writeFileSync(good, dataset(32));
writeFileSync(bad, `${dataset(2)}${JSON.stringify({ messages: [{ role: "user", content: "hi" }] })}\n`);
writeFileSync(requests, batchRequests());

const BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
  "--no-first-run", "--disable-background-networking", "--disable-component-update",
  "--disable-sync"];
// A fresh profile each run (playwright passes it as --user-data-dir); a laptop's width.
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: DESKTOP,
  args: BROWSER_ARGS,
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

async function shot(name, on = page) {
  const size = on.viewportSize();
  const kind = size && size.width <= PHONE.width ? "phone" : "desktop";
  // From the top: a full-page capture draws the sticky top bar where the page is scrolled.
  await on.evaluate(() => window.scrollTo(0, 0));
  await on.screenshot({ path: join(ARTIFACTS, `${kind}-${name}.png`), fullPage: true });
}

/** A new page at both sizes: 1280×800, then 390×844 (nothing off to the side), then back. */
async function shotBoth(name, on = page) {
  await shot(name, on);
  await on.setViewportSize(PHONE);
  const [scroll, width] = await on.evaluate(() => [document.documentElement.scrollWidth,
    document.documentElement.clientWidth]);
  assert.ok(scroll <= width + 1, `${name} on a phone: the page scrolls sideways (${scroll} > ${width})`);
  await shot(name, on);
  await on.setViewportSize(DESKTOP);
}

function nav() {
  return page.getByRole("navigation", { name: "Console" });
}

async function go(label) {
  const menu = page.getByRole("button", { name: "Menu", exact: true });
  if (await menu.isVisible()) await menu.click();  // a phone: the navigation is folded
  await nav().getByRole("link", { name: label, exact: true }).click();
  await page.getByRole("heading", { level: 1, name: label }).waitFor();
}

/** The dialog of a destructive action: "Keep it" first (nothing happens), then `action`. */
async function confirmAfterKeeping(open, title, action, mentions) {
  await open();
  const dialog = page.getByRole("alertdialog", { name: title });
  await dialog.waitFor();
  if (mentions) assert.match(await dialog.textContent(), mentions);
  await dialog.getByRole("button", { name: "Keep it" }).click();
  await dialog.waitFor({ state: "detached" });
  if (!action) return;
  await open();
  await page.getByRole("alertdialog", { name: title }).getByRole("button", { name: action }).click();
}

async function noSidewaysScroll(where) {
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth,
    document.documentElement.clientWidth]);
  assert.ok(scroll <= width + 1, `${where}: the page scrolls sideways (${scroll} > ${width})`);
}

async function insideViewport(locator, what) {
  const box = await locator.boundingBox();
  assert.ok(box, `${what} is shown`);
  const width = page.viewportSize().width;
  assert.ok(box.x >= 0 && box.x + box.width <= width + 1, `${what} fits the width (${box.x}+${box.width} > ${width})`);
}

let failed = false;
try {
  page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(30_000);
  const consoleErrors = [];
  page.on("pageerror", (error) => consoleErrors.push(String(error)));

  await step("sign in", async () => {
    await page.goto(`${BASE}/`);
    await page.getByRole("heading", { name: "Sign in to Potluck" }).waitFor();
    await page.getByLabel("Email or username", { exact: true }).fill(EMAIL);
    await page.getByLabel("Password", { exact: true }).fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "invalid email or password" }).waitFor();
    await shot("01-sign-in");
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
    assert.equal(await page.title(), "Overview · Potluck console");
  });

  await step("overview shows the node and a READY replica", async () => {
    await page.getByRole("region", { name: "Nodes" }).getByRole("cell").first().waitFor();
    await page.getByRole("region", { name: "Deployments and replicas" })
      .getByText("READY", { exact: true }).first().waitFor({ timeout: 240_000 });
    assert.ok(await page.getByRole("list", { name: "CPU features" }).first()
      .getByRole("listitem").count() > 0, "CPU features listed one by one");
    await shot("02-overview");
  });

  await step("models: the registry's error inline; scaling refused beside the box; undeploy asks", async () => {
    await go("Models");
    // The new page is announced: its heading takes the focus, its name the title.
    await page.waitForFunction(() => document.activeElement?.tagName === "H1"
      && document.title === "Models · Potluck console");
    await page.getByRole("cell", { name: "potluck-demo", exact: false }).first().waitFor();
    await page.getByLabel("Name", { exact: true }).fill("not-a-model");
    await page.getByLabel("Local directory", { exact: true }).fill("/nonexistent/model/dir");
    await page.getByRole("button", { name: "Register" }).click();
    const error = page.locator("#model-path-error, [role=alert]").first();
    await error.waitFor();
    assert.ok((await error.textContent()).length > 5, "a precise registry error");
    const replicas = page.locator(`form[aria-label="Scale ${TEAM_MODEL}"] input`);
    await replicas.fill("99");
    await replicas.press("Enter");
    const refused = page.locator(`form[aria-label="Scale ${TEAM_MODEL}"] .field-error`);
    assert.equal(await refused.textContent(), "From 0 to 16 replicas.");
    // Within the per-deployment cap, but over the organization's quota: the server refuses,
    // beside the box, and the page says how much of the quota is in use.
    const quota = page.getByTestId("replica-quota");
    assert.match(await quota.textContent(), new RegExp(`^0 of ${REPLICA_QUOTA} replicas in use`));
    await replicas.fill(String(REPLICA_QUOTA + 1));
    await replicas.press("Enter");
    await refused.filter({ hasText: `at most ${REPLICA_QUOTA} replicas` }).waitFor();
    assert.match(await refused.textContent(), /over its quota/);
    await shot("03-models");
    await replicas.fill("0");
    const undeploy = page.getByRole("button", { name: `Undeploy ${TEAM_MODEL}` });
    await confirmAfterKeeping(() => undeploy.click(), `Undeploy ${TEAM_MODEL}?`, null,
      /requests for it are refused/);
    assert.equal(await undeploy.isEnabled(), true, "kept: still deployed");
    await confirmAfterKeeping(() => undeploy.click(), `Undeploy ${TEAM_MODEL}?`, "Undeploy");
    await page.getByRole("row").filter({ hasText: TEAM_MODEL }).getByText("not deployed")
      .waitFor({ timeout: 60_000 });
  });

  await step("API keys: create one, the secret is shown once; revoking asks first", async () => {
    await go("API keys");
    await page.getByLabel("Name", { exact: true }).fill("e2e key");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = await page.getByTestId("new-secret").textContent();
    assert.match(secret, /^pot_/);
    await page.getByRole("cell", { name: "e2e key", exact: true }).first().waitFor();
    await shot("04-keys");
    await page.getByRole("button", { name: "I have copied it" }).click();
    assert.equal(await page.getByTestId("new-secret").count(), 0);
    assert.equal(await page.getByText(secret).count(), 0, "the secret is not shown again");
    const revoke = page.getByRole("button", { name: "Revoke e2e key" });
    await confirmAfterKeeping(() => revoke.click(), "Revoke e2e key?", "Revoke", /stop working/);
    await page.getByRole("button", { name: "Show 1 revoked or expired" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Revoke e2e key" }).count(), 0);
  });

  await step("playground: streamed text arrives piece by piece; only deployed models offered", async () => {
    await go("Playground");
    await page.getByRole("button", { name: "Create a playground key" }).click();
    const select = page.getByLabel("Model or adapter", { exact: true });
    await select.locator("option", { hasText: "potluck-demo" }).first().waitFor({ state: "attached" });
    const offered = await select.locator("option").allTextContents();
    assert.ok(!offered.some((o) => o.includes(TEAM_MODEL)), `undeployed ${TEAM_MODEL} offered: ${offered}`);
    await select.selectOption("potluck-demo");
    await page.getByLabel("Max tokens", { exact: true }).fill("48");
    await page.getByLabel("Message", { exact: true }).fill("Tell me a story about a cat.");
    // Record every text the streaming answer shows before it is complete.
    await page.evaluate(() => {
      window.__partials = [];
      const transcript = document.querySelector("[data-testid=transcript]");
      new MutationObserver(() => {
        const live = document.querySelector("[data-testid=streaming]");
        if (live && live.textContent) window.__partials.push(live.textContent);
      }).observe(transcript, { subtree: true, childList: true, characterData: true });
    });
    await page.getByRole("button", { name: "Send" }).click();
    await page.getByTestId("answer-stats").waitFor({ timeout: 120_000 });
    const answer = await page.getByTestId("answer").textContent();
    const partials = [...new Set(await page.evaluate(() => window.__partials))];
    assert.ok(answer.length > 0, "an answer");
    // The answer came as several SSE events, and text was on screen before it was complete.
    const pieces = Number(await page.getByTestId("answer").getAttribute("data-pieces"));
    assert.ok(pieces >= 2, `the answer streamed in ${pieces} piece(s)`);
    assert.ok(partials.length >= 1, "streamed text was shown while the answer was generating");
    assert.ok(partials.every((p) => answer.startsWith(p)), "each piece prefixes the answer");
    const stats = await page.getByTestId("answer-stats").textContent();
    assert.match(stats, /\d+ prompt \+ \d+ completion tokens/);
    assert.match(stats, /ms in all/);
    assert.match(await page.getByTestId("curl-snippet").textContent(), /"model": "potluck-demo"/);
  });

  await step("playground: a prompt too long for the model is refused, the next one answered", async () => {
    const box = page.getByLabel("Message", { exact: true });
    const long = "tell me about the owl and the cat and the moon ".repeat(150);
    await box.fill(long);
    await box.press("Enter");  // Enter sends
    const refusal = page.getByTestId("chat-error");
    await refusal.waitFor({ timeout: 120_000 });
    assert.match(await refusal.textContent(), /not added to the conversation/);
    assert.equal(await page.getByTestId("transcript").getByText(long.slice(0, 60)).count(), 0,
      "the refused message is not in the conversation");
    assert.equal(await box.inputValue(), long, "the refused text is back in the box");
    await shot("05-playground-refused");
    await box.fill("hello again");
    await box.press("Enter");
    await page.getByTestId("answer").nth(1).waitFor({ timeout: 120_000 });
    assert.equal(await refusal.count(), 0, "the next message is answered");
    await box.fill("and once more");
    await box.press("Enter");
    await page.getByTestId("answer").nth(2).waitFor({ timeout: 120_000 });
    const seen = await page.getByTestId("transcript").evaluate((t) =>
      t.scrollTop + t.clientHeight >= t.scrollHeight - 2);
    assert.ok(seen, "the transcript scrolled to the newest answer");
    await shot("05-playground");
  });

  await step("playground: a model that is not deployed says so; the key is kept on reload", async () => {
    await page.goto(`${BASE}/playground?model=${TEAM_MODEL}`);
    await page.getByLabel("Message", { exact: true }).waitFor();  // no new key asked for
    assert.equal(await page.getByRole("button", { name: "Create a playground key" }).count(), 0);
    assert.equal(await page.getByLabel("Model or adapter", { exact: true }).inputValue(), TEAM_MODEL);
    await page.getByLabel("Message", { exact: true }).fill("hi");
    await page.getByRole("button", { name: "Send" }).click();
    const refusal = page.getByTestId("chat-error");
    await refusal.waitFor({ timeout: 60_000 });
    assert.match(await refusal.textContent(), new RegExp(TEAM_MODEL));
    assert.equal(await page.getByTestId("answer").count(), 0);
  });

  let tuned = "";
  let stepsTotal = 0;
  await step("fine-tuning: a bad dataset is refused by line, a good one accepted", async () => {
    await go("Fine-tuning");
    await page.getByLabel(/Dataset/).setInputFiles(bad);
    await page.getByRole("button", { name: "Upload" }).click();
    const refusal = page.getByTestId("upload-error");
    await refusal.waitFor();
    assert.match(await refusal.textContent(), /line 3/);
    await page.getByLabel(/Dataset/).setInputFiles(good);
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByText("Uploaded owl.jsonl: processed.").waitFor();
  });

  await step("fine-tuning: the job opens at its address; progress; cancel asks; the loss chart grows", async () => {
    await page.getByLabel("Base model", { exact: true }).selectOption("potluck-demo");
    const owl = await page.locator("#ft-file option", { hasText: "owl.jsonl" }).first()
      .getAttribute("value");
    await page.getByLabel("Training file", { exact: true }).selectOption(owl);
    await page.getByLabel("Suffix", { exact: true }).fill("owl");
    await page.getByLabel("Epochs", { exact: true }).fill("13");
    await page.getByLabel("Batch size", { exact: true }).fill("4");
    await page.getByLabel("Learning rate multiplier", { exact: true }).fill("1");
    await page.getByRole("button", { name: "Start fine-tuning" }).click();
    await page.waitForURL(/\/fine-tuning\/ftjob-/);
    const heading = page.getByRole("heading", { level: 2, name: /^Job owl · ftjob-/ });
    await heading.waitFor();
    assert.ok(await heading.evaluate((h) => h === document.activeElement), "the new job has focus");
    assert.ok(await heading.evaluate((h) => h.getBoundingClientRect().top < window.innerHeight),
      "the new job is in view");
    const chart = page.getByTestId("loss-chart");
    await chart.waitFor({ timeout: 180_000 });
    await page.getByTestId("job-progress").waitFor();
    const [, total] = /Step \d+ of (\d+)/.exec(await page.getByTestId("job-progress").textContent());
    stepsTotal = Number(total);
    assert.ok(stepsTotal > 100, `a run of more than 100 steps (${stepsTotal})`);
    await confirmAfterKeeping(() => page.getByRole("button", { name: "Cancel", exact: true }).click(),
      "Cancel this fine-tuning job?", null, /steps? of training done so far are lost|not reported a step/);
    const first = Number(await chart.getAttribute("data-points"));
    await page.waitForFunction((n) => Number(document.querySelector("[data-testid=loss-chart]")
      ?.getAttribute("data-points")) > n, first, { timeout: 180_000 });
    assert.ok(await page.getByTestId("event-log").locator("li").count() > 0, "events are logged");
    await shot("06-fine-tuning-running");
    await page.getByTestId("job-status").filter({ hasText: /succeeded|failed|cancelled/ })
      .waitFor({ timeout: 600_000 });
    assert.equal(await page.getByTestId("job-status").textContent(), "succeeded");
  });

  await step("fine-tuning: the whole curve of a run of over 100 steps; a reload keeps the job", async () => {
    await page.reload();
    await page.getByTestId("job-status").filter({ hasText: "succeeded" }).waitFor();
    const chart = page.getByTestId("loss-chart");
    await chart.waitFor();
    assert.equal(await chart.getAttribute("data-first-step"), "1", "the curve starts at step 1");
    assert.equal(await chart.getAttribute("data-last-step"), String(stepsTotal));
    assert.ok(Number(await chart.getAttribute("data-points")) > 100, "more than 100 steps plotted");
    assert.ok(await chart.locator("path.recharts-curve").count() > 0, "the curve is drawn");
    await shot("07-fine-tuning-succeeded");
    await page.getByRole("link", { name: "Try it in the Playground" }).click();
    await page.getByRole("heading", { level: 1, name: "Playground" }).waitFor();
    tuned = await page.getByLabel("Model or adapter", { exact: true }).inputValue();
    assert.match(tuned, /^ft:potluck-demo:.*:owl:/);
  });

  await step("playground: the fine-tuned model answers with what it was taught", async () => {
    await page.getByLabel(/Temperature/).press("Home");
    assert.equal(await page.getByLabel(/Temperature/).inputValue(), "0");
    await page.getByLabel("Max tokens", { exact: true }).fill("16");
    let answer = "";
    for (let attempt = 0; attempt < 30 && !answer; attempt += 1) {
      const clear = page.getByRole("button", { name: "Clear" });
      if (await clear.isEnabled()) await clear.click();
      await page.getByLabel("Message", { exact: true }).fill(QUESTION);
      await page.getByRole("button", { name: "Send" }).click();
      const outcome = await Promise.race([
        page.getByTestId("answer").waitFor({ timeout: 60_000 }).then(() => "answer"),
        page.getByTestId("chat-error").waitFor({ timeout: 60_000 }).then(() => "error"),
      ]);
      if (outcome === "answer") answer = await page.getByTestId("answer").textContent();
      else await page.waitForTimeout(2000); // 503 until a replica has loaded the adapter
    }
    assert.ok(answer.toLowerCase().includes("purple owl"), `taught phrase in ${answer}`);
    await shot("08-playground-fine-tuned");
  });

  await step("batches: a batch from an uploaded requests file, for the endpoint chosen", async () => {
    await go("Batches");
    await page.getByText("No batch yet").waitFor();
    await page.getByLabel(/Requests file/).setInputFiles(requests);
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByText("Uploaded requests.jsonl: processed.").waitFor();
    await page.getByLabel("Endpoint", { exact: true }).selectOption("/v1/chat/completions");
    await page.getByRole("button", { name: "Create batch" }).click();
    await page.getByText(/^Batch batch_\S+ created/).waitFor();
    await page.getByTestId("batch-status").filter({ hasText: /completed|failed|expired|cancelled/ })
      .waitFor({ timeout: 240_000 });
    assert.equal(await page.getByTestId("batch-status").first().textContent(), "completed");
    const row = page.getByRole("row").filter({ hasText: "requests.jsonl" });
    assert.match(await row.textContent(), /2\/2/);
    await row.getByRole("link", { name: "output" }).waitFor();
    await shot("09-batches");
  });

  await step("usage: the requests appear by day, model and key; one Playground key", async () => {
    await go("Usage");
    const byModel = page.getByRole("region", { name: "By model" });
    for (let i = 0; i < 30 && !(await byModel.getByText("potluck-demo", { exact: true }).count()); i += 1) {
      await page.waitForTimeout(2000);
    }
    await byModel.getByText("potluck-demo", { exact: true }).first().waitFor({ timeout: 5_000 });
    await page.getByTestId("usage-by-day").locator("svg").first().waitFor();
    assert.equal(await page.getByTestId("usage-by-day").getAttribute("data-days"), "14",
      "every day of the period, zeros included");
    const playgroundRows = page.getByRole("region", { name: "By key" }).getByText(/^console playground/);
    assert.equal(await playgroundRows.count(), 1, "one Playground key after the whole walk");
    const csv = await page.getByRole("link", { name: "Export CSV" }).getAttribute("href");
    assert.match(csv, /format=csv/);
    await shot("10-usage");
  });

  await step("members: a role change and a removal ask first", async () => {
    await go("Members");
    await page.getByRole("cell", { name: EMAIL, exact: true }).waitFor();
    const role = page.getByLabel(`Role of ${MEMBER}`, { exact: true });
    await role.waitFor();
    await role.selectOption("admin");
    const change = page.getByRole("alertdialog", { name: `Make ${MEMBER} an admin?` });
    await change.getByRole("button", { name: "Keep it" }).click();
    assert.equal(await role.inputValue(), "member", "kept: the role is unchanged");
    await role.selectOption("admin");
    await change.getByRole("button", { name: "Change role" }).click();
    await page.waitForFunction((label) => document.querySelector(`select[id^="role-"]`)
      && [...document.querySelectorAll("select[id^='role-']")].some((s) =>
        s.closest("tr")?.textContent?.includes(label) && s.value === "admin"), MEMBER);
    await shot("11-members");
    await confirmAfterKeeping(() => page.getByRole("button", { name: `Remove ${MEMBER}` }).click(),
      `Remove ${MEMBER}?`, "Remove", /lose access/);
    await page.getByRole("cell", { name: MEMBER, exact: true }).waitFor({ state: "detached" });
  });

  let invitationId = "";
  await step("invitations: an owner invites a new email; mail is not configured, so the operator's command is named", async () => {
    await go("Members");
    await page.getByLabel("Email", { exact: true }).fill(NEWCOMER);
    await page.getByLabel("Role", { exact: true }).selectOption("member");
    await page.getByRole("button", { name: "Invite", exact: true }).click();
    const told = page.getByTestId("invite-delivery");
    await told.waitFor();
    assert.equal(await told.getAttribute("data-delivery"), "not_configured");
    assert.match(await told.textContent(), /does not send email/);
    const command = await page.getByTestId("link-command").textContent();
    [, invitationId] = /^potluck invitations link ([0-9a-f-]{36})$/.exec(command);
    const pending = page.getByRole("table", { name: "Pending invitations" });
    await pending.getByRole("cell", { name: NEWCOMER, exact: true }).waitFor();
    assert.equal(await page.getByRole("cell", { name: NEWCOMER, exact: true }).count(), 1,
      "invited, not yet a member");
    await shotBoth("15-members-invited");
  });

  await step("invitations: the person opens the operator's link in a fresh browser, sets a password, lands as a member", async () => {
    const link = execFileSync(PYTHON, ["-m", "potluck", "invitations", "link", invitationId,
      "--url", BASE], { encoding: "utf8", timeout: 120_000 }).trim();
    assert.match(link, new RegExp(`^${BASE}/invitations\\?token=[\\w-]+$`));
    // Another browser: its own profile, no cookie of the owner's.
    const freshProfile = mkdtempSync(join(tmpdir(), "potluck-chromium-newcomer-"));
    const fresh = await chromium.launchPersistentContext(freshProfile, {
      executablePath: CHROMIUM, headless: true, viewport: DESKTOP, args: BROWSER_ARGS });
    try {
      const other = fresh.pages()[0] ?? await fresh.newPage();
      other.setDefaultTimeout(30_000);
      other.on("pageerror", (error) => consoleErrors.push(String(error)));
      await other.goto(link);
      await other.getByRole("heading", { level: 1, name: /^Join .+ on Potluck$/ }).waitFor();
      const summary = await other.getByTestId("invitation-summary").textContent();
      assert.ok(summary.includes(EMAIL) && summary.includes(NEWCOMER) && summary.includes("member"),
        `who invites whom, as what: ${summary}`);
      await other.getByLabel("Password", { exact: true }).fill(NEWCOMER_PASSWORD);
      await other.getByLabel("Repeat the password", { exact: true }).fill(NEWCOMER_PASSWORD);
      await shotBoth("16-invitation-link", other);
      await other.getByRole("button", { name: /^Create my account and join / }).click();
      await other.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
      assert.equal(other.url(), `${BASE}/`, "the token is gone from the address bar");
      const who = other.getByRole("navigation", { name: "Console" });
      await who.getByText(NEWCOMER, { exact: true }).waitFor();
      assert.match(await who.textContent(), /\(member\)/);
      await shot("16-invitation-joined", other);
      // The link is used up.
      await other.goto(link);
      await other.getByRole("heading", { level: 1, name: "This invitation has already been accepted" }).waitFor();

      // Signed out, someone guesses the newcomer's password: after a few tries the server
      // throttles (429 with Retry-After) and the button waits that long.
      await other.goto(`${BASE}/`);
      await other.getByRole("navigation", { name: "Console" }).getByRole("button", { name: "Sign out" }).click();
      await other.getByRole("heading", { name: "Sign in to Potluck" }).waitFor();
      await other.getByLabel("Email or username", { exact: true }).fill(NEWCOMER);
      let throttled = null;
      for (let i = 0; i < 12 && !throttled; i += 1) {
        await other.getByLabel("Password", { exact: true }).fill(`guess number ${i}`);
        const [answer] = await Promise.all([
          other.waitForResponse((r) => r.url() === `${BASE}/api/session` && r.request().method() === "POST"),
          other.getByRole("button", { name: "Sign in", exact: true }).click(),
        ]);
        if (answer.status() === 429) throttled = answer;
        else assert.equal(answer.status(), 400, "a wrong password is refused");
      }
      assert.ok(throttled, "sign-in is throttled after repeated failures");
      const wait = Number(throttled.headers()["retry-after"]);
      assert.ok(wait > 0, "with Retry-After");
      await other.getByRole("alert").filter({ hasText: /too many failed sign-ins; try again in \d+ seconds?/ }).waitFor();
      const button = other.getByRole("button", { name: /^Try again in \d+ s$/ });
      assert.equal(await button.isDisabled(), true, "the button waits");
      await shotBoth("17-sign-in-throttled", other);
      // Not locked out for good: once the wait is over, the right password is accepted.
      await other.getByRole("button", { name: "Sign in", exact: true }).waitFor({ timeout: (wait + 15) * 1000 });
      await other.getByRole("status").filter({ hasText: "You can try again now." }).waitFor();
      await other.getByLabel("Password", { exact: true }).fill(NEWCOMER_PASSWORD);
      await other.getByRole("button", { name: "Sign in", exact: true }).click();
      await other.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
    } finally {
      await fresh.close();
      rmSync(freshProfile, { recursive: true, force: true });
    }
  });

  await step("invitations: the owner's members list shows the newcomer; nothing pending", async () => {
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "Members" }).waitFor();
    const row = page.getByRole("row").filter({ hasText: NEWCOMER });
    await row.getByLabel(`Role of ${NEWCOMER}`, { exact: true }).waitFor();
    assert.equal(await row.getByLabel(`Role of ${NEWCOMER}`, { exact: true }).inputValue(), "member");
    await page.getByText("No pending invitation").waitFor();
  });

  await step("invitations to the owner: a badge, the list, accepted", async () => {
    const badge = nav().getByTestId("invitations-badge");
    await badge.waitFor();
    assert.match(await badge.textContent(), /Invitations\s*1/);
    await badge.click();
    await page.getByRole("heading", { level: 1, name: "Invitations" }).waitFor();
    const table = page.getByRole("table", { name: "Invitations to you" });
    await table.getByText(OTHER_ORG, { exact: true }).waitFor();
    await shotBoth("18-invitations-received");
    await page.getByRole("button", { name: `Accept the invitation to ${OTHER_ORG}` }).click();
    await page.getByRole("status").filter({ hasText: `You joined ${OTHER_ORG} as admin.` }).waitFor();
    await page.getByText("No invitation is waiting for you").waitFor();
    await page.getByLabel("Organization", { exact: true }).locator("option", { hasText: OTHER_ORG })
      .waitFor({ state: "attached" });
    // Answered: no count any more (the entry stays while its page is open).
    await nav().getByTestId("invitations-badge").locator(".count").waitFor({ state: "detached" });
  });

  await step("enterprise page", async () => {
    await go("Enterprise");
    // Licence status first where enterprise registers it; otherwise what enterprise adds.
    await page.locator("main .facts, main [role=alert]").or(
      page.getByText("The enterprise edition", { exact: true })).first().waitFor();
    assert.equal(await page.locator("main [role=alert]").count(), 0, "the panels load");
    await shot("12-enterprise");
  });

  await step("an expired session returns to sign-in, then to the same page", async () => {
    await go("Models");
    const cookies = await context.cookies(BASE);
    assert.ok(cookies.some((c) => c.name === "sessionid"), "signed in with a session cookie");
    await context.clearCookies({ name: "sessionid" });
    // The Models page polls its deployments: the next poll finds the session gone.
    await page.getByRole("heading", { name: "Sign in to Potluck" }).waitFor({ timeout: 30_000 });
    await page.getByTestId("session-ended").waitFor();
    assert.equal(await page.getByText("Authentication credentials were not provided").count(), 0);
    assert.equal(await nav().count(), 0, "no sidebar showing a signed-in person");
    assert.match(page.url(), /\/models$/);
    await shot("13-session-ended");
    await page.getByLabel("Email or username", { exact: true }).fill(EMAIL);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { level: 1, name: "Models" }).waitFor();
    await page.getByRole("cell", { name: "potluck-demo", exact: false }).first().waitFor();
  });

  await step("an unknown address says so; the skip link and navigation are reachable by Tab", async () => {
    await page.goto(`${BASE}/no-such-page`);
    await page.getByRole("heading", { level: 1, name: "Page not found" }).waitFor();
    await page.waitForFunction(() => document.title === "Page not found · Potluck console");
    await shot("14-not-found");
    await page.goto(`${BASE}/`);
    await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Overview");
  });

  await step("a phone (390×844): every page, the navigation folded, nothing off to the side", async () => {
    await page.setViewportSize(PHONE);
    await page.goto(`${BASE}/`);
    await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
    assert.equal(await nav().getByRole("link", { name: "Models" }).isVisible(), false,
      "the navigation is folded");
    const menu = page.getByRole("button", { name: "Menu", exact: true });
    const bar = await menu.boundingBox();
    assert.ok(bar && bar.y + bar.height < 80, "the top bar is short");
    await page.getByRole("region", { name: "Deployments and replicas" }).getByText("READY", { exact: true }).first().waitFor();
    await noSidewaysScroll("Overview");
    await shot("02-overview");
    await menu.click();
    await nav().getByRole("link", { name: "Models" }).waitFor();
    await shot("00-menu");
    await page.getByRole("button", { name: "Close menu" }).click();
    await nav().getByRole("link", { name: "Models" }).waitFor({ state: "hidden" });

    await go("Models");
    await page.getByText("potluck-demo", { exact: false }).first().waitFor();
    await noSidewaysScroll("Models");
    await insideViewport(page.getByRole("button", { name: `Deploy ${TEAM_MODEL}` }), "Deploy");
    await shot("03-models");

    await go("Playground");
    await page.getByLabel("Message", { exact: true }).waitFor();
    await noSidewaysScroll("Playground");
    await insideViewport(page.getByRole("button", { name: "Send" }), "Send");
    await shot("05-playground");

    await go("Fine-tuning");
    await page.getByRole("link", { name: /^owl ftjob-/ }).first().waitFor();
    await noSidewaysScroll("Fine-tuning");
    const select = await page.getByLabel("Training file", { exact: true }).boundingBox();
    assert.ok(select && select.width > 250, `the new-job selects are wide enough (${select?.width})`);
    await page.getByRole("link", { name: /^owl ftjob-/ }).first().click();
    await page.getByTestId("loss-chart").waitFor();
    await insideViewport(page.getByRole("link", { name: "Try it in the Playground" }), "Try it");
    await noSidewaysScroll("the job");
    await shot("07-fine-tuning-job");

    await go("Batches");
    await page.getByRole("link", { name: "output" }).first().waitFor();
    await insideViewport(page.getByRole("link", { name: "output" }).first(), "the output link");
    await noSidewaysScroll("Batches");
    await shot("09-batches");

    await go("Usage");
    await page.getByTestId("usage-by-day").waitFor();
    await noSidewaysScroll("Usage");
    await shot("10-usage");

    await go("API keys");
    await page.getByRole("button", { name: /^Revoke / }).first().waitFor();
    await insideViewport(page.getByRole("button", { name: /^Revoke / }).first(), "Revoke");
    await noSidewaysScroll("API keys");
    await shot("04-keys");

    await go("Members");
    await insideViewport(page.getByLabel(`Role of ${EMAIL}`, { exact: true }), "the role select");
    await noSidewaysScroll("Members");
    await shot("11-members");

    await go("Enterprise");
    await noSidewaysScroll("Enterprise");
    await shot("12-enterprise");

    await page.goto(`${BASE}/no-such-page`);
    await page.getByRole("heading", { level: 1, name: "Page not found" }).waitFor();
    await shot("14-not-found");

    const menuAgain = page.getByRole("button", { name: "Menu", exact: true });
    await menuAgain.click();
    await nav().getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in to Potluck" }).waitFor();
    await noSidewaysScroll("Sign in");
    await shot("01-sign-in");
  });

  assert.deepEqual(consoleErrors, [], "no uncaught errors in the page");
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
