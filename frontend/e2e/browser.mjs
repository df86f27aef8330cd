// What every e2e file shares: the server and users plugins/console/tests/test_browser.py gives
// it (CRM2_E2E_*), and one headless Chromium per file, launched before its tests, closed after.
import { after, before } from "node:test";
import { chromium } from "playwright-core";

export const BASE = process.env.CRM2_E2E_BASE_URL ?? "http://127.0.0.1:8000";
export const EMAIL = process.env.CRM2_E2E_EMAIL ?? "";
export const PASSWORD = process.env.CRM2_E2E_PASSWORD ?? "";

/** Register the file's browser; its `browser` is set once the `before` hook has run. */
export function sharedBrowser() {
  const shared = { browser: undefined };
  before(async () => {
    shared.browser = await chromium.launch({
      executablePath: process.env.CRM2_E2E_CHROMIUM ?? "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    });
  });
  after(async () => {
    await shared.browser?.close();
  });
  return shared;
}
