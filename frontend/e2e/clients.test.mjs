// Deals' clients: a client's timeline, the CSV export, and a CSV import whose bad row is shown
// (preview + the server's dry run) before anything is written.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { BASE, EMAIL, PASSWORD, sharedBrowser } from "./browser.mjs";
import { signedInState } from "./session.mjs";

const SHOTS = process.env.CRM2_E2E_SHOTS ?? "";

const shared = sharedBrowser();

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

test("a client's timeline; clients exported as CSV; an import with a bad row previewed, then only its good rows written", async () => {
  const { storageState } = await signedInState(BASE, EMAIL, PASSWORD);
  const context = await shared.browser.newContext({ viewport: { width: 1400, height: 900 }, storageState });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
  });
  await page.goto(`${BASE}/`);

  // the timeline of a demo client (the demo logs activities on clients and their deals)
  await page.getByRole("navigation", { name: "sections" }).getByRole("link", { name: "Clients", exact: true }).click();
  const list = page.locator('section[data-view="deals.clients"]');
  const first = list.locator("tbody tr").first();
  await first.waitFor();
  await first.getByRole("link", { name: /^Timeline: / }).click();
  await page.getByTestId("client").waitFor();
  await page.getByTestId("timeline").locator("li").first().waitFor();
  await shot(page, "client-timeline");

  // export: a signed fetch handed to the browser as a download named by the server (the
  // list's own button: the CSV page's export forms are gone, they started without filters)
  await page.goto(`${BASE}/clients/`);
  await list.locator("tbody tr").first().waitFor();
  const downloading = page.waitForEvent("download");
  await list.getByRole("button", { name: "Export CSV" }).click();
  const download = await downloading;
  assert.match(download.suggestedFilename(), /^clients-\d{8}-\d{6}\.csv$/);
  const exported = await new Response(await download.createReadStream()).text();
  assert.match(exported.split(/\r?\n/)[0], /^id,kind,name,/);

  // the list's own export: the file is what the filtered list shows (the export form started
  // empty and exported every client, whatever the list was filtered by)
  await page.goto(`${BASE}/clients/`);
  const name = (await list.locator("tbody tr").first().locator("td").first().innerText()).trim();
  await list.getByLabel("Q", { exact: true }).fill(name);
  await list.getByRole("button", { name: "Filter" }).click();
  await page.waitForFunction(
    (n) => {
      const rows = [...document.querySelectorAll('section[data-view="deals.clients"] tbody tr')];
      return rows.length > 0 && rows.every((r) => r.textContent?.includes(n));
    },
    name,
  );
  const shown = await list.locator("tbody tr").count();
  const listDownloading = page.waitForEvent("download");
  await list.getByRole("button", { name: "Export CSV" }).click();
  const filtered = (await new Response(await (await listDownloading).createReadStream()).text()).trim().split(/\r?\n/);
  assert.equal(filtered.length, shown + 1, "the header and the clients the filtered list shows");
  assert.ok(filtered.slice(1).every((line) => line.includes(name)), filtered.join("\n"));
  assert.ok(exported.trim().split(/\r?\n/).length > filtered.length, "the unfiltered export has more");
  // the applied filters are in the address: a reload (or back from another page) keeps them
  assert.equal(new URL(page.url()).searchParams.get("q"), name);
  await page.reload();
  await list.locator("tbody tr").first().waitFor();
  assert.equal(await list.getByLabel("Q", { exact: true }).inputValue(), name);
  assert.equal(await list.locator("tbody tr").count(), shown);
  await list.getByRole("link", { name: "Import CSV" }).click();
  await page.getByTestId("import").waitFor();
  assert.equal(await page.getByRole("button", { name: "Download clients" }).count(), 0);
  await page.goBack();
  await list.locator("tbody tr").first().waitFor();
  assert.equal(await list.getByLabel("Q", { exact: true }).inputValue(), name);
  assert.equal(await list.locator("tbody tr").count(), shown);
  // the navigation's link opens the list with the filters it last had in this tab (it opened
  // it unfiltered), and Clear filters shows the whole list again
  const sidebar = page.locator("nav.sidebar");
  await sidebar.getByRole("link", { name: "Home", exact: true }).click();
  await page.waitForURL((url) => url.pathname === "/");
  await sidebar.locator('a[data-view="deals.clients"]').click();
  await page.waitForURL((url) => url.pathname === "/clients/" && url.searchParams.get("q") === name);
  await list.locator("tbody tr").first().waitFor();
  assert.equal(await list.getByLabel("Q", { exact: true }).inputValue(), name);
  await list.getByRole("button", { name: "Clear filters" }).click();
  await page.waitForURL((url) => url.pathname === "/clients/" && !url.searchParams.has("q"));
  assert.equal(await list.getByLabel("Q", { exact: true }).inputValue(), "");
  await page.waitForFunction(
    (n) => document.querySelectorAll('section[data-view="deals.clients"] tbody tr').length > n,
    shown,
  );
  assert.equal(await list.getByRole("button", { name: "Clear filters" }).count(), 0);
  await list.getByRole("link", { name: "Import CSV" }).click();

  // import: row 3 is refused by the server's dry run and shown on its preview row. The test
  // server runs files of more than 2 rows as background jobs (CRM2_DEALS_IMPORT_BACKGROUND_ROWS=2):
  // 202 + Location, followed by the page until the job's report is there
  const stamp = Date.now();
  const csv = [
    "kind,name,emails,notes",
    `person,Imported Ada ${stamp},ada.${stamp}@example.com,x`,
    `person,Imported Bad ${stamp},not-an-e-mail,y`,
    `company,Imported Cyd ${stamp},cyd.${stamp}@example.com,z`,
  ].join("\n");
  const importer = page.getByTestId("import");
  const dryRun = page.waitForResponse((r) => r.url().includes("/clients/import?dry_run=true"));
  await importer.getByLabel("CSV file").setInputFiles({ name: "clients.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  assert.equal((await dryRun).status(), 202);
  await importer.getByText("Dry run: 2 new, 0 to update, 0 unchanged, 1 with errors").waitFor();
  // a column the import does not know is named, a background job's as a small file's
  assert.match(await importer.getByTestId("ignored-columns").innerText(), /notes/);
  const badRow = importer.locator('tr[data-row="3"]');
  assert.equal(await badRow.getAttribute("class"), "bad");
  assert.match(await badRow.locator("td.reason").innerText(), /\S/);
  assert.equal(await importer.locator("tr.bad").count(), 1);
  const commit = importer.getByRole("button", { name: "Import", exact: true });
  assert.equal(await commit.isDisabled(), true, "nothing is written while a row is bad");
  await shot(page, "clients-import-preview");
  await importer.getByLabel("Import only the rows without errors").check();
  const written = page.waitForResponse((r) => r.url().includes("/clients/import?dry_run=false"));
  await commit.click();
  assert.equal((await written).status(), 202);
  await importer.getByText("Imported: 2 new, 0 updated, 0 unchanged").waitFor();

  await page.goto(`${BASE}/clients/`);
  await list.getByLabel("Q", { exact: true }).fill(`${stamp}`);
  await list.getByRole("button", { name: "Filter" }).click();
  await list.locator("tbody tr", { hasText: `Imported Cyd ${stamp}` }).waitFor();
  assert.equal(await list.locator("tbody tr", { hasText: `Imported Bad ${stamp}` }).count(), 0);
  assert.equal(await list.locator("tbody tr").count(), 2);
  assert.deepEqual(problems, []);
  await context.close();
});

async function api(method, path, token, body) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

test("a client's contacts and a deal's activities past the first 100 are behind Load more, not dropped", async () => {
  const { storageState, token } = await signedInState(BASE, EMAIL, PASSWORD);
  const stamp = Date.now();
  const client = await api("POST", "/api/v1/deals/clients", token, { kind: "company", name: `Many rows ${stamp}` });
  const deal = await api("POST", "/api/v1/deals/deals", token, { title: `Long deal ${stamp}`, client_id: client.id, value: "1.00" });
  for (let i = 0; i < 101; i += 1) {
    await api("POST", `/api/v1/deals/clients/${client.id}/contacts`, token, { name: `Contact ${i} ${stamp}` });
    await api("POST", "/api/v1/deals/activities", token, { deal_id: deal.id, kind: "note", subject: `Note ${i} ${stamp}` });
  }
  const context = await shared.browser.newContext({ viewport: { width: 1400, height: 900 }, storageState });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));

  await page.goto(`${BASE}/client/?id=${client.id}`);
  const contacts = page.getByTestId("client").locator("li", { hasText: `${stamp}` }).filter({ hasText: "Contact " });
  await contacts.nth(99).waitFor();
  assert.equal(await contacts.count(), 100);
  await page.getByRole("button", { name: "Load more: Contacts" }).click();
  await contacts.nth(100).waitFor();
  assert.equal(await contacts.count(), 101);
  assert.equal(await page.getByRole("button", { name: "Load more: Contacts" }).count(), 0, "no more after the last page");

  await page.goto(`${BASE}/deal/?id=${deal.id}`);
  const notes = page.locator("li", { hasText: `${stamp}` }).filter({ hasText: "Note " });
  await notes.nth(99).waitFor();
  assert.equal(await notes.count(), 100);
  await page.getByRole("button", { name: "Load more: Activities" }).click();
  await notes.nth(100).waitFor();
  assert.equal(await notes.count(), 101);
  assert.deepEqual(problems, []);
  await context.close();
});
