import { expect, type Locator, type Page } from '@playwright/test';

/** The New VM wizard (renderer/views/new-vm-wizard.tsx): four steps in one dialog. */
export class NewVmWizardPage {
  readonly root: Locator;
  /** "Step N of 4: …" */
  readonly heading: Locator;
  readonly nextButton: Locator;
  readonly backButton: Locator;
  readonly createButton: Locator;
  /** Messages under fields and the form's own. */
  readonly errors: Locator;

  constructor(readonly page: Page) {
    this.root = page.getByRole('dialog', { name: 'New VM' });
    this.heading = this.root.getByRole('heading', { level: 3 });
    this.nextButton = this.root.getByRole('button', { name: 'Next' });
    this.backButton = this.root.getByRole('button', { name: 'Back' });
    this.createButton = this.root.getByRole('button', { name: 'Create', exact: true });
    this.errors = this.root.locator('.field-error, .form-error');
  }

  field(name: string): Locator {
    return this.root.getByRole('textbox', { name, exact: true });
  }

  async source(label: string | RegExp): Promise<void> {
    await this.root.getByRole('radio', { name: label }).check();
  }

  /** Whatever happens after Next/Create: the step changed, or a message appeared, or (on the
   *  summary) the engine's dry run came back and Create is enabled. */
  private async settle(before: string): Promise<void> {
    await expect
      .poll(
        async () => {
          if ((await this.errors.count()) > 0) return true;
          const now = (await this.heading.textContent()) ?? '';
          if (now !== before) return true;
          return now.includes('Summary') && (await this.createButton.isEnabled());
        },
        { timeout: 30_000 },
      )
      .toBe(true);
  }

  /** On the summary: waits for the engine's dry run; true when Create may be pressed, false when the
   *  engine refused (the wizard then shows the step and field concerned). */
  async summaryReady(): Promise<boolean> {
    const onSummary = async (): Promise<boolean> => ((await this.heading.textContent()) ?? '').includes('Summary');
    await expect
      .poll(async () => (await this.errors.count()) > 0 || !(await onSummary()) || (await this.createButton.isEnabled()), { timeout: 30_000 })
      .toBe(true);
    return (await this.errors.count()) === 0 && (await onSummary());
  }

  /** Presses Next (Enter in the form) and waits until the wizard has answered. */
  async next(): Promise<void> {
    const before = (await this.heading.textContent()) ?? '';
    await this.nextButton.click();
    await this.settle(before);
  }

  /** Goes on with Next until the summary, then presses Create. Stops early at the first message on
   *  a field (the caller checks it). */
  async create(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      if ((await this.errors.count()) > 0 && !(await this.heading.textContent())?.includes('Summary')) {
        // A message is showing: press on once (the user may have fixed it), then stop if one remains.
        const before = (await this.heading.textContent()) ?? '';
        await this.root.getByRole('button', { name: /^(Next|Create)$/ }).click();
        await this.page.waitForTimeout(200);
        await this.settle(before);
        if ((await this.errors.count()) > 0) return;
        continue;
      }
      const heading = (await this.heading.textContent()) ?? '';
      if (heading.includes('Summary')) {
        if (!(await this.summaryReady())) return;
        await this.createButton.click();
        return;
      }
      await this.next();
      if ((await this.errors.count()) > 0) return;
    }
  }

  /** Step 1 → 3 for a kernel boot (the old dialog's fields, now on their steps). */
  async fillKernelBoot(o: { name: string; kernel: string; initrd: string; append: string; memory: string; cpus: string; diskGiB: string }): Promise<void> {
    await this.source('A Linux kernel (advanced)');
    await this.field('Kernel path').fill(o.kernel);
    await this.field('Initrd path').fill(o.initrd);
    await this.field('Kernel command line').fill(o.append);
    await this.next();
    await this.field('Name').fill(o.name);
    await this.field('CPUs').fill(o.cpus);
    await this.field('Memory').fill(o.memory);
    await this.next();
    if ((await this.errors.count()) > 0) return;
    await this.field('Disk size (GiB)').fill(o.diskGiB);
  }

  /** Step 1 → 3 for an ISO typed as a path; stops at the first step that shows a message. */
  async fillIsoBoot(o: { name: string; iso: string; memory: string; diskGiB: string }): Promise<void> {
    await this.source('An ISO image on this computer');
    await this.field('ISO image path').fill(o.iso);
    await this.next();
    if ((await this.errors.count()) > 0) return;
    await this.field('Name').fill(o.name);
    await this.field('Memory').fill(o.memory);
    await this.next();
    if ((await this.errors.count()) > 0) return;
    await this.field('Disk size (GiB)').fill(o.diskGiB);
  }
}
