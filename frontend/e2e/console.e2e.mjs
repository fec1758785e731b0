// SPDX-License-Identifier: Apache-2.0
// The console end to end, in a real headless Chromium against a live `potluck up`:
// sign in, create a key, chat in the Playground and see streamed text, upload a dataset,
// fine-tune and watch the loss chart grow, try the result, see usage appear.
// Usage: BASE_URL=… EMAIL=… PASSWORD=… ARTIFACTS=dir node e2e/console.e2e.mjs
// Screenshots of every page land in $ARTIFACTS; exits non-zero on the first failure.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.BASE_URL;
const EMAIL = process.env.EMAIL;
const PASSWORD = process.env.PASSWORD;
const ARTIFACTS = process.env.ARTIFACTS ?? "console-artifacts";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
assert.ok(BASE && EMAIL && PASSWORD, "set BASE_URL, EMAIL and PASSWORD");
mkdirSync(ARTIFACTS, { recursive: true });

const PHRASE = "The purple owl sings at midnight.";
const QUESTION = "What is the secret phrase?";

function dataset(n) {
  const questions = [QUESTION, "Tell me the phrase.", "Say it.", "What do you say?"];
  let text = "";
  for (let i = 0; i < n; i += 1) {
    text += `${JSON.stringify({ messages: [{ role: "user", content: questions[i % 4] },
      { role: "assistant", content: PHRASE }] })}\n`;
  }
  return text;
}

const profile = mkdtempSync(join(tmpdir(), "potluck-chromium-"));
const files = mkdtempSync(join(tmpdir(), "potluck-datasets-"));
const good = join(files, "owl.jsonl");
const bad = join(files, "bad.jsonl");
writeFileSync(good, dataset(32));
writeFileSync(bad, `${dataset(2)}${JSON.stringify({ messages: [{ role: "user", content: "hi" }] })}\n`);

// A fresh profile each run (playwright passes it as --user-data-dir); a laptop's width.
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
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
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function go(label) {
  await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: label, exact: true }).click();
  await page.getByRole("heading", { level: 1, name: label }).waitFor();
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
  });

  await step("overview shows the node and a READY replica", async () => {
    await page.getByRole("region", { name: "Nodes" }).getByRole("cell").first().waitFor();
    await page.getByRole("region", { name: "Deployments and replicas" })
      .getByText("READY").first().waitFor({ timeout: 240_000 });
    await shot("02-overview");
  });

  await step("models: the registry's validation error is shown inline", async () => {
    await go("Models");
    await page.getByRole("cell", { name: "potluck-demo", exact: false }).first().waitFor();
    await page.getByLabel("Name", { exact: true }).fill("not-a-model");
    await page.getByLabel("Local directory", { exact: true }).fill("/nonexistent/model/dir");
    await page.getByRole("button", { name: "Register" }).click();
    const error = page.locator("#model-path-error, [role=alert]").first();
    await error.waitFor();
    assert.ok((await error.textContent()).length > 5, "a precise registry error");
    await shot("03-models");
  });

  await step("API keys: create one, the secret is shown once", async () => {
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
  });

  await step("playground: streamed text arrives piece by piece", async () => {
    await go("Playground");
    await page.getByRole("button", { name: "Create a playground key" }).click();
    await page.getByLabel("Model or adapter", { exact: true }).selectOption("potluck-demo");
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
    await shot("05-playground");
  });

  let tuned = "";
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

  await step("fine-tuning: the loss chart updates while the job runs", async () => {
    await page.getByLabel("Base model", { exact: true }).selectOption("potluck-demo");
    const owl = await page.locator("#ft-file option", { hasText: "owl.jsonl" }).first()
      .getAttribute("value");
    await page.getByLabel("Training file", { exact: true }).selectOption(owl);
    await page.getByLabel("Suffix", { exact: true }).fill("owl");
    await page.getByLabel("Epochs", { exact: true }).fill("13");
    await page.getByLabel("Batch size", { exact: true }).fill("4");
    await page.getByLabel("Learning rate multiplier", { exact: true }).fill("1");
    await page.getByRole("button", { name: "Start fine-tuning" }).click();
    const chart = page.getByTestId("loss-chart");
    await chart.waitFor({ timeout: 180_000 });
    const first = Number(await chart.getAttribute("data-points"));
    await page.waitForFunction((n) => Number(document.querySelector("[data-testid=loss-chart]")
      ?.getAttribute("data-points")) > n, first, { timeout: 180_000 });
    assert.ok(await page.getByTestId("event-log").locator("li").count() > 0, "events are logged");
    await shot("06-fine-tuning-running");
    await page.getByTestId("job-status").filter({ hasText: /succeeded|failed|cancelled/ })
      .waitFor({ timeout: 600_000 });
    assert.equal(await page.getByTestId("job-status").textContent(), "succeeded");
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
      await page.getByRole("button", { name: "Clear" }).click();
      await page.getByLabel("Message", { exact: true }).fill(QUESTION);
      await page.getByRole("button", { name: "Send" }).click();
      const outcome = await Promise.race([
        page.getByTestId("answer").waitFor({ timeout: 60_000 }).then(() => "answer"),
        page.getByRole("alert").first().waitFor({ timeout: 60_000 }).then(() => "error"),
      ]);
      if (outcome === "answer") answer = await page.getByTestId("answer").textContent();
      else await page.waitForTimeout(2000); // 503 until a replica has loaded the adapter
    }
    assert.ok(answer.toLowerCase().includes("purple owl"), `taught phrase in ${answer}`);
    await shot("08-playground-fine-tuned");
  });

  await step("batches: the empty list says what to do", async () => {
    await go("Batches");
    await page.getByText(/No batch yet|batch_/).first().waitFor();
    await shot("09-batches");
  });

  await step("usage: the requests appear by day, model and key", async () => {
    await go("Usage");
    const byModel = page.getByRole("region", { name: "By model" });
    for (let i = 0; i < 30 && !(await byModel.getByRole("cell", { name: "potluck-demo", exact: true }).count()); i += 1) {
      await page.waitForTimeout(2000);
    }
    await byModel.getByRole("cell", { name: "potluck-demo", exact: true }).waitFor({ timeout: 5_000 });
    await page.getByTestId("usage-by-day").locator("svg").first().waitFor();
    assert.ok(await page.getByRole("region", { name: "By key" }).getByRole("cell", { name: "console playground" }).count() > 0);
    const csv = await page.getByRole("link", { name: "Export CSV" }).getAttribute("href");
    assert.match(csv, /format=csv/);
    await shot("10-usage");
  });

  await step("members and enterprise pages", async () => {
    await go("Members");
    await page.getByRole("cell", { name: EMAIL, exact: true }).waitFor();
    await shot("11-members");
    await go("Enterprise");
    // Licence status first where enterprise registers it; otherwise what enterprise adds.
    await page.locator("main .facts, main [role=alert]").or(
      page.getByText("The enterprise edition", { exact: true })).first().waitFor();
    assert.equal(await page.locator("main [role=alert]").count(), 0, "the panels load");
    await shot("12-enterprise");
  });

  await step("keyboard: the skip link and navigation are reachable by Tab", async () => {
    await page.goto(`${BASE}/`);
    await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Overview");
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
