import { expect, type Locator, type Page } from '@playwright/test';

/** A VM's window (route #/vm/<id>): toolbar, Display and Serial tabs. */
export class VmWindowPage {
  readonly toolbar: Locator;
  readonly tabs: Locator;
  readonly serialRegion: Locator;
  readonly display: Locator;

  constructor(readonly page: Page) {
    this.toolbar = page.getByRole('toolbar', { name: 'VM controls' });
    this.tabs = page.getByRole('tablist', { name: 'Consoles' });
    this.serialRegion = page.getByTestId('serial-console');
    this.display = page.getByTestId('vnc-canvas');
  }

  button(name: string): Locator {
    return this.toolbar.getByRole('button', { name, exact: true });
  }

  async state(): Promise<string> {
    return (await this.page.locator('header').first().innerText()).toLowerCase();
  }

  async openTab(name: 'Display' | 'Serial' | 'Stats'): Promise<void> {
    await this.tabs.getByRole('tab', { name }).click();
    await expect(this.tabs.getByRole('tab', { name })).toHaveAttribute('aria-selected', 'true');
  }

  /** The serial console's text as assistive technology reads it (xterm's screen-reader mode). */
  async serialText(): Promise<string> {
    return this.serialRegion.locator('.xterm-accessibility').innerText();
  }

  async typeSerial(text: string): Promise<void> {
    await this.serialRegion.getByRole('textbox', { name: 'Serial console input' }).focus();
    await this.page.keyboard.type(text);
  }

  /** Share of the guest display's canvas pixels that are not black. */
  async litShare(): Promise<number> {
    return this.display.locator('canvas').first().evaluate((c: HTMLCanvasElement) => {
      const ctx = c.getContext('2d');
      if (!ctx || c.width === 0 || c.height === 0) return 0;
      const { data } = ctx.getImageData(0, 0, c.width, c.height);
      let lit = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i]! + data[i + 1]! + data[i + 2]! > 60) lit++;
      return lit / (data.length / 4);
    });
  }
}
