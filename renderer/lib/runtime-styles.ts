/**
 * Makes runtime-generated CSS work under the strict CSP (`style-src 'self'`, no 'unsafe-inline').
 *
 * xterm.js's DOM renderer builds its colour and cell-size rules at runtime and writes them into
 * `<style>` elements, which that CSP refuses. Constructable stylesheets are CSSOM, which CSP allows,
 * so `document.createElement('style')` is rerouted to a tiny custom element that feeds its
 * `textContent` into an adopted `CSSStyleSheet` for as long as it is in the document. Nothing in
 * Vivarium's own code creates `<style>` elements; this only affects libraries that would otherwise
 * be blocked.
 */

const TAG = 'vivarium-runtime-style';

type StyleRoot = Document | ShadowRoot;

function rootOf(node: Node): StyleRoot | null {
  const root = node.getRootNode();
  return root instanceof Document || root instanceof ShadowRoot ? root : null;
}

class RuntimeStyle extends HTMLElement {
  #text = '';
  #sheet: CSSStyleSheet | null = null;
  #root: StyleRoot | null = null;

  override get textContent(): string {
    return this.#text;
  }

  override set textContent(value: string | null) {
    this.#text = value ?? '';
    this.#sheet?.replaceSync(this.#text);
  }

  connectedCallback(): void {
    const root = rootOf(this);
    if (!root) return;
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(this.#text);
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
    this.#sheet = sheet;
    this.#root = root;
  }

  disconnectedCallback(): void {
    const sheet = this.#sheet;
    if (sheet && this.#root) this.#root.adoptedStyleSheets = this.#root.adoptedStyleSheets.filter((s) => s !== sheet);
    this.#sheet = null;
    this.#root = null;
  }
}

let installed = false;

export function installRuntimeStyleShim(doc: Document = document): void {
  if (installed || typeof CSSStyleSheet === 'undefined' || !('adoptedStyleSheets' in doc)) return;
  installed = true;
  if (!customElements.get(TAG)) customElements.define(TAG, RuntimeStyle);
  const create = doc.createElement.bind(doc) as (tagName: string, options?: ElementCreationOptions) => HTMLElement;
  const patched = (tagName: string, options?: ElementCreationOptions): HTMLElement =>
    create(String(tagName).toLowerCase() === 'style' ? TAG : tagName, options);
  doc.createElement = patched as Document['createElement'];
}
