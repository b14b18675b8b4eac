/**
 * The dashboard tests' browser: Debian's /usr/bin/chromium driven by playwright-core, one
 * persistent context per test file, every page error and console error collected (a test
 * asserts there were none), screenshots in test-artifacts/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { REPO_ROOT, tmpDir } from './broker.js';

export const CHROMIUM = '/usr/bin/chromium';
/** Why the dashboard tests are skipped, or false when Chromium is there. */
export const NO_CHROMIUM = !fs.existsSync(CHROMIUM) && `${CHROMIUM} missing`;
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
/** How long the UI may take to show what a test waits for. */
export const UI_TIMEOUT_MS = 20_000;

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Uncaught errors and console errors of the page so far. */
  errors: string[];
  screenshot(name: string): Promise<void>;
  close(): Promise<void>;
}

export async function openBrowser(viewport = { width: 1280, height: 900 }): Promise<Browser> {
  const context = await chromium.launchPersistentContext(tmpDir('ferry-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport,
  });
  context.setDefaultTimeout(UI_TIMEOUT_MS);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return {
    context,
    page,
    errors,
    async screenshot(name) {
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
    },
    close: () => context.close(),
  };
}

/** Waits until the locator's text matches. */
export async function waitText(locator: Locator, text: string | RegExp): Promise<void> {
  await locator.filter({ hasText: text }).first().waitFor();
}

/** Accepts the next confirm() of the page (the dashboard asks before deleting). */
export function acceptNextDialog(page: Page): void {
  page.once('dialog', (d) => void d.accept());
}

/** The location hash, decoded: `#/queues/a?state=dead`. */
export async function hashOf(page: Page): Promise<string> {
  return decodeURIComponent(await page.evaluate<string>('location.hash'));
}
