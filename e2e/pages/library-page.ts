import type { Locator, Page } from '@playwright/test';
import { NewVmWizardPage as NewVmDialog } from './new-vm-wizard-page';

/** The VM library (route #/). */
export class LibraryPage {
  readonly list: Locator;
  readonly newVmButton: Locator;
  /** The toolbar's New Sandbox: the wizard on the cloud image source. */
  readonly newSandboxButton: Locator;
  readonly filter: Locator;
  readonly status: Locator;

  constructor(readonly page: Page) {
    this.list = page.getByRole('listbox', { name: 'Virtual machines' });
    this.newVmButton = page.getByRole('button', { name: 'New VM' });
    this.newSandboxButton = page.locator('header.app-bar').getByRole('button', { name: 'New Sandbox', exact: true });
    this.filter = page.getByRole('searchbox', { name: 'Filter by name' });
    this.status = page.getByText(/\d+ VMs? ·/);
  }

  /** Opens the library: the served URL in a browser; in the Electron app (url null) it is already open. */
  async goto(url: string | null): Promise<void> {
    if (url !== null) await this.page.goto(url);
    await this.newVmButton.waitFor();
  }

  vm(name: string): Locator {
    return this.list.getByRole('option', { name, exact: true });
  }

  /** The VM the library has selected (the listbox's selected option). */
  get selected(): Locator {
    return this.list.locator('[role="option"][aria-selected="true"]');
  }

  /** A button of the library's toolbar (Start, Shut Down, Force Off, Open…). */
  toolbarButton(name: string): Locator {
    return this.page.locator('header.app-bar').getByRole('button', { name, exact: true });
  }

  /** The context menu of a VM, once open. */
  contextMenu(name: string): Locator {
    return this.page.getByRole('menu', { name: `Actions for ${name}` });
  }

  /** The confirmation asked before Force Off or Reset (and the Delete dialog). */
  get confirmation(): Locator {
    return this.page.getByRole('alertdialog');
  }

  async openNewVmDialog(): Promise<NewVmDialog> {
    await this.newVmButton.click();
    const dialog = new NewVmDialog(this.page);
    await dialog.root.waitFor();
    return dialog;
  }

  /** Opens a VM's window by keyboard (select + Enter), as the app does: a new page in the browser. */
  async openVm(name: string): Promise<Page> {
    const popup = this.page.context().waitForEvent('page');
    await this.vm(name).focus();
    await this.page.keyboard.press('Enter');
    const vmPage = await popup;
    await vmPage.waitForLoadState();
    return vmPage;
  }
}

/** The New VM dialog: the wizard (e2e/pages/new-vm-wizard-page.ts). */
export { NewVmDialog };
