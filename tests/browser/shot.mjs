// Ad-hoc screenshots of pages as a logged-in holder, for walking a change by eye:
//   node shot.mjs BASE OUTDIR SESSION_TOKEN LANG path [path…]
// (a session token from `carnet token holder <INS> --data-dir …`). Saves NAME-360.png and
// NAME-1280.png per path, full page.
import { chromium } from 'playwright-core';

const [base, out, token, lang, ...paths] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});
for (const width of [360, 1280]) {
  const ctx = await browser.newContext({ viewport: { width, height: 900 } });
  const url = new URL(base);
  await ctx.addCookies([
    { name: '__Host-carnet_session', value: token, domain: url.hostname, path: '/', secure: true },
    { name: '__Host-carnet_lang', value: lang, domain: url.hostname, path: '/', secure: true },
  ]);
  const page = await ctx.newPage();
  for (const p of paths) {
    const r = await page.goto(base + p);
    const name = p.replace(/[^a-z0-9]+/gi, '_').replace(/^_|_$/g, '') || 'root';
    await page.screenshot({ path: `${out}/${name}-${lang}-${width}.png`, fullPage: true });
    console.log(width, p, r.status());
  }
  await ctx.close();
}
await browser.close();
