// Headless Chromium against a real bulwark-control: login, inventory, rotations, audit,
// CSRF refusal, security headers, and no CSP violations. Driven by run.sh.
import { chromium } from "playwright-core";
import { readFileSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";

// The admin page has a listener of its own; the token endpoint and JWKS are on the public one.
const BASE = process.env.ADMIN_BASE_URL;
const PUBLIC = process.env.PUBLIC_URL;
const OUT = process.env.OUT_DIR;
const PASSWORD = readFileSync(process.env.ADMIN_PASSWORD_FILE, "utf8").trim();

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   - ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${name}: ${e && e.message ? e.message.split("\n")[0] : e}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const userDataDir = mkdtempSync(join(tmpdir(), "bulwark-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  env: { ...process.env, HOME: process.env.BROWSER_HOME },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1500, height: 1100 },
});
const page = context.pages()[0] ?? (await context.newPage());
const cspViolations = [];
page.on("console", (m) => {
  if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
});

async function waitForJob() {
  // The job page refreshes itself (meta refresh) while the job runs.
  await page.waitForFunction(
    () => {
      const s = document.querySelector("#job-state");
      return s && s.textContent.trim() !== "running";
    },
    null,
    { timeout: 60000, polling: 250 },
  );
  return (await page.textContent("#job-state")).trim();
}

async function ident(row) {
  return page.getAttribute(`#item-${row} code.fp`, "data-full");
}

await check("the CA is trusted: HTTPS loads without certificate errors", async () => {
  const res = await page.goto(`${BASE}/admin`);
  assert(res && res.ok(), `status ${res && res.status()}`);
});

await check("/admin redirects to the login page", async () => {
  assert(new URL(page.url()).pathname === "/admin/login", `at ${page.url()}`);
  await page.screenshot({ path: join(OUT, "01-login.png") });
});

await check("a wrong password is refused", async () => {
  await page.fill("#username", "admin");
  await page.fill("#password", "definitely-not-the-password");
  await Promise.all([page.waitForNavigation(), page.click("#login-submit")]);
  assert(new URL(page.url()).pathname === "/admin/login", `at ${page.url()}`);
  const err = await page.textContent("#login-error");
  assert(/Invalid username or password/.test(err), err);
  await page.screenshot({ path: join(OUT, "02-wrong-password.png") });
});

let headers = {};
await check("login with the bootstrapped password shows the inventory", async () => {
  await page.fill("#username", "admin");
  await page.fill("#password", PASSWORD);
  const [res] = await Promise.all([
    page.waitForNavigation(),
    page.click("#login-submit"),
  ]);
  assert(new URL(page.url()).pathname === "/admin/", `at ${page.url()}`);
  headers = res.headers();
  for (const id of ["temporal-server", "jwt-key", "client-worker", "ca", "worker-token"]) {
    assert(await page.isVisible(`#item-${id}`), `row ${id} missing`);
  }
  assert(await page.isVisible("#client-worker"), "OAuth client row missing");
  await page.screenshot({ path: join(OUT, "03-inventory.png"), fullPage: true });
});

await check("the session cookie is Secure, HttpOnly, SameSite=Strict, __Host-", async () => {
  const c = (await context.cookies()).find((c) => c.name === "__Host-bulwark_session");
  assert(c, "no session cookie");
  assert(c.secure && c.httpOnly && c.sameSite === "Strict" && c.path === "/", JSON.stringify(c));
});

await check("admin pages carry CSP, frame, HSTS, referrer and no-store headers", async () => {
  const csp = headers["content-security-policy"] || "";
  for (const d of ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"]) {
    assert(csp.includes(d), `CSP lacks ${d}`);
  }
  assert(headers["x-frame-options"] === "DENY", "X-Frame-Options");
  assert((headers["strict-transport-security"] || "").startsWith("max-age="), "HSTS");
  assert(headers["referrer-policy"] === "no-referrer", "Referrer-Policy");
  assert(headers["cache-control"] === "no-store", "Cache-Control");
});

let serverBefore = "";
let serverAfter = "";
await check("rotating the temporal-server certificate through the form changes its fingerprint", async () => {
  serverBefore = await ident("temporal-server");
  await Promise.all([page.waitForNavigation(), page.click("#item-temporal-server a.button")]);
  assert(new URL(page.url()).pathname === "/admin/confirm", `at ${page.url()}`);
  await page.check("input[name=confirm]");
  await Promise.all([page.waitForNavigation(), page.click("#confirm-submit")]);
  const state = await waitForJob();
  await page.screenshot({ path: join(OUT, "04-cert-job.png"), fullPage: true });
  assert(state === "succeeded", `job ${state}: ${await page.textContent("main")}`);
  await page.goto(`${BASE}/admin/`);
  serverAfter = await ident("temporal-server");
  assert(serverAfter && serverAfter !== serverBefore, `fingerprint ${serverBefore} -> ${serverAfter}`);
  const gen = (await page.textContent("#item-temporal-server td.gen")).trim();
  assert(gen === "2", `generation ${gen}`);
});

await check("rotating the JWT signing key publishes, verifies and switches (new kid)", async () => {
  const before = await ident("jwt-key");
  await Promise.all([page.waitForNavigation(), page.click("#item-jwt-key a.button")]);
  await page.check("input[name=confirm]");
  await Promise.all([page.waitForNavigation(), page.click("#confirm-submit")]);
  const state = await waitForJob();
  const log = await page.textContent("#job-log");
  await page.screenshot({ path: join(OUT, "05-jwt-job.png"), fullPage: true });
  assert(state === "succeeded", `job ${state}`);
  assert(/published/.test(log) && /verif/.test(log) && /signs now/.test(log), log);
  await page.goto(`${BASE}/admin/`);
  const after = await ident("jwt-key");
  assert(after && after !== before, `kid ${before} -> ${after}`);
  // Fetched by the browser itself (it trusts the CA; Node's request client would not).
  const jwks = await (await page.goto(`${PUBLIC}/.well-known/jwks.json`)).json();
  await page.goto(`${BASE}/admin/`);
  const kids = jwks.keys.map((k) => k.kid);
  assert(kids[0] === after && kids.includes(before), `jwks ${kids}`);
  await page.screenshot({ path: join(OUT, "06-inventory-after.png"), fullPage: true });
});

await check("the audit log shows the login and both rotations", async () => {
  await page.goto(`${BASE}/admin/audit`);
  const text = await page.textContent("#audit");
  for (const s of ["login", "rotate-cert", "temporal-server", "rotate-jwt-key", serverAfter]) {
    assert(text.includes(s), `audit lacks ${s}`);
  }
  assert(!text.includes(PASSWORD), "password in the audit page");
  const failures = await page.$$eval("tr.outcome-failure td.action", (tds) => tds.map((t) => t.textContent));
  assert(failures.includes("login"), "the failed login is not audited");
  await page.screenshot({ path: join(OUT, "07-audit.png"), fullPage: true });
});

await check("a form posted without its CSRF token is refused with 403", async () => {
  const before = await (async () => {
    await page.goto(`${BASE}/admin/`);
    return ident("temporal-server");
  })();
  await page.goto(`${BASE}/admin/confirm?action=cert&target=temporal-server`);
  await page.evaluate(() => document.querySelector("#confirm-form input[name=csrf]").remove());
  await page.check("input[name=confirm]");
  const [res] = await Promise.all([page.waitForNavigation(), page.click("#confirm-submit")]);
  assert(res.status() === 403, `status ${res.status()}`);
  await page.screenshot({ path: join(OUT, "08-csrf-403.png") });
  await page.goto(`${BASE}/admin/`);
  assert((await ident("temporal-server")) === before, "the certificate changed anyway");
});

await check("logout ends the session", async () => {
  await Promise.all([page.waitForNavigation(), page.click("nav button.link")]);
  await page.goto(`${BASE}/admin/`);
  assert(new URL(page.url()).pathname === "/admin/login", `at ${page.url()}`);
});

await check("no Content-Security-Policy violations on any page", async () => {
  assert(cspViolations.length === 0, cspViolations.join(" | "));
});

await context.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
