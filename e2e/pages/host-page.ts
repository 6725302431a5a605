import type { Locator, Page } from '@playwright/test';

/**
 * The resource graphs on any page (Host view, a VM's Stats tab, the library strip): each is a
 * `role="img"` named like "CPU usage graph", inside a card with its current value.
 */
export class Graphs {
  constructor(readonly root: Page | Locator) {}

  graph(name: string): Locator {
    return this.root.getByRole('img', { name, exact: true });
  }

  /** The visible current value of a full-size graph ("12.3%"). */
  value(name: string): Locator {
    // `has` takes a locator relative to the card, so it must not start from a narrower root.
    const page = 'page' in this.root ? this.root.page() : this.root;
    return this.root.locator('section.graph-card', { has: page.getByRole('img', { name, exact: true }) }).getByTestId('graph-value');
  }

  /** How many canvas pixels are painted in the colour of the graph's first series: > 0 once a
   *  line has been drawn (axes and grid use other colours). */
  async seriesInk(name: string): Promise<number> {
    return this.graph(name).evaluate((el) => {
      const canvas = el.querySelector('canvas');
      const ctx = canvas?.getContext('2d');
      if (!canvas || !ctx || canvas.width === 0 || canvas.height === 0) return 0;
      const hex = getComputedStyle(el).getPropertyValue('--graph-1').trim();
      const m = /^#([0-9a-f]{6})$/i.exec(hex);
      if (!m) return -1;
      const n = parseInt(m[1]!, 16);
      const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let ink = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3]! > 200 && Math.abs(data[i]! - r) < 40 && Math.abs(data[i + 1]! - g) < 40 && Math.abs(data[i + 2]! - b) < 40) ink++;
      }
      return ink;
    });
  }
}

/** The host view (route #/host): virtualization facts and the host's resource graphs. */
export class HostPage extends Graphs {
  readonly heading: Locator;
  readonly facts: Locator;
  readonly resources: Locator;

  constructor(readonly page: Page) {
    super(page);
    this.heading = page.getByRole('heading', { name: 'Host', level: 1 });
    this.facts = page.getByRole('region', { name: 'Virtualization' });
    this.resources = page.getByRole('region', { name: /^Resources/ });
  }

  /** From the library, with its toolbar's Host button. */
  static async openFromLibrary(page: Page): Promise<HostPage> {
    await page.getByRole('button', { name: 'Host', exact: true }).click();
    const host = new HostPage(page);
    await host.heading.waitFor();
    return host;
  }

  accelerator(name: RegExp): Locator {
    return this.facts.getByRole('listitem').filter({ hasText: name });
  }
}
